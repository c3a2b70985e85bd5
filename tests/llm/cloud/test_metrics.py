"""The cloud's Prometheus metrics, scraped from ``/metrics`` as Prometheus would.

Each test names its providers uniquely, so counts are read as differences
and tests stay independent of each other's samples.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from prometheus_client.parser import text_string_to_metric_families

from bot.errors import ProviderUnavailable
from bot.server import metrics_view
from llm.cloud.provider import ERROR_KINDS
from llm.types import ChatMessage, GenerationSettings
from tests.llm.cloud.conftest import MakeChain
from tests.llm.cloud.fake_openai import (
    Action,
    FakeOpenAI,
    drop,
    hang,
    malformed_json,
    status,
)
from tests.llm.cloud.support import provider_for

GEN = GenerationSettings(max_new_tokens=16)
HELLO = [ChatMessage("user", "Hello?")]
Scrape = Callable[[], Awaitable[dict[tuple[str, tuple[tuple[str, str], ...]], float]]]


@pytest.fixture
async def scrape(aiohttp_client: Callable[..., Awaitable[TestClient[Any, Any]]]) -> Scrape:
    """Return a coroutine function that GETs ``/metrics`` and parses every sample."""
    app = web.Application()
    app.router.add_get("/metrics", metrics_view)
    client = await aiohttp_client(app)

    async def read() -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        resp = await client.get("/metrics")
        assert resp.status == 200
        samples = {}
        for family in text_string_to_metric_families(await resp.text()):
            for sample in family.samples:
                samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
        return samples

    return read


def errors(provider: str, kind: str) -> tuple[str, tuple[tuple[str, str], ...]]:
    """The sample key of the provider error counter."""
    return ("helpline_llm_provider_errors_total", (("kind", kind), ("provider", provider)))


def circuit(provider: str) -> tuple[str, tuple[tuple[str, str], ...]]:
    """The sample key of the circuit gauge."""
    return ("helpline_llm_circuit_state", (("provider", provider),))


@pytest.mark.parametrize(
    ("action", "kind"),
    [
        (hang(), "timeout"),
        (drop(), "connection"),
        (status(429, retry_after=60), "http_429"),
        (status(500), "http_5xx"),
        (status(503), "http_5xx"),
        (status(401), "http_4xx"),
        (malformed_json(), "malformed"),
    ],
)
async def test_each_failed_attempt_counts_by_kind(
    fake_openai: FakeOpenAI, chains: MakeChain, scrape: Scrape, action: Action, kind: str
) -> None:
    assert kind in ERROR_KINDS
    name = f"errors-{kind}-{action.status}"
    fake_openai.script(action)
    chain = await chains(provider_for(fake_openai, name, timeout_s=0.2))
    before = (await scrape()).get(errors(name, kind), 0.0)
    with pytest.raises(ProviderUnavailable):
        await chain.complete(HELLO, GEN)
    after = await scrape()
    assert after[errors(name, kind)] == before + 1
    others = [k for k in ERROR_KINDS if k != kind]
    assert all(after.get(errors(name, other), 0.0) == 0.0 for other in others)


async def test_retried_attempts_each_count(
    fake_openai: FakeOpenAI, chains: MakeChain, scrape: Scrape
) -> None:
    fake_openai.script(status(502), status(500))
    chain = await chains(provider_for(fake_openai, "errors-retried", max_retries=2))
    assert (await chain.complete(HELLO, GEN)).text == "OK"
    assert (await scrape())[errors("errors-retried", "http_5xx")] == 2


async def test_a_refused_connection_counts(
    fake_openai: FakeOpenAI, chains: MakeChain, scrape: Scrape
) -> None:
    await fake_openai.close()
    chain = await chains(provider_for(fake_openai, "errors-refused"))
    with pytest.raises(ProviderUnavailable):
        await chain.complete(HELLO, GEN)
    assert (await scrape())[errors("errors-refused", "connection")] == 1


async def test_the_circuit_gauge_follows_the_breaker(
    fake_openai: FakeOpenAI, chains: MakeChain, scrape: Scrape
) -> None:
    spec = provider_for(fake_openai, "gauged", circuit_failures=1, circuit_reset_s=0.3)
    chain = await chains(spec)
    assert (await scrape())[circuit("gauged")] == 0  # closed

    fake_openai.script(status(500))
    with pytest.raises(ProviderUnavailable):
        await chain.complete(HELLO, GEN)
    assert (await scrape())[circuit("gauged")] == 2  # open

    await asyncio.sleep(0.35)
    assert (await scrape())[circuit("gauged")] == 1  # half-open: a trial may go

    assert (await chain.complete(HELLO, GEN)).text == "OK"
    assert (await scrape())[circuit("gauged")] == 0  # closed again

    await chain.stop()
    assert circuit("gauged") not in await scrape()
