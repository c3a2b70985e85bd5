"""Property-based fuzzing of every HTTP route the server mounts: no 5xx, a JSON reason.

The routes are read from the app's router, so a route added later is fuzzed
too. Hypothesis drives a real client from a worker thread against the app
running on the test's loop, with bodies of every shape: arbitrary JSON (lone
surrogates, NUL, huge and non-finite numbers, deep nesting), objects with the
field names our endpoints read, and raw bytes. Slack requests are signed half
of the time so that the fuzz reaches past the signature check, and console
requests carry a live agent session half of the time.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import re
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import ClientSession, web
from aiohttp.test_utils import TestServer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.config import load_config
from bot.runtime import NoNLU, Runtime
from bot.server import RUNTIME, create_app
from bot.storage.console_store import ConsoleStore
from connectors.console.passwords import hash_password

PROJECT = Path(__file__).parent / "dialogue" / "project"
SIGNING_SECRET = "fuzz-signing-secret"
ADMIN = ("fuzz-admin@example.com", "correct horse battery staple")
FIELDS = [
    "sender", "message", "message_id", "metadata", "email", "password", "text", "type",
    "client_id", "status", "name", "role", "content", "messages", "model", "max_tokens",
    "stream", "seed", "payload", "user", "actions", "event", "challenge", "token", "id",
    "agent_id", "shortcut", "body", "disabled", "presence", "q", "team_id", "channel",
]  # fmt: skip
ODD_TEXT = ["\ud800", "\udfff", "\x00", "a\x00b", "", " ", "9" * 5000, "x" * 5000, "%00", "../"]

json_leaf = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=2**63 - 2, max_value=2**80),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=40),
    st.sampled_from(ODD_TEXT),
)
json_value = st.recursive(
    json_leaf,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner),
    max_leaves=12,
)
shaped_object = st.dictionaries(st.sampled_from(FIELDS), json_value, max_size=6)


def _encode(value: Any) -> bytes:
    return json.dumps(value, allow_nan=True).encode("utf-8", "surrogatepass")


raw_body = st.one_of(
    shaped_object.map(_encode),
    json_value.map(_encode),
    st.binary(max_size=200),
    st.integers(min_value=100, max_value=6000).map(lambda n: b"[" * n + b"]" * n),
    st.integers(min_value=100, max_value=6000).map(lambda n: b'{"a":' * n + b"1" + b"}" * n),
    st.just(b'{"n": ' + b"7" * 5000 + b"}"),
    st.just(b""),
)
path_part = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70).map(str),
    st.text(alphabet="abcXYZ019._-%", min_size=1, max_size=20),
    st.sampled_from(["x" * 5000, "..", "%2e%2e", "0", "-1", "1e9"]),
)


def routes(app: web.Application) -> list[tuple[str, str]]:
    """Every (method, path pattern) the app and its sub-apps serve, HEAD aside."""
    found: list[tuple[str, str]] = []
    for resource in app.router.resources():
        sub = getattr(resource, "_app", None)
        if isinstance(sub, web.Application):
            found += routes(sub)
            continue
        found += [(r.method, resource.canonical) for r in resource if r.method != "HEAD"]
    return found


def slack_headers(body: bytes, signed: bool, stamp: str) -> dict[str, str]:
    """Slack's request headers, signed with our secret or left as fuzz gave them."""
    if not signed:
        return {"X-Slack-Request-Timestamp": stamp, "X-Slack-Signature": "v0=" + "0" * 64}
    now = str(int(time.time()))
    base = b"v0:" + now.encode() + b":" + body
    digest = hmac.new(SIGNING_SECRET.encode(), base, hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": now, "X-Slack-Signature": f"v0={digest}"}


def check_answer(method: str, path: str, status: int, content_type: str, text: str) -> None:
    """No 5xx; a JSON error names a reason."""
    assert status < 500, f"{method} {path} -> {status}: {text[:300]}"
    if status >= 400 and content_type == "application/json":
        body = json.loads(text)
        error = body.get("error") if isinstance(body, dict) else None
        assert error, f"{method} {path} -> {status} without an error: {text[:300]}"
        reason = body.get("reason") or (error.get("message") if isinstance(error, dict) else None)
        assert reason, f"{method} {path} -> {status} without a reason: {text[:300]}"


async def _make_server(db_url: str, tmp_path: Path) -> TestServer:
    (tmp_path / "helpline.yml").write_text(
        f"bot:\n  path: {PROJECT}\nstorage:\n  url: {db_url}\n"
        "llm:\n  enabled: false\nlogging:\n  level: CRITICAL\n"
        "connectors:\n"
        "  rest: {sender_rate: null, ip_rate: null}\n"
        "  widget: {allowed_origins: ['*']}\n"
        "  console: {}\n"
        f"  slack: {{enabled: true, bot_token: xoxb-fuzz, signing_secret: {SIGNING_SECRET},"
        " api_url: 'http://127.0.0.1:9/api/'}\n"
    )
    config = load_config(tmp_path / "helpline.yml")
    server = TestServer(create_app(config, Runtime(config, nlu=NoNLU())))
    await server.start_server()
    console = ConsoleStore(server.app[RUNTIME].store)
    password = await asyncio.to_thread(hash_password, ADMIN[1])
    await console.create_agent(ADMIN[0], "Fuzz Admin", "admin", password)
    return server


async def _login(session: ClientSession, base: str) -> dict[str, str]:
    resp = await session.post(
        f"{base}/console/api/login", json={"email": ADMIN[0], "password": ADMIN[1]}
    )
    assert resp.status == 200, await resp.text()
    body = await resp.json()
    return {"X-CSRF-Token": str(body["csrf"])}


Call = Callable[[str, str, bytes, dict[str, str], bool], Awaitable[tuple[int, str, str]]]


async def test_no_route_answers_5xx(db_url: str, tmp_path: Path) -> None:
    server = await _make_server(db_url, tmp_path)
    loop = asyncio.get_running_loop()
    base = str(server.make_url("")).rstrip("/")
    table = [(m, p) for m, p in routes(server.app) if not p.endswith("/ws")]
    try:
        async with ClientSession() as anonymous, ClientSession() as agent:
            csrf = await _login(agent, base)

            async def call(
                method: str, path: str, body: bytes, headers: dict[str, str], auth: bool
            ) -> tuple[int, str, str]:
                session = agent if auth else anonymous
                extra = csrf if auth else {}
                async with session.request(
                    method, base + path, data=body, headers={**headers, **extra}
                ) as resp:
                    return resp.status, resp.content_type, await resp.text(errors="replace")

            await asyncio.to_thread(_fuzz, table, call, loop)
    finally:
        await server.close()


def _fuzz(table: list[tuple[str, str]], call: Call, loop: asyncio.AbstractEventLoop) -> None:
    """Hypothesis in this worker thread; each request runs on the server's loop."""

    @settings(
        max_examples=400,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(data=st.data())
    def one_request(data: st.DataObject) -> None:
        method, pattern = data.draw(st.sampled_from(table), label="route")
        path = re.sub(r"\{[^}]+\}", lambda _: data.draw(path_part, label="part"), pattern)
        body = data.draw(raw_body, label="body")
        headers = {"Content-Type": data.draw(st.sampled_from(["application/json", "text/plain"]))}
        if pattern.startswith("/webhooks/slack"):
            stamp = data.draw(st.sampled_from(["", "abc", "1e99", "-1", "9" * 40]))
            headers |= slack_headers(body, data.draw(st.booleans()), stamp)
        auth = data.draw(st.booleans(), label="auth")
        future = asyncio.run_coroutine_threadsafe(call(method, path, body, headers, auth), loop)
        status, content_type, text = future.result(timeout=60)
        check_answer(method, path, status, content_type, text)

    one_request()


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_every_route_is_found(db_url: str, tmp_path: Path) -> None:
    """The route table the fuzz draws from covers every connector (it cannot pass empty)."""
    server = await _make_server(db_url, tmp_path)
    try:
        paths = {p for _, p in routes(server.app)}
    finally:
        await server.close()
    for expected in ("/webhooks/rest/webhook", "/console/api/login", "/healthz"):
        assert expected in paths
    assert any("slack" in p for p in paths), paths


ws_frame = st.one_of(
    st.builds(
        lambda kind, rest: {"type": kind, **rest},
        st.sampled_from(["hello", "message", "ping", "typing", "read", "x", ""]),
        shaped_object,
    ).map(_encode),
    json_value.map(_encode),
    st.integers(min_value=100, max_value=6000).map(lambda n: b"[" * n + b"]" * n),
    st.binary(max_size=100),
)


async def test_the_widget_socket_survives_any_frame(db_url: str, tmp_path: Path) -> None:
    """Every frame gets a well-formed answer and the socket stays open."""
    server = await _make_server(db_url, tmp_path)
    loop = asyncio.get_running_loop()
    try:
        async with ClientSession() as session:
            ws = await session.ws_connect(server.make_url("/widget/ws"))
            await ws.send_json({"type": "hello", "visitor": "fuzz-visitor", "last_id": 0})
            while (await ws.receive_json()).get("type") != "synced":
                pass

            async def exchange(frame: bytes, nonce: str) -> list[dict[str, Any]]:
                if frame.isascii() and frame.strip()[:1] in (b"{", b"["):
                    await ws.send_str(frame.decode())
                else:
                    await ws.send_bytes(frame)
                await ws.send_json({"type": "ping", "nonce": nonce})
                seen = []
                while True:
                    answer = await ws.receive(timeout=30)
                    assert answer.type is aiohttp.WSMsgType.TEXT, (answer, frame[:200])
                    seen.append(json.loads(answer.data))
                    if seen[-1] == {"type": "pong", "nonce": nonce}:
                        return seen

            await asyncio.to_thread(_fuzz_frames, exchange, loop)
            assert not ws.closed
    finally:
        await server.close()


def _fuzz_frames(
    exchange: Callable[[bytes, str], Awaitable[list[dict[str, Any]]]],
    loop: asyncio.AbstractEventLoop,
) -> None:
    counter = iter(range(10**9))

    @settings(max_examples=200, deadline=None, database=None)
    @given(frame=ws_frame)
    def one_frame(frame: bytes) -> None:
        nonce = f"n{next(counter)}"
        future = asyncio.run_coroutine_threadsafe(exchange(frame, nonce), loop)
        for answer in future.result(timeout=60):
            if answer.get("type") == "error":
                assert answer.get("reason"), answer

    one_frame()
