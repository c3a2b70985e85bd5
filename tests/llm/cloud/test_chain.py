"""CloudChain against real HTTP: a local OpenAI-compatible server per provider."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from bot.errors import BudgetExhausted, LLMError, ProviderUnavailable, RateLimited
from llm.cloud import CircuitState, CloudChain, MemoryLedger
from llm.settings import CloudSettings, PIISettings
from llm.types import ChatMessage, GenerationSettings
from tests.llm.cloud.fake_openai import (
    Action,
    FakeOpenAI,
    malformed_json,
    no_choices,
    ok,
    sleep,
    status,
    stream,
)
from tests.llm.cloud.support import provider_for

pytestmark = pytest.mark.usefixtures("no_blocking")
MakeServer = Callable[[], Awaitable[FakeOpenAI]]
GEN = GenerationSettings(max_new_tokens=64)
HELLO = [ChatMessage("system", "Be brief."), ChatMessage("user", "Hello?")]


async def test_success_is_priced_and_recorded(
    fake_openai: FakeOpenAI, chains: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HELPLINE_TEST_KEY", "sk-test-123")
    fake_openai.script(
        ok("Hi there!", usage=(1000, 500), logprobs=[("Hi", -0.5), (" there!", -0.25)])
    )
    ledger = MemoryLedger()
    spec = provider_for(
        fake_openai, api_key_env="HELPLINE_TEST_KEY", price_in_per_m=2.0, price_out_per_m=10.0
    )
    chain = await chains(spec, ledger=ledger)

    completion = await chain.complete(HELLO, GEN, conversation_id=7)

    assert completion.text == "Hi there!"
    assert (completion.provider, completion.model) == ("a", "model-a")
    assert (completion.prompt_tokens, completion.completion_tokens) == (1000, 500)
    assert completion.cost_usd == pytest.approx(0.007)
    assert [(t.text, t.logprob) for t in completion.tokens] == [("Hi", -0.5), (" there!", -0.25)]
    (request,) = fake_openai.chat_requests
    assert request.headers["Authorization"] == "Bearer sk-test-123"
    assert request.body["model"] == "model-a"
    assert request.body["logprobs"] is True
    assert request.body["max_tokens"] == 64
    assert request.body["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hello?"},
    ]
    assert ledger.rows == [
        {
            "month": "2025-03",
            "provider": "a",
            "model": "model-a",
            "tokens_in": 1000,
            "tokens_out": 500,
            "cost_usd": pytest.approx(0.007),
            "conversation_id": 7,
        }
    ]


async def test_missing_usage_is_estimated(fake_openai: FakeOpenAI, chains: Any) -> None:
    fake_openai.script(ok("12345678", usage=None))
    chain = await chains(provider_for(fake_openai, price_out_per_m=1_000_000.0))
    completion = await chain.complete(HELLO, GEN)
    assert completion.completion_tokens == 2
    assert completion.prompt_tokens > 0
    assert completion.cost_usd == pytest.approx(2.0)


async def test_timeout_then_success_on_retry(fake_openai: FakeOpenAI, chains: Any) -> None:
    fake_openai.script(sleep(5.0, ok("too late")), ok("in time"))
    chain = await chains(provider_for(fake_openai, timeout_s=1.0, max_retries=1))
    completion = await chain.complete(HELLO, GEN)
    assert completion.text == "in time"
    assert len(fake_openai.chat_requests) == 2


async def test_timeouts_exhaust_retries(fake_openai: FakeOpenAI, chains: Any) -> None:
    fake_openai.script(sleep(5.0), sleep(5.0))
    chain = await chains(provider_for(fake_openai, timeout_s=0.1, max_retries=1))
    with pytest.raises(ProviderUnavailable, match="timed out"):
        await chain.complete(HELLO, GEN)
    assert len(fake_openai.chat_requests) == 2


async def test_429_retry_after_is_honoured(fake_openai: FakeOpenAI, chains: Any) -> None:
    fake_openai.script(status(429, retry_after=0.3), ok("after the wait"))
    chain = await chains(provider_for(fake_openai, max_retries=2))
    completion = await chain.complete(HELLO, GEN)
    assert completion.text == "after the wait"
    first, second = fake_openai.chat_requests
    assert second.at - first.at >= 0.3


async def test_503_retry_after_http_date_is_honoured(fake_openai: FakeOpenAI, chains: Any) -> None:
    fake_openai.script(status(503, retry_after="Thu, 01 Jan 1970 00:00:00 GMT"), ok("back"))
    chain = await chains(provider_for(fake_openai, max_retries=1))
    assert (await chain.complete(HELLO, GEN)).text == "back"
    assert len(fake_openai.chat_requests) == 2


async def test_long_retry_after_moves_to_next_provider(
    make_fake_openai: MakeServer, chains: Any
) -> None:
    first, second = await make_fake_openai(), await make_fake_openai()
    first.script(status(429, retry_after=120))
    second.script(ok("from b"))
    chain = await chains(provider_for(first, max_retries=3), provider_for(second, "b"))
    completion = await chain.complete(HELLO, GEN)
    assert (completion.provider, completion.text) == ("b", "from b")
    assert len(first.chat_requests) == 1


async def test_every_provider_rate_limited_raises_rate_limited(
    fake_openai: FakeOpenAI, chains: Any
) -> None:
    fake_openai.script(status(429, retry_after=60))
    chain = await chains(provider_for(fake_openai, max_retries=0))
    with pytest.raises(RateLimited) as caught:
        await chain.complete(HELLO, GEN)
    assert caught.value.retry_after == 60


async def test_5xx_is_retried_then_next_provider(make_fake_openai: MakeServer, chains: Any) -> None:
    first, second = await make_fake_openai(), await make_fake_openai()
    first.script(status(500), status(502))
    second.script(ok("from b"))
    chain = await chains(provider_for(first, max_retries=1), provider_for(second, "b"))
    completion = await chain.complete(HELLO, GEN)
    assert (completion.provider, completion.text) == ("b", "from b")
    assert len(first.chat_requests) == 2
    assert second.chat_requests[0].body["model"] == "model-b"


@pytest.mark.parametrize("bad", [malformed_json(), no_choices(), Action(kind="raw", body="[]")])
async def test_malformed_reply_moves_to_next_provider(
    make_fake_openai: MakeServer, chains: Any, bad: Any
) -> None:
    first, second = await make_fake_openai(), await make_fake_openai()
    first.script(bad)
    second.script(ok("from b"))
    chain = await chains(provider_for(first, max_retries=2), provider_for(second, "b"))
    assert (await chain.complete(HELLO, GEN)).provider == "b"
    assert len(first.chat_requests) == 1  # not retried
    assert chain.providers[0].breaker.state is CircuitState.CLOSED


async def test_client_errors_are_not_retried(fake_openai: FakeOpenAI, chains: Any) -> None:
    fake_openai.script(status(401))
    chain = await chains(provider_for(fake_openai, max_retries=3))
    with pytest.raises(ProviderUnavailable, match="HTTP 401"):
        await chain.complete(HELLO, GEN)
    assert len(fake_openai.chat_requests) == 1


async def test_circuit_opens_then_closes(fake_openai: FakeOpenAI, chains: Any) -> None:
    fake_openai.script(status(500), malformed_json(), status(500))
    spec = provider_for(fake_openai, circuit_failures=2, circuit_reset_s=0.4)
    chain = await chains(spec)
    for _ in range(2):
        with pytest.raises(ProviderUnavailable):
            await chain.complete(HELLO, GEN)

    with pytest.raises(ProviderUnavailable, match="circuit open"):
        await chain.complete(HELLO, GEN)
    assert len(fake_openai.chat_requests) == 2  # the open circuit sent nothing

    await asyncio.sleep(0.45)
    with pytest.raises(ProviderUnavailable, match="HTTP 500"):
        await chain.complete(HELLO, GEN)  # the half-open trial fails: open again
    assert len(fake_openai.chat_requests) == 3
    with pytest.raises(ProviderUnavailable, match="circuit open"):
        await chain.complete(HELLO, GEN)

    await asyncio.sleep(0.45)
    assert (await chain.complete(HELLO, GEN)).text == "OK"  # the trial succeeds
    assert chain.providers[0].breaker.state is CircuitState.CLOSED
    fake_openai.script(status(500))
    with pytest.raises(ProviderUnavailable, match="HTTP 500"):
        await chain.complete(HELLO, GEN)
    assert (await chain.complete(HELLO, GEN)).text == "OK"  # one failure does not open it
    assert len(fake_openai.chat_requests) == 6


async def test_open_circuit_skips_to_next_provider(
    make_fake_openai: MakeServer, chains: Any
) -> None:
    first, second = await make_fake_openai(), await make_fake_openai()
    first.script(status(500))
    chain = await chains(provider_for(first, circuit_failures=1), provider_for(second, "b"))
    assert (await chain.complete(HELLO, GEN)).provider == "b"
    assert (await chain.complete(HELLO, GEN)).provider == "b"
    assert len(first.chat_requests) == 1
    assert len(second.chat_requests) == 2


async def test_budget_exhausted_sends_nothing(fake_openai: FakeOpenAI, chains: Any) -> None:
    ledger = MemoryLedger()
    await ledger.add_usage({"month": "2025-02", "provider": "a", "model": "m", "cost_usd": 9.0})
    chain = await chains(
        provider_for(fake_openai, price_out_per_m=100_000.0), ledger=ledger, budget=1.0
    )
    assert await chain.budget_left() == pytest.approx(1.0)  # last month does not count

    await chain.complete(HELLO, GEN)  # 5 output tokens at 0.1 USD each
    assert await chain.budget_left() == pytest.approx(0.5)
    await chain.complete(HELLO, GEN)
    with pytest.raises(BudgetExhausted):
        await chain.complete(HELLO, GEN)
    with pytest.raises(BudgetExhausted):
        async for _ in chain.stream(HELLO, GEN):
            pass
    assert len(fake_openai.chat_requests) == 2


async def test_missing_api_key_skips_provider(
    make_fake_openai: MakeServer,
    chains: Any,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.delenv("HELPLINE_MISSING_KEY", raising=False)
    first, second = await make_fake_openai(), await make_fake_openai()
    with caplog.at_level(logging.WARNING):
        chain = await chains(
            provider_for(first, api_key_env="HELPLINE_MISSING_KEY"), provider_for(second, "b")
        )
    assert "HELPLINE_MISSING_KEY" in caplog.text
    assert (await chain.complete(HELLO, GEN)).provider == "b"
    assert first.requests == []
    assert "Authorization" not in second.chat_requests[0].headers


async def test_no_available_provider(
    fake_openai: FakeOpenAI, chains: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("HELPLINE_MISSING_KEY", raising=False)
    chain = await chains(provider_for(fake_openai, api_key_env="HELPLINE_MISSING_KEY"))
    with pytest.raises(ProviderUnavailable, match="no cloud provider"):
        await chain.complete(HELLO, GEN)
    assert fake_openai.requests == []


async def test_unstarted_chain_refuses() -> None:
    chain = CloudChain(CloudSettings())
    with pytest.raises(LLMError, match="not started"):
        await chain.complete(HELLO, GEN)
    async with chain:
        with pytest.raises(ProviderUnavailable):
            await chain.complete(HELLO, GEN)


PII_MESSAGES = [
    ChatMessage("system", "Answer from the passages."),
    ChatMessage("user", "I'm ann.lee@example.com, phone +44 20 7946 0958."),
    ChatMessage("assistant", "How can I help?"),
    ChatMessage("user", "Refund HL-12345 to card 4111-1111-1111-1111, or call (555) 123-4567."),
]
PII_VALUES = [
    "ann.lee@example.com",
    "7946",
    "HL-12345",
    "4111",
    "555",
    "12345",
]


def _reply_with_placeholders(body: dict[str, Any]) -> str:
    text = " ".join(m["content"] for m in body["messages"])
    found = [p for p in ("[EMAIL_1]", "[ORDER_ID_1]", "[CARD_1]", "[PHONE_2]") if p in text]
    return "Done: " + ", ".join(found)


# Order ids come from the bot's NLU regexes at runtime; here, as a named pattern.
ORDER_PII = PIISettings(patterns={"ORDER_ID": r"\bHL-\d{5}\b"})
EXPECTED_REPLY = "Done: ann.lee@example.com, HL-12345, 4111-1111-1111-1111, (555) 123-4567"


async def test_pii_never_leaves_and_is_restored(fake_openai: FakeOpenAI, chains: Any) -> None:
    fake_openai.script(ok(_reply_with_placeholders))
    chain = await chains(provider_for(fake_openai), pii=ORDER_PII)
    completion = await chain.complete(PII_MESSAGES, GEN)
    assert completion.text == EXPECTED_REPLY
    raw = fake_openai.chat_requests[0].raw
    for value in PII_VALUES:
        assert value not in raw


async def test_pii_in_streams_is_restored(fake_openai: FakeOpenAI, chains: Any) -> None:
    fake_openai.script(stream(["Sent to [EMA", "IL_1] for ORDER", "_ID_1]."]))
    chain = await chains(provider_for(fake_openai), pii=ORDER_PII)
    pieces = [t.text async for t in chain.stream(PII_MESSAGES, GEN)]
    assert "".join(pieces) == "Sent to ann.lee@example.com for HL-12345."
    raw = fake_openai.chat_requests[0].raw
    assert all(value not in raw for value in PII_VALUES)
