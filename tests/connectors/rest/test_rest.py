"""The REST channel end to end: HTTP in, flow turn, store, HTTP out."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from blockbuster import BlockingError

from bot import metrics
from bot.config import load_config
from bot.runtime import NoNLU, Runtime
from bot.server import create_app

PROJECT = Path(__file__).parents[2] / "bot" / "dialogue" / "project"
ClientFactory = Callable[[web.Application], Awaitable[TestClient[Any, Any]]]


@pytest.fixture
async def client(
    aiohttp_client: ClientFactory, db_url: str, tmp_path: Path
) -> TestClient[Any, Any]:
    (tmp_path / "helpline.yml").write_text(
        f"bot:\n  path: {PROJECT}\nstorage:\n  url: {db_url}\n"
        "server:\n  max_message_chars: 100\n"
        "connectors:\n  rest:\n    max_body_bytes: 2048\n"
        "llm:\n  enabled: false\n"
    )
    config = load_config(tmp_path / "helpline.yml")
    return await aiohttp_client(create_app(config, Runtime(config, nlu=NoNLU())))


@pytest.fixture(autouse=True)
def _guard_the_loop(client: TestClient[Any, Any], no_blocking: None) -> None:
    """Every test here fails if request handling blocks the event loop."""


async def post(client: TestClient[Any, Any], body: Any, **kw: Any) -> tuple[int, Any]:
    resp = await client.post("/webhooks/rest/webhook", json=body, **kw)
    return resp.status, await resp.json()


async def test_conversation_over_rest(client: TestClient[Any, Any]) -> None:
    status, body = await post(client, {"sender": "u1", "message": "/check_order"})
    assert status == 200
    assert body == [{"recipient_id": "u1", "text": "What is your order number?"}]
    status, body = await post(client, {"sender": "u1", "message": "HL-12345"})
    assert body[0]["text"] == "Shall I go ahead with HL-12345?"
    assert body[0]["buttons"] == [
        {"title": "Yes", "payload": "/affirm"},
        {"title": "No", "payload": "/deny"},
    ]


def duplicates() -> float:
    return (
        metrics.REGISTRY.get_sample_value("helpline_duplicate_messages_total", {"channel": "rest"})
        or 0.0
    )


async def test_retry_with_same_message_id_answers_once(client: TestClient[Any, Any]) -> None:
    before = duplicates()
    first = await post(client, {"sender": "u2", "message": "/greet", "message_id": "x1"})
    second = await post(client, {"sender": "u2", "message": "/greet", "message_id": "x1"})
    header = await post(
        client, {"sender": "u2", "message": "/greet"}, headers={"Idempotency-Key": "x1"}
    )
    assert first == second == header
    assert duplicates() - before == 2
    text = await (await client.get("/metrics")).text()
    assert 'helpline_duplicate_messages_total{channel="rest"}' in text


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ([], "the body must be a JSON object"),
        ({"message": "hi"}, "'sender' must be a non-empty string"),
        ({"sender": "  ", "message": "hi"}, "'sender' must be a non-empty string"),
        ({"sender": "u", "message": 3}, "'message' must be a string"),
        ({"sender": "u", "message": "hi", "metadata": []}, "'metadata' must be an object"),
        ({"sender": "x" * 300, "message": "hi"}, "'sender' is longer than 255 characters"),
    ],
)
async def test_invalid_bodies_get_400_with_reason(
    client: TestClient[Any, Any], body: Any, reason: str
) -> None:
    status, answer = await post(client, body)
    assert status == 400
    assert answer == {"error": "invalid_body", "reason": reason}


async def test_malformed_json_and_oversized_body(client: TestClient[Any, Any]) -> None:
    resp = await client.post("/webhooks/rest/webhook", data=b"{not json")
    assert resp.status == 400
    assert (await resp.json())["reason"].startswith("the body is not valid JSON")
    resp = await client.post("/webhooks/rest/webhook", json={"sender": "u", "message": "x" * 5000})
    assert resp.status == 413


async def test_empty_and_too_long_messages_are_answered(client: TestClient[Any, Any]) -> None:
    _, empty = await post(client, {"sender": "u3", "message": ""})
    _, long = await post(client, {"sender": "u3", "message": "y" * 101})
    assert "didn't get any text" in empty[0]["text"]
    assert "too long" in long[0]["text"]


async def test_health_and_metrics(client: TestClient[Any, Any]) -> None:
    resp = await client.get("/healthz")
    assert resp.status == 200
    assert await resp.json() == {"status": "ok"}
    await post(client, {"sender": "u4", "message": "/greet"})
    text = await (await client.get("/metrics")).text()
    assert 'helpline_turns_total{route="flow"}' in text
    assert "helpline_turn_latency_seconds_bucket" in text


async def test_the_blocking_guard_is_armed(client: TestClient[Any, Any]) -> None:
    with pytest.raises(BlockingError):
        time.sleep(0.001)  # noqa: ASYNC251 - on purpose
