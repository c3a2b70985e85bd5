"""Who may open which widget conversation, and frames that must never drop the socket.

Against the real app on SQLite and PostgreSQL: a visitor id alone grants
nothing (the server-issued secret does), a verified user id chooses the
conversation, and any malformed frame gets a final error frame with a reason
while the socket stays open.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from bot.runtime import NoNLU, Runtime
from bot.server import RUNTIME, create_app
from connectors.widget.identity import sign
from tests.connectors.widget.support import SECRET, WidgetSocket, new_id, write_config

ClientFactory = Callable[[web.Application], Awaitable[TestClient[Any, Any]]]
Connect = Callable[..., Awaitable[WidgetSocket]]
ORIGIN = "https://shop.example.com"
ASK = "What is your order number?"


@pytest.fixture
async def client(
    aiohttp_client: ClientFactory, db_url: str, tmp_path: Path
) -> TestClient[Any, Any]:
    widget = {"allowed_origins": [ORIGIN], "identity_secret": SECRET}  # frames up to 16 KiB
    config = write_config(tmp_path, db_url, widget)
    return await aiohttp_client(create_app(config, Runtime(config, nlu=NoNLU())))


@pytest.fixture(autouse=True)
def _guard_the_loop(client: TestClient[Any, Any], no_blocking: None) -> None:
    """Every test here fails if the server blocks the event loop."""


@pytest.fixture
async def connect(client: TestClient[Any, Any]) -> AsyncIterator[Connect]:
    sockets: list[WidgetSocket] = []

    async def open_socket(visitor: str | None = None, secret: str | None = None) -> WidgetSocket:
        ws = await client.ws_connect("/widget/ws", headers={"Origin": ORIGIN})
        sockets.append(WidgetSocket(ws, visitor or new_id(), secret))
        return sockets[-1]

    yield open_socket
    for socket in sockets:
        await socket.ws.close()


def runtime(client: TestClient[Any, Any]) -> Runtime:
    return client.server.app[RUNTIME]


async def texts(client: TestClient[Any, Any], key: str) -> list[str]:
    """The transcript of conversation ``key`` (created empty when new)."""
    store = runtime(client).store
    conversation = await store.conversation("widget", key, key)
    return [m.text for m in await store.transcript(conversation.id)]


async def push(client: TestClient[Any, Any], key: str, text: str) -> None:
    store = runtime(client).store
    conversation = await store.conversation("widget", key, key)
    await runtime(client).dispatcher.push(conversation.id, {"text": text})


async def quiet(sock: WidgetSocket) -> list[str]:
    """The texts of the message frames ``sock`` got, read up to a ping's pong."""
    await sock.ws.send_json({"type": "ping", "nonce": "quiet"})
    await sock.next(lambda f: f["type"] == "pong" and f["nonce"] == "quiet")
    return [f["text"] for f in sock.messages()]


def user(user_id: str) -> dict[str, str]:
    return {"user_id": user_id, "user_hash": sign(SECRET, user_id)}


async def test_only_the_issued_secret_resumes_a_conversation(
    client: TestClient[Any, Any], connect: Connect
) -> None:
    first = await connect()
    visitor = first.visitor
    hello = await first.hello()
    secret = hello["secret"]
    assert hello["visitor"] == visitor
    assert isinstance(secret, str)
    assert len(secret) >= 32
    assert secret != visitor
    await first.send("/check_order")
    await first.reply(ASK)
    stored = (await runtime(client).store.conversation("widget", visitor, visitor)).metadata
    assert stored["visitor_secrets"] == [hashlib.sha256(secret.encode()).hexdigest()]
    assert secret not in json.dumps(stored)

    for presented in (None, "x" * 43, secret[:-1] + ("A" if secret[-1] != "A" else "B")):
        thief = await connect(visitor, presented)
        renewed = await thief.hello(resume=True)
        assert renewed["visitor"] != visitor
        assert renewed["secret"] not in (secret, presented)
        await push(client, visitor, f"Your address, {presented}")
        await first.reply(f"Your address, {presented}")
        assert await quiet(thief) == []  # no history, no live events
        await thief.send("/check_order")  # lands in the thief's own conversation
        await thief.reply(ASK)
    assert (await texts(client, visitor))[:2] == ["/check_order", ASK]
    assert (await texts(client, visitor)).count("/check_order") == 1

    owner = await connect(visitor, secret)
    again = await owner.hello(resume=True)
    assert (again["visitor"], "secret" in again) == (visitor, False)
    assert (await quiet(owner))[:2] == ["/check_order", ASK]


async def test_a_conversation_stored_without_a_secret_is_not_replayed(
    client: TestClient[Any, Any], connect: Connect
) -> None:
    visitor = new_id()
    store = runtime(client).store
    await store.receive("widget", visitor, visitor, f"{visitor}:m-1", "I live at 1 Elm St")
    sock = await connect(visitor)
    hello = await sock.hello(resume=True)
    assert hello["visitor"] != visitor
    assert await quiet(sock) == []


async def test_a_verified_user_id_chooses_the_conversation(
    client: TestClient[Any, Any], connect: Connect
) -> None:
    browser = new_id()  # one browser: the same visitor id for both users
    first = await connect(browser)
    assert (await first.hello(**user("42")))["verified"] is True
    await first.send("/check_order")
    await first.reply(ASK)
    second = await connect(browser, first.secret)
    assert (await second.hello(resume=True, **user("43")))["verified"] is True
    await push(client, "user:42", "For user 42 only")
    await first.reply("For user 42 only")
    assert await quiet(second) == []  # neither 42's history nor 42's live messages
    ack_id = await second.send("HL-12345")
    ack = await second.next(lambda f: f["type"] == "ack" and f["client_id"] == ack_id)
    stored = await runtime(client).store.message(ack["id"])
    assert (stored.metadata["user_id"], stored.text) == ("43", "HL-12345")
    assert await texts(client, "user:42") == ["/check_order", ASK, "For user 42 only"]
    assert (await texts(client, "user:43"))[0] == "HL-12345"

    elsewhere = await connect()  # user 42 on another device sees their conversation
    await elsewhere.hello(resume=True, **user("42"))
    assert (await quiet(elsewhere))[:3] == ["/check_order", ASK, "For user 42 only"]
    anonymous = await connect(browser, first.secret)  # signed out, same browser
    assert (await anonymous.hello(resume=True))["verified"] is False
    assert await quiet(anonymous) == []


async def test_visitor_ids_stay_out_of_the_widget_logs(
    client: TestClient[Any, Any], connect: Connect, caplog: pytest.LogCaptureFixture
) -> None:
    first = await connect()
    await first.hello()
    await first.send("/check_order")
    await first.reply(ASK)
    with caplog.at_level(logging.DEBUG, logger="connectors.widget"):
        thief = await connect(first.visitor)
        await thief.hello(resume=True)
        await quiet(thief)
    widget_lines = [r.getMessage() for r in caplog.records if r.name.startswith("connectors")]
    assert widget_lines, "the refused secret is logged"
    assert not [line for line in widget_lines if first.visitor in line]
    short = hashlib.sha256(first.visitor.encode()).hexdigest()[:12]
    assert any(short in line for line in widget_lines)


DEEP = '{"type": "message", "client_id": "deep-nesting-1", "text": ' + "[" * 5000 + "]" * 5000 + "}"
BAD_HELLOS = [
    '{"type": "hello", "visitor": "v\\ud800123456"}',
    '{"type": "hello", "visitor": "v-123456789", "user_id": "4\\u00002", "user_hash": "00"}',
    '{"type": "hello", "visitor": "v-123456789", "user_id": "42", "user_hash": "\\udfff"}',
    "[" * 5000 + "]" * 5000,
]
BAD_FRAMES = [
    # (raw frame, the client_id the error names)
    (DEEP, None),
    ('{"type": "message", "client_id": "surrogate-01", "text": "a\\ud800b"}', "surrogate-01"),
    (
        '{"type": "message", "client_id": "surrogate-02", "text": "hi", "title": "\\udfff"}',
        "surrogate-02",
    ),
    ('{"type": "message", "client_id": "nul-in-text", "text": "a\\u0000b"}', "nul-in-text"),
    ('{"type": "message", "client_id": "not-a-number", "text": "x", "n": NaN}', "not-a-number"),
    ('{"type": "ping", "nonce": 1' + "0" * 5000 + "}", None),
]


async def test_bad_frames_get_a_final_error_and_the_socket_stays_open(
    client: TestClient[Any, Any], connect: Connect
) -> None:
    sock = await connect()
    for raw in BAD_HELLOS:
        await sock.ws.send_str(raw)
        error = await sock.next(lambda f: f["type"] == "error")
        assert (error["reason"], error["retry"]) == ("malformed", False), raw[:80]
    await sock.hello()
    answers = []
    for raw, _ in BAD_FRAMES:
        await sock.ws.send_str(raw)
        error = await sock.next(lambda f: f["type"] == "error")
        answers.append((error["reason"], error.get("client_id"), error["retry"]))
        assert error["detail"]
        await sock.ws.send_json({"type": "ping", "nonce": len(answers)})
        assert (await sock.next(lambda f: f["type"] == "pong"))["nonce"] == len(answers)
    assert answers == [("malformed", client_id, False) for _, client_id in BAD_FRAMES]
    await sock.send("/check_order")
    await sock.reply(ASK)
    assert await texts(client, sock.visitor) == ["/check_order", ASK]
