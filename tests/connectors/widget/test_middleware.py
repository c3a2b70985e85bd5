"""The widget's guards and translation on their own, and its static routes (SQLite only)."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, make_mocked_request
from pydantic import SecretStr, ValidationError

from bot.runtime import NoNLU, Runtime
from bot.server import create_app
from connectors.widget.config import Bucket, BusinessHours, WidgetConfig, parse_window
from connectors.widget.identity import ANONYMOUS, Identity, sign, verify
from connectors.widget.origin import OriginGuard, normalise
from connectors.widget.ratelimit import RateLimit, TokenBuckets
from connectors.widget.translate import (
    ClientMessage,
    FrameError,
    Hello,
    Peer,
    Ping,
    event_frame,
    parse_frame,
    to_inbound,
)
from tests.connectors.widget.support import RESPONSES, WidgetSocket, new_id, write_config

ClientFactory = Callable[[web.Application], Awaitable[TestClient[Any, Any]]]


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_token_bucket_allows_a_burst_then_refills() -> None:
    clock = Clock()
    buckets = TokenBuckets(Bucket(per_second=0.5, burst=3), clock)
    assert [buckets.take("a") for _ in range(4)] == [True, True, True, False]
    assert buckets.take("b")
    clock.now += 2.0  # one token back
    assert [buckets.take("a") for _ in range(2)] == [True, False]
    clock.now += 1000.0  # never more than the burst
    assert [buckets.take("a") for _ in range(4)] == [True, True, True, False]


def test_full_buckets_are_forgotten_above_max_keys() -> None:
    clock = Clock()
    buckets = TokenBuckets(Bucket(per_second=1.0, burst=2), clock, max_keys=2)
    for key in "abc":
        buckets.take(key)
    clock.now += 10
    buckets.take("d")
    assert len(buckets._buckets) == 1


async def test_rate_limit_middleware_checks_visitor_and_ip() -> None:
    clock = Clock()
    limit = RateLimit(Bucket(per_second=1, burst=1), Bucket(per_second=1, burst=2), clock)
    passed: list[str] = []

    async def call(visitor: str) -> None:
        async def next_step() -> None:
            passed.append(visitor)

        await limit(ClientMessage("c" * 8, "hi"), Peer(visitor, "10.0.0.1"), next_step)

    await call("visitor-1")
    with pytest.raises(FrameError, match="too many messages"):
        await call("visitor-1")  # the visitor's bucket
    with pytest.raises(FrameError) as refused:
        await call("visitor-2")  # the IP's bucket (two taken already)
    assert refused.value.reason == "rate_limited"
    assert passed == ["visitor-1"]


def request(origin: str | None, host: str = "bot.example.com") -> web.Request:
    headers = {"Host": host}
    if origin is not None:
        headers["Origin"] = origin
    return make_mocked_request("GET", "/widget/ws", headers=headers)


@pytest.mark.parametrize(
    ("allowed", "origin", "host", "ok"),
    [
        ((), "https://bot.example.com", "bot.example.com", True),
        ((), "http://bot.example.com:8080", "bot.example.com:8080", True),
        ((), "https://bot.example.com:443", "bot.example.com", True),
        ((), "http://localhost:3000", "bot.example.com", True),
        ((), "http://127.0.0.1:5173", "bot.example.com", True),
        ((), "https://shop.example.com", "bot.example.com", False),
        ((), "null", "bot.example.com", False),
        ((), None, "bot.example.com", True),
        (("https://shop.example.com",), "https://SHOP.example.com", "bot.example.com", True),
        (("https://shop.example.com",), "http://shop.example.com", "bot.example.com", False),
        (("https://shop.example.com",), "http://localhost:3000", "bot.example.com", False),
        (("https://shop.example.com",), "https://bot.example.com", "bot.example.com", False),
        (("*",), "https://anything.example", "bot.example.com", True),
    ],
)
def test_origin_guard(allowed: tuple[str, ...], origin: str | None, host: str, ok: bool) -> None:
    refusal = OriginGuard(allowed).refusal(request(origin, host))
    assert (refusal is None) is ok


def test_origins_are_normalised() -> None:
    assert normalise("HTTPS://Shop.Example.com:443") == "https://shop.example.com"
    assert normalise("http://[::1]:8000") == "http://[::1]:8000"
    assert normalise("javascript:alert(1)") is None
    assert normalise("http://host:99999") is None


def test_identity_verification() -> None:
    secret = SecretStr("s3cret")
    assert verify(secret, "u-1", sign("s3cret", "u-1")) == Identity(True, "u-1")
    assert verify(secret, "u-1", "0" * 64) is ANONYMOUS
    assert verify(secret, "u-1", None) is ANONYMOUS
    assert verify(None, "u-1", sign("s3cret", "u-1")) is ANONYMOUS
    assert verify(secret, "x" * 300, sign("s3cret", "x" * 300)) is ANONYMOUS
    assert verify(secret, None, None) is ANONYMOUS


def test_business_hours() -> None:
    hours = BusinessHours(timezone="Europe/Berlin", open=("mon-fri 09:00-17:00", "sat 10:00-24:00"))
    monday_9_utc = datetime(2025, 1, 6, 9, 0, tzinfo=UTC)  # 10:00 in Berlin
    assert hours.is_open(monday_9_utc)
    assert not hours.is_open(datetime(2025, 1, 6, 16, 0, tzinfo=UTC))  # 17:00 Berlin
    assert hours.is_open(datetime(2025, 1, 11, 22, 59, tzinfo=UTC))  # Saturday 23:59
    assert not hours.is_open(datetime(2025, 1, 12, 12, 0, tzinfo=UTC))  # Sunday
    assert parse_window("fri-mon 00:00-01:00")[0] == frozenset({4, 5, 6, 0})
    assert WidgetConfig().is_open(monday_9_utc)


@pytest.mark.parametrize(
    ("section", "error"),
    [
        ({"business_hours": {"open": ["mon-fri 9-17"]}}, "should look like"),
        ({"business_hours": {"open": ["xyz 09:00-10:00"]}}, "days are"),
        ({"business_hours": {"open": ["mon 10:00-09:00"]}}, "must end after"),
        ({"business_hours": {"open": ["mon 09:00-25:00"]}}, "not a time of day"),
        ({"business_hours": {"timezone": "Mars/Base", "open": ["mon 09:00-10:00"]}}, "unknown"),
        ({"business_hours": {"open": []}}, "at least 1"),
        ({"visitor_rate": {"per_second": 0, "burst": 1}}, "greater than 0"),
        ({"colour": "red"}, "Extra inputs"),
    ],
)
def test_config_errors(section: dict[str, Any], error: str) -> None:
    with pytest.raises(ValidationError, match=error):
        WidgetConfig.model_validate(section)


def test_recorded_client_frames_parse() -> None:
    session = json.loads((RESPONSES / "session.json").read_text())
    frames = [parse_frame(json.dumps(f), 16384) for f in session["client"]]
    assert [type(f) for f in frames] == [Hello, ClientMessage, ClientMessage, Ping]
    assert frames[2] == ClientMessage("0a9b8c7d-6e5f-4a3b-2c1d-0e9f8a7b6c5d", "/affirm", "Yes")
    kinds = {f["type"] for f in session["server"]}
    assert kinds == {
        "hello",
        "synced",
        "message",
        "ack",
        "typing",
        "token",
        "status",
        "error",
        "pong",
    }


def test_inbound_message_and_frames() -> None:
    peer = Peer("visitor-1", "10.0.0.1", Identity(True, "u-1"))
    inbound = to_inbound(peer, ClientMessage("client-01", "/affirm", "Yes"))
    assert (inbound.channel, inbound.conversation_id, inbound.sender) == ("widget",) + (
        "visitor-1",
    ) * 2
    assert inbound.message_id == "visitor-1:client-01"
    assert inbound.metadata == {
        "client_id": "client-01",
        "verified": True,
        "user_id": "u-1",
        "title": "Yes",
    }
    out = event_frame(
        {
            "type": "message",
            "direction": "out",
            "id": 7,
            "text": "hi",
            "buttons": [{"title": "Yes", "payload": "/affirm"}],
            "metadata": {"response": "utter_x", "message_id": 7, "agent": {"name": "Ana"}},
            "at": "2025-01-01T00:00:00+00:00",
        }
    )
    assert out == {
        "type": "message",
        "id": 7,
        "direction": "out",
        "text": "hi",
        "buttons": [{"title": "Yes", "payload": "/affirm"}],
        "at": "2025-01-01T00:00:00+00:00",
        "agent": "Ana",
    }
    assert event_frame({"type": "overflow"}) is None


@pytest.fixture
async def client(aiohttp_client: ClientFactory, tmp_path: Path) -> TestClient[Any, Any]:
    config = write_config(tmp_path, f"sqlite+aiosqlite:///{tmp_path / 'h.db'}", {})
    return await aiohttp_client(create_app(config, Runtime(config, nlu=NoNLU())))


async def test_script_and_styles_are_served_with_etags(
    client: TestClient[Any, Any], no_blocking: None
) -> None:
    for path, kind in (("/widget.js", "text/javascript"), ("/widget.css", "text/css")):
        resp = await client.get(path)
        assert resp.status == 200
        assert resp.content_type == kind
        etag = resp.headers["ETag"]
        again = await client.get(path, headers={"If-None-Match": etag})
        assert again.status == 304
    script = await (await client.get("/widget.js")).text()
    assert "innerHTML" not in script.split("*/", 1)[1]


async def test_demo_page_embeds_the_widget(client: TestClient[Any, Any]) -> None:
    resp = await client.get("/widget/demo")
    assert resp.status == 200
    assert '<script src="/widget.js"' in await resp.text()


async def test_default_origins_and_shutdown_closing_sockets(
    client: TestClient[Any, Any], no_blocking: None
) -> None:
    own = f"http://{client.host}:{client.port}"
    with pytest.raises(aiohttp.WSServerHandshakeError):
        await client.ws_connect("/widget/ws", headers={"Origin": "https://elsewhere.example"})
    sock = WidgetSocket(await client.ws_connect("/widget/ws", headers={"Origin": own}), new_id())
    hello = await sock.hello()
    assert hello["online"] is True
    assert hello["offline_message"] is None
    await client.server.app.shutdown()
    hint = await sock.ws.receive()
    assert hint.json() == {"type": "reconnect", "after_ms": 1000}
    message = await sock.ws.receive()
    assert message.type is aiohttp.WSMsgType.CLOSE
    assert message.data == aiohttp.WSCloseCode.SERVICE_RESTART
