"""One deadline per cloud call, and the failure modes not covered in ``test_chain``.

Every test runs against real OpenAI-compatible servers on loopback. The
``asyncio.timeout(GUARD_S)`` blocks are hang guards, not timing thresholds:
with the shipped provider settings (20 s timeout, 2 retries) a hanging
provider used to hold a turn for about 61 s.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from bot.errors import LLMError, ProviderUnavailable
from llm.cloud import CloudChain
from llm.settings import CloudProviderSettings, CloudSettings
from llm.types import ChatMessage, GenerationSettings
from tests.llm.cloud.conftest import MakeChain
from tests.llm.cloud.fake_openai import FakeOpenAI, drop, hang, ok, status, stream
from tests.llm.cloud.support import provider_for

pytestmark = pytest.mark.usefixtures("no_blocking")
MakeServer = Callable[[], Awaitable[FakeOpenAI]]
GEN = GenerationSettings(max_new_tokens=64)
HELLO = [ChatMessage("user", "Hello?")]
GUARD_S = 10.0


def shipped(server: FakeOpenAI, name: str) -> CloudProviderSettings:
    """A provider with the shipped defaults (timeout, retries, backoff) served by ``server``."""
    return CloudProviderSettings(name=name, base_url=server.base_url, model=f"model-{name}")


def test_the_deadline_defaults_to_15_seconds() -> None:
    assert CloudSettings().deadline_s == 15.0


async def test_hanging_providers_end_the_call_at_the_deadline(
    make_fake_openai: MakeServer, chains: MakeChain
) -> None:
    first, second = await make_fake_openai(), await make_fake_openai()
    first.default = second.default = hang()
    chain = await chains(shipped(first, "a"), shipped(second, "b"), deadline=1.0)

    async with asyncio.timeout(GUARD_S):
        with pytest.raises(ProviderUnavailable, match="deadline") as caught:
            await chain.complete(HELLO, GEN)

    assert isinstance(caught.value, LLMError)  # what the answerer hands off on
    assert len(first.chat_requests) == 1  # no retry was begun past the deadline
    assert second.requests == []  # nor was the next provider tried


async def test_a_fallback_runs_within_the_same_deadline(
    make_fake_openai: MakeServer, chains: MakeChain
) -> None:
    first, second = await make_fake_openai(), await make_fake_openai()
    first.default = hang()
    second.script(ok("from b"))
    spec = provider_for(first, timeout_s=0.2, max_retries=0)
    chain = await chains(spec, provider_for(second, "b"), deadline=GUARD_S / 2)
    async with asyncio.timeout(GUARD_S):
        completion = await chain.complete(HELLO, GEN)
    assert (completion.provider, completion.text) == ("b", "from b")


async def test_a_retry_wait_past_the_deadline_is_not_begun(
    make_fake_openai: MakeServer, chains: MakeChain
) -> None:
    # Retry-After 5 s is within the shipped backoff_max_s (8 s), so without a
    # deadline the chain would wait and ask the first provider again.
    first, second = await make_fake_openai(), await make_fake_openai()
    first.script(status(503, retry_after=5), ok("from a, too late"))
    second.script(ok("from b"))
    chain = await chains(shipped(first, "a"), shipped(second, "b"), deadline=2.0)
    async with asyncio.timeout(GUARD_S):
        completion = await chain.complete(HELLO, GEN)
    assert (completion.provider, completion.text) == ("b", "from b")
    assert len(first.chat_requests) == 1


async def test_a_stream_is_cut_at_the_deadline(fake_openai: FakeOpenAI, chains: MakeChain) -> None:
    fake_openai.script(stream(["Hel", "lo"], stall_after=1))
    chain = await chains(shipped(fake_openai, "a"), deadline=1.0)
    pieces: list[str] = []

    async def consume() -> None:
        async for piece in chain.stream(HELLO, GEN):
            pieces.append(piece.text)

    async with asyncio.timeout(GUARD_S):
        with pytest.raises(ProviderUnavailable):
            await consume()
    assert pieces == ["Hel"]


async def test_a_stream_that_never_starts_fails_at_the_deadline(
    fake_openai: FakeOpenAI, chains: MakeChain
) -> None:
    fake_openai.default = hang()
    chain = await chains(shipped(fake_openai, "a"), deadline=1.0)
    async with asyncio.timeout(GUARD_S):
        with pytest.raises(ProviderUnavailable, match="timed out"):
            _ = [piece async for piece in chain.stream(HELLO, GEN)]
    assert len(fake_openai.chat_requests) == 1


async def test_dropped_connections_are_retried_then_the_next_provider_answers(
    make_fake_openai: MakeServer, chains: MakeChain
) -> None:
    first, second = await make_fake_openai(), await make_fake_openai()
    first.script(drop(), drop())
    second.script(ok("from b"))
    chain = await chains(provider_for(first, max_retries=1), provider_for(second, "b"))
    completion = await chain.complete(HELLO, GEN)
    assert (completion.provider, completion.text) == ("b", "from b")
    assert len(first.chat_requests) == 2


async def test_a_dropped_connection_then_success_on_retry(
    fake_openai: FakeOpenAI, chains: MakeChain
) -> None:
    fake_openai.script(drop(), ok("second time"))
    chain = await chains(provider_for(fake_openai, max_retries=1))
    assert (await chain.complete(HELLO, GEN)).text == "second time"


async def test_a_refused_connection_moves_to_the_next_provider(
    make_fake_openai: MakeServer, chains: MakeChain
) -> None:
    gone, second = await make_fake_openai(), await make_fake_openai()
    await gone.close()  # nothing listens on its port any more
    second.script(ok("from b"))
    chain = await chains(provider_for(gone, max_retries=1), provider_for(second, "b"))
    completion = await chain.complete(HELLO, GEN)
    assert (completion.provider, completion.text) == ("b", "from b")


async def test_every_provider_refusing_connections_raises(
    fake_openai: FakeOpenAI, chains: MakeChain
) -> None:
    await fake_openai.close()
    chain: CloudChain = await chains(provider_for(fake_openai))
    with pytest.raises(ProviderUnavailable, match="every cloud provider failed"):
        await chain.complete(HELLO, GEN)
