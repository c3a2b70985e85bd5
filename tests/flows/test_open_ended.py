"""Open-ended turns of the default bot, end to end through the REST channel.

The local model is the embedded SmolLM2 prepared by ``make setup``; the cloud
is a real OpenAI-compatible HTTP server on loopback.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from bot.config import load_config
from bot.runtime import Runtime
from bot.server import RUNTIME, create_app
from tests.llm.cloud.fake_openai import FakeOpenAI, ok

ROOT = Path(__file__).parents[2]
ClientFactory = Callable[[web.Application], Awaitable[TestClient[Any, Any]]]


@pytest.fixture
async def fake_openai() -> AsyncIterator[FakeOpenAI]:
    async with FakeOpenAI() as server:
        yield server


@pytest.fixture
async def client(
    aiohttp_client: ClientFactory,
    fake_openai: FakeOpenAI,
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> TestClient[Any, Any]:
    # Tests that need the cloud path whatever the local model says raise the
    # local threshold to 1 (no answer scores above it) through this marker.
    marker = request.node.get_closest_marker("local_threshold")
    threshold = f"  local_threshold: {marker.args[0]}\n" if marker else ""
    (tmp_path / "helpline.yml").write_text(
        f"bot:\n  path: {ROOT / 'flows'}\n"
        f"storage:\n  url: sqlite+aiosqlite:///{tmp_path}/llm.db\n"
        f"models:\n  cache_dir: {ROOT / 'var' / 'models'}\n"
        "llm:\n"
        f"{threshold}"
        "  api: {listen: main, allow_anonymous: true}\n"
        "  local:\n    max_new_tokens: 48\n"
        "  cloud:\n    providers:\n"
        f"      - name: fallback\n        base_url: {fake_openai.base_url}\n        model: big\n"
        "        price_in_per_m: 1.0\n        price_out_per_m: 2.0\n"
    )
    config = load_config(tmp_path / "helpline.yml")
    return await aiohttp_client(create_app(config, Runtime(config)))


async def say(client: TestClient[Any, Any], text: str) -> list[dict[str, Any]]:
    resp = await client.post("/webhooks/rest/webhook", json={"sender": "oe", "message": text})
    assert resp.status == 200
    body: list[dict[str, Any]] = await resp.json()
    return body


@pytest.mark.local_threshold(1.0)
async def test_open_ended_question_is_answered_from_the_kb(
    client: TestClient[Any, Any], fake_openai: FakeOpenAI
) -> None:
    # With the local threshold at 1 the cloud is always asked; its answer cites
    # passage [1].
    fake_openai.script(ok("We accept Visa, Mastercard and PayPal [1].", usage=(300, 20)))
    replies = await say(client, "What payment methods do you accept? I'm jo@example.com")
    runtime = client.app[RUNTIME]
    store = runtime.store
    conv = await store.conversation("rest", "oe", "oe")
    (turn,) = await store.turns(conv.id)
    assert turn["route"] == "cloud"
    assert turn["citations"] == ["payment-methods.md#0"]
    assert replies[0]["text"].startswith("We accept Visa, Mastercard and PayPal")
    assert "(Source: Payment methods" in replies[0]["text"]
    assert turn["provider"] == "fallback"
    assert turn["cost_usd"] == pytest.approx((300 * 1.0 + 20 * 2.0) / 1e6)
    text = await (await client.get("/metrics")).text()
    assert 'helpline_llm_cost_usd_total{provider="fallback"}' in text
    sent = fake_openai.chat_requests[0].raw
    assert "jo@example.com" not in sent
    assert "payment" in sent.lower()


async def test_openai_endpoint_serves_the_local_model(client: TestClient[Any, Any]) -> None:
    models = await (await client.get("/v1/models")).json()
    assert [m["id"] for m in models["data"]] == ["helpline-local"]
    resp = await client.post(
        "/v1/chat/completions",
        json={
            "messages": [{"role": "user", "content": "What is the capital of France?"}],
            "max_tokens": 12,
            "temperature": 0,
        },
    )
    assert resp.status == 200
    body = await resp.json()
    assert "Paris" in body["choices"][0]["message"]["content"]
    assert body["usage"]["completion_tokens"] <= 12
