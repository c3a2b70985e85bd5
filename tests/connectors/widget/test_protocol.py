"""The widget's WebSocket protocol against the real app, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from bot.bus import conversation_topic
from bot.runtime import NoNLU, Runtime
from bot.server import RUNTIME, create_app
from bot.storage.console_store import ConsoleStore
from connectors.widget.config import DAYS
from connectors.widget.identity import sign
from tests.connectors.widget.support import (
    RESPONSES,
    SECRET,
    WidgetSocket,
    new_id,
    write_config,
)

ClientFactory = Callable[[web.Application], Awaitable[TestClient[Any, Any]]]
ORIGIN = "https://shop.example.com"
ASK = "What is your order number?"
CONFIRM = "Shall I go ahead with HL-12345?"


def closed_today() -> str:
    """Business hours that exclude the whole of today and its neighbours, in UTC."""
    return f"{DAYS[(datetime.now(UTC).weekday() + 3) % 7]} 09:00-10:00"


@pytest.fixture
async def client(
    aiohttp_client: ClientFactory, db_url: str, tmp_path: Path
) -> TestClient[Any, Any]:
    config = write_config(
        tmp_path,
        db_url,
        {
            "allowed_origins": [ORIGIN],
            "identity_secret": SECRET,
            "max_frame_bytes": 1024,
            "visitor_rate": {"per_second": 0.001, "burst": 5},
            "business_hours": {"timezone": "UTC", "open": [closed_today()]},
            "offline_message": "We are closed; we answer tomorrow.",
        },
    )
    return await aiohttp_client(create_app(config, Runtime(config, nlu=NoNLU())))


@pytest.fixture(autouse=True)
def _guard_the_loop(client: TestClient[Any, Any], no_blocking: None) -> None:
    """Every test here fails if the server blocks the event loop."""


@pytest.fixture
async def connect(client: TestClient[Any, Any]) -> AsyncIterator[Callable[..., Any]]:
    sockets: list[WidgetSocket] = []

    async def open_socket(
        visitor: str | None = None, origin: str = ORIGIN, secret: str | None = None
    ) -> WidgetSocket:
        ws = await client.ws_connect("/widget/ws", headers={"Origin": origin})
        sockets.append(WidgetSocket(ws, visitor or new_id(), secret))
        return sockets[-1]

    yield open_socket
    for socket in sockets:
        await socket.ws.close()


def runtime(client: TestClient[Any, Any]) -> Runtime:
    return client.server.app[RUNTIME]


async def inbound_texts(client: TestClient[Any, Any], visitor: str) -> list[str]:
    store = runtime(client).store
    conversation = await store.conversation("widget", visitor, visitor)
    return [m.text for m in await store.transcript(conversation.id) if m.direction == "in"]


async def test_message_is_acked_then_answered(connect: Callable[..., Any]) -> None:
    sock = await connect()
    hello = await sock.hello()
    assert hello["online"] is False
    assert hello["offline_message"] == "We are closed; we answer tomorrow."
    assert hello["verified"] is False
    assert hello["max_chars"] == 100
    client_id = await sock.send("/check_order")
    ack = await sock.next(lambda f: f["type"] == "ack")
    assert ack == {"type": "ack", "client_id": client_id, "id": ack["id"], "duplicate": False}
    reply = await sock.reply(ASK)
    assert reply["id"] > ack["id"]
    assert reply["buttons"] == []
    echoed = [f for f in sock.messages("in") if f["client_id"] == client_id]
    assert [f["id"] for f in echoed] == [ack["id"]]
    assert any(f["type"] == "typing" for f in sock.frames)


async def test_retry_with_same_client_id_is_stored_and_answered_once(
    client: TestClient[Any, Any], connect: Callable[..., Any]
) -> None:
    sock = await connect()
    await sock.hello()
    client_id = await sock.send("/check_order")
    first = await sock.next(lambda f: f["type"] == "ack")
    await sock.reply(ASK)
    await sock.send("/check_order", client_id)
    again = await sock.next(lambda f: f["type"] == "ack")
    assert again == {**first, "duplicate": True}
    await sock.send("HL-12345")
    await sock.reply(CONFIRM)
    assert [f["text"] for f in sock.messages("out")] == [ASK, CONFIRM]
    assert await inbound_texts(client, sock.visitor) == ["/check_order", "HL-12345"]


async def test_resume_replays_what_was_missed_once(
    client: TestClient[Any, Any], connect: Callable[..., Any]
) -> None:
    first = await connect()
    await first.hello()
    await first.send("/check_order")
    seen = (await first.reply(ASK))["id"]
    await first.ws.close()
    store = runtime(client).store
    conversation = await store.conversation("widget", first.visitor, first.visitor)
    pushed = await runtime(client).dispatcher.push(
        conversation.id, {"text": "Hi, Ana here.", "metadata": {"agent": {"name": "Ana"}}}
    )
    back = await connect(first.visitor, secret=first.secret)
    await back.hello(last_id=seen, resume=True)
    replayed = back.messages()
    assert [(f["text"], f.get("agent")) for f in replayed] == [("Hi, Ana here.", "Ana")]
    assert replayed[0]["id"] == pushed.metadata["message_id"]
    fresh = await connect(first.visitor, secret=first.secret)
    await fresh.hello(resume=True)
    assert [f["text"] for f in fresh.messages()] == ["/check_order", ASK, "Hi, Ana here."]
    ids = [f["id"] for f in fresh.messages()]
    assert ids == sorted(set(ids))


async def test_a_second_tab_sees_the_conversation_live(connect: Callable[..., Any]) -> None:
    tab1 = await connect()
    await tab1.hello()
    tab2 = await connect(tab1.visitor)
    await tab2.hello()
    client_id = await tab1.send("/check_order", title="Check my order")
    mine = await tab2.next(lambda f: f["type"] == "message" and f["direction"] == "in")
    assert (mine["client_id"], mine["title"], mine["text"]) == (
        client_id,
        "Check my order",
        "/check_order",
    )
    await tab2.reply(ASK)
    await tab1.reply(ASK)


async def test_pushed_agent_message_and_handoff_are_marked(
    client: TestClient[Any, Any], connect: Callable[..., Any]
) -> None:
    # An agent account, so the handoff opens a queue (with none, the bot keeps it).
    await ConsoleStore(runtime(client).store).create_agent("ana@example.com", "Ana", "agent", "x")
    sock = await connect()
    await sock.hello()
    await sock.send("/human_handoff")
    handoff = await sock.next(lambda f: f["type"] == "message" and f["direction"] == "out")
    assert handoff["handoff"] is True
    assert "agent" not in handoff
    store = runtime(client).store
    conversation = await store.conversation("widget", sock.visitor, sock.visitor)
    assert conversation.mode == "human"
    await runtime(client).dispatcher.push(
        conversation.id, {"text": "Hello, I'm Ana.", "metadata": {"agent": {"name": "Ana"}}}
    )
    agent = await sock.reply("Hello, I'm Ana.")
    assert agent["agent"] == "Ana"
    assert "handoff" not in agent


async def test_bus_events_are_forwarded(
    client: TestClient[Any, Any], connect: Callable[..., Any]
) -> None:
    sock = await connect()
    await sock.hello()
    await sock.send("/check_order")  # the conversation exists from here on
    await sock.reply(ASK)
    topic = conversation_topic("widget", sock.visitor)
    bus = runtime(client).bus
    start = len(sock.frames)
    bus.publish(topic, {"type": "internal", "secret": 1})  # not for the browser
    bus.publish(topic, {"type": "typing", "who": "bot"})
    bus.publish(topic, {"type": "token", "text": "Hel"})
    bus.publish(topic, {"type": "status", "status": "handoff", "text": "Finding someone"})
    await sock.next(lambda f: f["type"] == "status")
    assert sock.frames[start:] == [
        {"type": "typing", "who": "bot"},
        {"type": "token", "text": "Hel"},
        {"type": "status", "status": "handoff", "text": "Finding someone"},
    ]


async def test_customer_typing_reaches_the_bus_but_is_not_echoed(
    client: TestClient[Any, Any], connect: Callable[..., Any]
) -> None:
    sock = await connect()
    await sock.hello()
    topic = conversation_topic("widget", sock.visitor)
    bus = runtime(client).bus
    with bus.subscribe(topic) as events:
        await sock.ws.send_json({"type": "typing"})
        await sock.ws.send_json({"type": "typing"})  # within a second: dropped
        await sock.ws.send_json({"type": "ping", "nonce": 1})
        await sock.next(lambda f: f["type"] == "pong")
        first = await events.get()
        bus.publish(topic, {"type": "typing", "who": "agent", "name": "Ana"})
        second = await events.get()
    assert (first["type"], first["who"]) == ("typing", "customer")
    assert second["who"] == "agent"  # only one customer event was published
    await sock.next(lambda f: f["type"] == "typing")
    typing = [f for f in sock.frames if f["type"] == "typing"]
    assert typing == [{"type": "typing", "who": "agent", "name": "Ana"}]


async def test_origin_outside_the_allow_list_gets_403(
    client: TestClient[Any, Any], connect: Callable[..., Any]
) -> None:
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await connect(origin="https://evil.example.net")
    assert refused.value.status == 403
    headers = {
        "Origin": "https://evil.example.net",
        "Connection": "Upgrade",
        "Upgrade": "websocket",
        "Sec-WebSocket-Version": "13",
        "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
    }
    resp = await client.get("/widget/ws", headers=headers)
    assert resp.status == 403
    assert await resp.json() == {
        "error": "forbidden_origin",
        "reason": "the origin 'https://evil.example.net' may not embed this widget",
    }
    plain = await client.ws_connect("/widget/ws")  # no Origin: not a browser
    await plain.close()


async def test_rate_limit_refuses_and_does_not_store(
    client: TestClient[Any, Any], connect: Callable[..., Any]
) -> None:
    sock = await connect()
    await sock.hello()
    for _ in range(5):
        await sock.send("/greet")
        await sock.next(lambda f: f["type"] == "ack")
    refused = await sock.send("/hours")
    error = await sock.next(lambda f: f["type"] == "error")
    assert error == {
        "type": "error",
        "reason": "rate_limited",
        "detail": "too many messages; wait a moment and send it again",
        "client_id": refused,
        "retry": False,
    }
    assert await inbound_texts(client, sock.visitor) == ["/greet"] * 5
    text = await (await client.get("/metrics")).text()
    assert 'helpline_http_rejections_total{channel="widget",reason="rate_limited"}' in text


async def test_empty_too_long_and_too_large_are_refused(
    client: TestClient[Any, Any], connect: Callable[..., Any]
) -> None:
    sock = await connect()
    await sock.hello()
    reasons = []
    for text in ("   ", "y" * 101, "z" * 2000):
        client_id = await sock.send(text)
        error = await sock.next(lambda f: f["type"] == "error")
        reasons.append((error["reason"], error.get("client_id") == client_id))
    assert reasons == [("empty", True), ("too_long", True), ("frame_too_large", False)]
    await sock.send("/check_order")
    assert (await sock.next(lambda f: f["type"] == "ack"))["duplicate"] is False
    assert await inbound_texts(client, sock.visitor) == ["/check_order"]


MALFORMED = json.loads((RESPONSES / "malformed_frames.json").read_text())


async def test_malformed_frames_get_a_reason_and_the_socket_stays_usable(
    connect: Callable[..., Any],
) -> None:
    sock = await connect()
    await sock.hello()
    answers = []
    for case in MALFORMED:
        await sock.ws.send_str(case["raw"])
        error = await sock.next(lambda f: f["type"] == "error")
        answers.append({"raw": case["raw"], "reason": error["reason"], "detail": error["detail"]})
    assert answers == MALFORMED
    await sock.ws.send_bytes(b"\x00binary")
    error = await sock.next(lambda f: f["type"] == "error")
    assert error["detail"] == "frames must be JSON text"
    await sock.ws.send_json({"type": "ping", "nonce": 1})
    assert (await sock.next(lambda f: f["type"] == "pong"))["nonce"] == 1
    await sock.send("/check_order")
    await sock.reply(ASK)


async def test_messages_before_hello_are_refused(connect: Callable[..., Any]) -> None:
    sock = await connect()
    await sock.send("/greet")
    error = await sock.next(lambda f: f["type"] == "error")
    assert error["reason"] == "hello_first"
    hello = await sock.hello()
    assert hello["visitor"] == sock.visitor


IDENTITIES = [
    ({"user_id": "42", "user_hash": sign(SECRET, "42")}, True),
    ({"user_id": "42", "user_hash": sign(SECRET, "42").upper()}, True),
    ({"user_id": "42", "user_hash": sign("another-secret", "42")}, False),
    ({"user_id": "43", "user_hash": sign(SECRET, "42")}, False),
    ({"user_id": 42, "user_hash": None}, False),
    ({}, False),
]


async def test_identity_is_verified_by_hmac(
    client: TestClient[Any, Any], connect: Callable[..., Any]
) -> None:
    for identity, verified in IDENTITIES:
        sock = await connect()
        hello = await sock.hello(**identity)
        assert hello["verified"] is verified, identity
        await sock.send("/greet")
        ack = await sock.next(lambda f: f["type"] == "ack")
        stored = await runtime(client).store.message(ack["id"])
        expected = {"verified": True, "user_id": "42"} if verified else {"verified": False}
        assert {k: v for k, v in stored.metadata.items() if k != "client_id"} == expected
        assert stored.external_id == f"{sock.visitor}:{ack['client_id']}"
