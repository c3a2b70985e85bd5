"""The worker pool against real ``helpline serve-model`` processes and a foreign server."""

from __future__ import annotations

import os
import signal
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import pytest

from bot.dialogue.answer import TOKEN_SINK
from bot.errors import LLMError, ModelBusy
from bot.metrics import REGISTRY
from llm.answerer import LLMAnswerer
from llm.cloud import CloudChain
from llm.pool import UNLISTED_MODEL, WorkerPool
from llm.settings import CloudSettings, LLMSettings
from llm.types import ChatMessage, GenerationSettings
from tests.llm.cloud.fake_openai import FakeOpenAI, ok, status, stream
from tests.llm.cloud.support import provider_for
from tests.llm.test_answerer import PASSAGES, FixedRetriever
from tests.llm.workers import WorkerProcess, saturate, start_worker

ASK = [ChatMessage("user", "What is the capital of France?")]
SHORT = GenerationSettings(max_new_tokens=6)


@pytest.fixture(scope="module")
def two_workers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[WorkerProcess]]:
    root = tmp_path_factory.mktemp("workers")
    with start_worker(root / "a") as first, start_worker(root / "b") as second:
        yield [first, second]


@pytest.fixture
async def pool(two_workers: list[WorkerProcess]) -> AsyncIterator[WorkerPool]:
    async with WorkerPool([w.url for w in two_workers], timeout_s=120) as started:
        yield started


def count(worker: str, outcome: str) -> float:
    value = REGISTRY.get_sample_value(
        "helpline_llm_worker_requests_total", {"worker": worker, "outcome": outcome}
    )
    return value or 0.0


async def test_answers_stream_through_the_pool(
    pool: WorkerPool, two_workers: list[WorkerProcess]
) -> None:
    before = [count(w.url, "ok") for w in two_workers]
    streamed = [token async for token in pool.stream(ASK, SHORT)]
    texts: list[str] = []
    completion = await pool.complete(ASK, SHORT, on_token=texts.append)

    assert "".join(t.text for t in streamed) == completion.text == "".join(texts)
    assert completion.text.strip()
    assert all(t.logprob < 0 for t in completion.tokens if t.token_id >= 0)
    assert any(t.logprob < 0 for t in streamed)
    assert completion.prompt_tokens > 0
    assert completion.completion_tokens == SHORT.max_new_tokens
    assert completion.finish_reason == "length"
    # Two requests on an idle pool: one went to each worker.
    assert [count(w.url, "ok") for w in two_workers] == [b + 1 for b in before]


async def test_a_saturated_worker_is_skipped(
    pool: WorkerPool, two_workers: list[WorkerProcess]
) -> None:
    first, second = two_workers
    busy, served = count(first.url, "busy"), count(second.url, "ok")
    async with saturate(first):
        answer = await pool.complete(ASK, SHORT)
        again = await pool.complete(ASK, SHORT)
    assert answer.text.strip()
    assert again.text == answer.text
    assert count(second.url, "ok") == served + 2
    # Tried first (both idle as far as the pool knew), it answered 503 with its load;
    # the second request went straight to the other worker.
    assert count(first.url, "busy") == busy + 1
    assert pool.workers[0].reported >= 2


async def test_every_worker_saturated_raises_busy(
    pool: WorkerPool, two_workers: list[WorkerProcess]
) -> None:
    first, second = two_workers
    before = [count(w.url, "busy") for w in two_workers]
    async with saturate(first), saturate(second):
        with pytest.raises(ModelBusy, match="No model worker can take the request") as caught:
            await pool.complete(ASK, SHORT)
    assert first.url in str(caught.value)
    assert second.url in str(caught.value)
    # Each worker was asked once and refused at once; nothing waited in a queue.
    assert [count(w.url, "busy") for w in two_workers] == [b + 1 for b in before]


async def test_a_killed_worker_is_skipped(two_workers: list[WorkerProcess], tmp_path: Path) -> None:
    alive = two_workers[1]
    with start_worker(tmp_path / "doomed") as doomed:
        os.killpg(doomed.proc.pid, signal.SIGKILL)
        doomed.proc.wait(timeout=30)
        failed, served = count(doomed.url, "failed"), count(alive.url, "ok")
        # A clock that stands still: the cool-down never ends during the test.
        async with WorkerPool([doomed.url, alive.url], timeout_s=120, clock=lambda: 0.0) as pool:
            first = await pool.complete(ASK, SHORT)
            second = await pool.complete(ASK, SHORT)
            assert first.text.strip()
            assert second.text == first.text
            assert count(alive.url, "ok") == served + 2
            # Refused once, then left out while it cools down.
            assert count(doomed.url, "failed") == failed + 1
            assert [w.url for w in pool.ranked()] == [alive.url]
        async with WorkerPool([doomed.url]) as lonely:
            with pytest.raises(ModelBusy, match="unreachable"):
                await lonely.complete(ASK, SHORT)


async def test_a_foreign_openai_server_streams_tokens_with_logprobs(
    fake_openai: FakeOpenAI,
) -> None:
    fake_openai.script(
        stream(["Par", "is."], logprobs=[[("Par", -0.25)], [("is", -0.5), (".", -0.125)]])
    )
    async with WorkerPool([fake_openai.base_url]) as pool:
        texts: list[str] = []
        completion = await pool.complete(ASK, SHORT, on_token=texts.append)
    assert completion.text == "Paris." == "".join(texts)
    assert [t.logprob for t in completion.tokens] == [-0.25, -0.5, -0.125]
    assert (completion.prompt_tokens, completion.completion_tokens) == (10, 5)
    body = fake_openai.chat_requests[0].body
    assert body["model"] == "fake-model"  # learnt from GET /v1/models
    assert body["logprobs"] is True
    assert body["stream"] is True
    assert body["max_tokens"] == SHORT.max_new_tokens


async def test_a_busy_foreign_server_routes_onward(
    make_fake_openai: Callable[[], Awaitable[FakeOpenAI]],
) -> None:
    busy = await make_fake_openai()
    spare = await make_fake_openai()
    busy.script(status(429, retry_after=1), status(503))
    spare.script(ok("From the spare."))
    async with WorkerPool([busy.base_url, spare.base_url]) as pool:
        completion = await pool.complete(ASK, SHORT)
        assert completion.text == "From the spare."
    assert [r.body["model"] for r in busy.chat_requests] == ["fake-model"]
    async with WorkerPool([busy.base_url]) as alone:
        with pytest.raises(ModelBusy, match="HTTP 503"):
            await alone.complete(ASK, SHORT)


async def test_a_refused_request_is_not_rerouted(
    make_fake_openai: Callable[[], Awaitable[FakeOpenAI]],
) -> None:
    first = await make_fake_openai()
    second = await make_fake_openai()
    first.script(status(400, body='{"error": {"message": "bad stop"}}'))
    async with WorkerPool([first.base_url, second.base_url]) as pool:
        with pytest.raises(LLMError, match="refused the request: HTTP 400") as caught:
            await pool.complete(ASK, SHORT)
    assert not isinstance(caught.value, ModelBusy)
    assert second.chat_requests == []


# The answerer with the pool as its local model.

GROUNDED = [("You", -0.05), (" can", -0.1), (" return", -0.05), (" within 30 days [1].", -0.2)]


async def test_the_answerer_takes_the_pool_as_its_local_model(
    make_fake_openai: Callable[[], Awaitable[FakeOpenAI]],
) -> None:
    busy = await make_fake_openai()
    worker = await make_fake_openai()
    busy.script(status(503))
    worker.script(stream([t for t, _ in GROUNDED], logprobs=[[pair] for pair in GROUNDED]))
    drafts: list[str] = []
    async with WorkerPool([busy.base_url, worker.base_url]) as pool:
        answerer = LLMAnswerer(LLMSettings(), FixedRetriever(PASSAGES), pool)
        token = TOKEN_SINK.set(drafts.append)
        try:
            answer = await answerer.answer("How long can I return?", [], {})
        finally:
            TOKEN_SINK.reset(token)
    text = "You can return within 30 days [1]."
    assert answer is not None
    assert answer.route == "local"
    assert drafts == []  # a draft that may still be rejected is never streamed
    assert answer.text == f"{text.removesuffix(' [1].')}.\n\n(Source: Returns policy)"
    assert answer.local_confidence == answer.confidence
    assert answer.citations == ("returns-policy.md#0",)


async def test_a_pool_with_every_worker_busy_escalates_to_the_cloud(
    make_fake_openai: Callable[[], Awaitable[FakeOpenAI]],
) -> None:
    worker = await make_fake_openai()
    cloud = await make_fake_openai()
    worker.script(status(503))
    cloud.script(ok("Returns are accepted within 30 days of delivery [1]."))
    async with (
        WorkerPool([worker.base_url]) as pool,
        CloudChain(CloudSettings(providers=[provider_for(cloud)])) as chain,
    ):
        answer = await LLMAnswerer(LLMSettings(), FixedRetriever(PASSAGES), pool, chain).answer(
            "How long can I return?", [], {}
        )
    assert answer is not None
    assert answer.route == "cloud"
    assert answer.local_confidence is None  # the local model could not answer
    assert len(worker.chat_requests) == 1


async def test_a_server_that_lists_no_model_gets_a_placeholder() -> None:
    async with FakeOpenAI(model_ids=()) as server, WorkerPool([server.base_url]) as pool:
        server.script(ok("Hi."))
        completion = await pool.complete(ASK, SHORT)
    assert completion.text == "Hi."
    assert server.chat_requests[0].body["model"] == UNLISTED_MODEL
    # No logprobs given: the answer is one token of unknown log-probability.
    assert [(t.text, t.logprob) for t in completion.tokens] == [("Hi.", 0.0)]
