"""Streaming over SSE: chunks, logprobs, usage, stalls and fallback."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import aiohttp
import pytest

from bot.errors import ProviderUnavailable
from llm.cloud import CircuitState, CloudChain, MemoryLedger, Provider
from llm.settings import CloudProviderSettings, CloudSettings
from llm.types import ChatMessage, GenerationSettings
from tests.llm.cloud.fake_openai import FakeOpenAI, ok, status, stream
from tests.llm.cloud.support import provider_for

pytestmark = pytest.mark.usefixtures("no_blocking")
MakeServer = Callable[[], Awaitable[FakeOpenAI]]
GEN = GenerationSettings(max_new_tokens=32)
HELLO = [ChatMessage("user", "Hello?")]


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as opened:
        yield opened


async def _chain(
    *providers: CloudProviderSettings, ledger: MemoryLedger | None = None
) -> CloudChain:
    chain = CloudChain(CloudSettings(providers=list(providers)), ledger=ledger)
    await chain.start()
    return chain


async def test_stream_yields_chunks_with_logprobs_and_records_usage(
    fake_openai: FakeOpenAI,
) -> None:
    fake_openai.script(
        stream(
            ["Hel", "lo", "!"],
            usage=(40, 3),
            logprobs=[[("Hel", -0.5)], [("lo", -0.25)], [("!", -1.0)]],
        )
    )
    ledger = MemoryLedger()
    chain = await _chain(provider_for(fake_openai, price_in_per_m=1.0), ledger=ledger)
    try:
        tokens = [t async for t in chain.stream(HELLO, GEN, conversation_id=3)]
    finally:
        await chain.stop()
    assert [(t.text, t.logprob) for t in tokens] == [("Hel", -0.5), ("lo", -0.25), ("!", -1.0)]
    body = fake_openai.chat_requests[0].body
    assert body["stream"] is True
    assert body["logprobs"] is True
    (row,) = ledger.rows
    assert (row["tokens_in"], row["tokens_out"], row["conversation_id"]) == (40, 3, 3)
    assert row["cost_usd"] == pytest.approx(40 / 1_000_000)


async def test_plain_reply_to_a_stream_request_also_streams(fake_openai: FakeOpenAI) -> None:
    fake_openai.script(ok("whole", usage=None))
    chain = await _chain(provider_for(fake_openai))
    try:
        assert [t.text async for t in chain.stream(HELLO, GEN)] == ["whole"]
    finally:
        await chain.stop()


async def test_stall_before_first_chunk_moves_to_next_provider(
    make_fake_openai: MakeServer,
) -> None:
    first, second = await make_fake_openai(), await make_fake_openai()
    first.script(stream(["never"], stall_after=0))
    second.script(stream(["from ", "b"]))
    chain = await _chain(provider_for(first, timeout_s=0.2), provider_for(second, "b"))
    try:
        assert "".join([t.text async for t in chain.stream(HELLO, GEN)]) == "from b"
    finally:
        await chain.stop()
    assert len(first.chat_requests) == 1


async def test_stall_mid_stream_fails_after_what_was_yielded(fake_openai: FakeOpenAI) -> None:
    fake_openai.script(stream(["one ", "two ", "three"], stall_after=1))
    chain = await _chain(provider_for(fake_openai, timeout_s=1.0, circuit_failures=1))
    received: list[str] = []

    async def consume() -> None:
        async for token in chain.stream(HELLO, GEN):
            received.append(token.text)

    try:
        with pytest.raises(ProviderUnavailable, match="stalled"):
            await consume()
    finally:
        await chain.stop()
    assert received == ["one "]
    assert chain.providers[0].breaker.state is CircuitState.OPEN


async def test_stream_status_errors_are_retried(fake_openai: FakeOpenAI) -> None:
    fake_openai.script(status(503), stream(["ok"]))
    chain = await _chain(provider_for(fake_openai, max_retries=1))
    try:
        assert [t.text async for t in chain.stream(HELLO, GEN)] == ["ok"]
    finally:
        await chain.stop()
    assert len(fake_openai.chat_requests) == 2


async def test_provider_stream_without_done_or_finish_is_a_failure(
    fake_openai: FakeOpenAI, session: aiohttp.ClientSession
) -> None:
    # stall_after=2 of 2 chunks, then the server closes: no finish_reason, no [DONE].
    fake_openai.script(stream(["a", "b"], stall_after=2))
    provider = Provider(provider_for(fake_openai), stall_timeout_s=5.0)
    received: list[str] = []

    async def consume() -> None:
        async for delta in provider.stream(session, {"model": "m", "stream": True}):
            received.append(delta.text)
            if len(received) == 2:
                await fake_openai.close()

    with pytest.raises(ProviderUnavailable, match="ended before"):
        await consume()
    assert received == ["a", "b"]


async def test_closing_the_stream_early_ends_the_half_open_trial(fake_openai: FakeOpenAI) -> None:
    fake_openai.script(status(500), stream(["first ", "second"], stall_after=1))
    chain = await _chain(provider_for(fake_openai, circuit_failures=1, circuit_reset_s=0.05))
    try:
        with pytest.raises(ProviderUnavailable):
            await chain.complete(HELLO, GEN)  # opens the circuit
        await asyncio.sleep(0.1)
        tokens = chain.stream(HELLO, GEN)
        assert (await anext(tokens)).text == "first "  # the half-open trial
        await tokens.aclose()  # the user went away
        assert (await chain.complete(HELLO, GEN)).text == "OK"  # not refused as "in trial"
    finally:
        await chain.stop()
    assert len(fake_openai.chat_requests) == 3
