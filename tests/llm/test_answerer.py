"""Routing of open-ended turns: local, cloud, human, for every branch."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from bot.errors import BudgetExhausted, LLMError, ModelBusy, ProviderUnavailable
from llm.answerer import HANDOFF_TEXT, NO_KNOWLEDGE_TEXT, LLMAnswerer
from llm.cloud import CloudChain
from llm.drafts import render_draft
from llm.settings import CloudSettings, LLMSettings
from llm.types import ChatMessage, Completion, GenerationSettings, Passage, TokenInfo
from tests.llm.cloud.fake_openai import FakeOpenAI, ok, status
from tests.llm.cloud.support import provider_for

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Sequence

    from llm.types import ChatModel

PASSAGES = [
    Passage("returns-policy.md#0", "Returns policy", "Return within 30 days of delivery.", 0.72),
    Passage("refund-timing.md#0", "Refund timing", "Refunds take 5 to 10 business days.", 0.55),
]


class FixedRetriever:
    """A retriever that returns the same passages for every question."""

    def __init__(self, passages: Sequence[Passage]) -> None:
        self.passages = list(passages)
        self.queries: list[str] = []

    async def search(self, query: str, k: int | None = None) -> list[Passage]:
        self.queries.append(query)
        return self.passages[:k]


class ScriptedModel:
    """A ChatModel that returns a given completion, or raises a given error."""

    def __init__(self, name: str, result: Completion | Exception) -> None:
        self.name = name
        self.result = result
        self.calls: list[tuple[tuple[ChatMessage, ...], GenerationSettings]] = []

    async def complete(
        self, messages: Sequence[ChatMessage], settings: GenerationSettings
    ) -> Completion:
        self.calls.append((tuple(messages), settings))
        if isinstance(self.result, Exception):
            raise self.result
        return self.result

    async def stream(
        self, messages: Sequence[ChatMessage], settings: GenerationSettings
    ) -> AsyncIterator[TokenInfo]:
        completion = await self.complete(messages, settings)
        for token in completion.tokens:
            yield token


def _completion(text: str, logprob: float | None, provider: str = "local") -> Completion:
    words = text.split(" ")
    tokens = tuple(TokenInfo(w, logprob) for w in words) if logprob is not None else ()
    return Completion(
        text,
        tokens,
        prompt_tokens=120,
        completion_tokens=len(words),
        provider=provider,
        cost_usd=0.0 if provider == "local" else 0.0021,
    )


SURE = _completion("You can return items within 30 days of delivery [1].", -0.05)
UNSURE_LOCAL = _completion("I'm not sure, maybe 90 days or so.", -2.5)
CLOUD_OK = _completion(
    "Returns are accepted within 30 days [1]; refunds take 5 to 10 business days [2].",
    None,
    "openai",
)
CLOUD_UNSURE = _completion("I don't know; the passages do not say.", None, "openai")


def _answerer(
    local: ChatModel | None, cloud: ChatModel | None, passages: Sequence[Passage] = PASSAGES
) -> LLMAnswerer:
    return LLMAnswerer(LLMSettings(), FixedRetriever(passages), local, cloud)


HISTORY = [{"event": "user", "text": "hi"}, {"event": "bot", "text": "Hello!"}]


async def test_confident_local_answer_is_sent_with_its_citations() -> None:
    local = ScriptedModel("local", SURE)
    cloud = ScriptedModel("cloud", CLOUD_OK)
    answer = await _answerer(local, cloud).answer("How long can I return?", HISTORY, {})
    assert answer is not None
    assert answer.route == "local"
    assert answer.citations == ("returns-policy.md#0",)
    assert answer.text == (
        "You can return items within 30 days of delivery.\n\n(Source: Returns policy)"
    )
    assert answer.confidence >= LLMAnswerer(LLMSettings(), FixedRetriever([]), None).local_threshold
    assert answer.provider == "local"
    assert answer.tokens_out == len(SURE.text.split(" "))
    assert cloud.calls == []
    messages, settings = local.calls[0]
    assert [m.role for m in messages] == ["system", "user", "assistant", "user"]
    assert "[1] Returns policy" in messages[0].content
    assert settings.max_new_tokens == LLMSettings().local.max_new_tokens


async def test_low_local_confidence_escalates_to_the_cloud() -> None:
    local = ScriptedModel("local", UNSURE_LOCAL)
    cloud = ScriptedModel("cloud", CLOUD_OK)
    answer = await _answerer(local, cloud).answer("How long can I return?", [], {})
    assert answer is not None
    assert answer.route == "cloud"
    assert answer.citations == ("returns-policy.md#0", "refund-timing.md#0")
    assert answer.text.endswith("(Source: Returns policy; Refund timing)")
    assert "[1]" not in answer.text
    assert answer.provider == "openai"
    assert answer.cost_usd == pytest.approx(0.0021)
    assert answer.confidence >= LLMSettings().cloud_threshold
    assert answer.cloud_confidence == answer.confidence
    assert cloud.calls[0][0] == local.calls[0][0]  # the same prompt


@pytest.mark.parametrize("error", [ModelBusy("queue full"), LLMError("session crashed")])
async def test_a_busy_or_failing_local_model_goes_to_the_cloud(error: Exception) -> None:
    cloud = ScriptedModel("cloud", CLOUD_OK)
    answer = await _answerer(ScriptedModel("local", error), cloud).answer("Returns?", [], {})
    assert answer is not None
    assert answer.route == "cloud"


async def test_an_unsure_cloud_hands_off_to_a_person() -> None:
    local = ScriptedModel("local", UNSURE_LOCAL)
    answer = await _answerer(local, ScriptedModel("cloud", CLOUD_UNSURE)).answer("Returns?", [], {})
    assert answer is not None
    assert (answer.route, answer.handoff_reason, answer.text) == (
        "human",
        "cloud_unsure",
        HANDOFF_TEXT,
    )
    assert answer.provider == "openai"  # the cloud call is still accounted for


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (ProviderUnavailable("all providers down"), "cloud_unavailable"),
        (LLMError("malformed reply"), "cloud_unavailable"),
        (BudgetExhausted("monthly cap reached"), "budget"),
    ],
)
async def test_cloud_failures_hand_off_with_their_reason(error: Exception, reason: str) -> None:
    local = ScriptedModel("local", UNSURE_LOCAL)
    answer = await _answerer(local, ScriptedModel("cloud", error)).answer("Returns?", [], {})
    assert answer is not None
    assert (answer.route, answer.handoff_reason) == ("human", reason)


async def test_without_a_cloud_low_confidence_hands_off() -> None:
    answer = await _answerer(ScriptedModel("local", UNSURE_LOCAL), None).answer("Returns?", [], {})
    assert answer is not None
    assert (answer.route, answer.handoff_reason) == ("human", "low_confidence")


async def test_without_any_model_the_turn_hands_off() -> None:
    answer = await _answerer(None, None).answer("Returns?", [], {})
    assert answer is not None
    assert (answer.route, answer.handoff_reason) == ("human", "local_unavailable")


async def test_no_passage_says_so_and_asks_no_model() -> None:
    local = ScriptedModel("local", SURE)
    cloud = ScriptedModel("cloud", CLOUD_OK)
    answer = await _answerer(local, cloud, passages=[]).answer("Do you sell laptops?", [], {})
    assert answer is not None
    assert (answer.route, answer.handoff_reason, answer.confidence) == ("local", None, 0.0)
    assert answer.text == NO_KNOWLEDGE_TEXT
    assert answer.declined
    assert answer.citations == ()
    assert answer.confidence == 0.0
    assert local.calls == []
    assert cloud.calls == []


async def test_the_configured_local_threshold_wins() -> None:
    settings = LLMSettings(local_threshold=0.99)
    answerer = LLMAnswerer(settings, FixedRetriever(PASSAGES), ScriptedModel("local", SURE))
    answer = await answerer.answer("Returns?", [], {})
    assert answer is not None
    assert answer.handoff_reason == "low_confidence"


def test_render_without_citations_keeps_the_top_passage() -> None:
    assert render_draft("Thirty days.", PASSAGES) == ("Thirty days.", ("returns-policy.md#0",))
    assert render_draft("Thirty days [7].", PASSAGES) == ("Thirty days.", ("returns-policy.md#0",))
    text, ids = render_draft("A [2] and B [1][2].", PASSAGES)
    assert ids == ("refund-timing.md#0", "returns-policy.md#0")
    assert text == "A and B.\n\n(Source: Refund timing; Returns policy)"


# The real cloud chain against a local OpenAI-compatible server.


async def test_real_cloud_chain_answers_with_cost_and_no_pii(fake_openai: FakeOpenAI) -> None:
    fake_openai.script(ok("Returns are accepted within 30 days of delivery [1].", usage=(900, 20)))
    provider = provider_for(fake_openai, price_in_per_m=1.0, price_out_per_m=4.0)
    async with CloudChain(CloudSettings(providers=[provider])) as chain:
        answerer = _answerer(ScriptedModel("local", UNSURE_LOCAL), chain)
        answer = await answerer.answer("I'm ann@example.com, how long can I return?", [], {})
    assert answer is not None
    assert answer.route == "cloud"
    assert answer.citations == ("returns-policy.md#0",)
    assert answer.text.endswith("(Source: Returns policy)")
    assert answer.cost_usd == pytest.approx((900 * 1.0 + 20 * 4.0) / 1e6)
    assert (answer.tokens_in, answer.tokens_out) == (900, 20)
    assert "ann@example.com" not in fake_openai.requests[0].raw


async def test_real_cloud_chain_failures_hand_off(fake_openai: FakeOpenAI) -> None:
    fake_openai.script(status(503))
    async with CloudChain(CloudSettings(providers=[provider_for(fake_openai)])) as chain:
        answerer = _answerer(ScriptedModel("local", UNSURE_LOCAL), chain)
        answer = await answerer.answer("How long can I return?", [], {})
    assert answer is not None
    assert (answer.route, answer.handoff_reason) == ("human", "cloud_unavailable")

    settings = CloudSettings(providers=[provider_for(fake_openai)], monthly_budget_usd=0.0)
    async with CloudChain(settings) as chain:
        answerer = _answerer(ScriptedModel("local", UNSURE_LOCAL), chain)
        answer = await answerer.answer("How long can I return?", [], {})
    assert answer is not None
    assert (answer.route, answer.handoff_reason) == ("human", "budget")
