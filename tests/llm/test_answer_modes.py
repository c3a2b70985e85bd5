"""Answer modes over the real default KB: extractive quotes, checked drafts, auto."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from bot.dialogue.answer import TOKEN_SINK
from llm import drafts
from llm.answerer import LLMAnswerer
from llm.cloud import CloudChain
from llm.settings import CloudSettings, LLMSettings
from llm.types import Completion
from tests.llm.cloud.fake_openai import FakeOpenAI, ok
from tests.llm.cloud.support import provider_for
from tests.llm.test_answerer import ScriptedModel

if TYPE_CHECKING:
    from llm.extractive import Extractor
    from llm.retrieval import KnowledgeBase

QUESTION = "what's the minimum length for a password?"
# The example of a wrong draft: the article says 10.
WRONG = Completion("The minimum password length is 8 characters [1].", completion_tokens=12)
RIGHT = Completion("Passwords need at least 10 characters [1].", completion_tokens=9)
LOOPING = Completion("Passwords need 10 characters. " * 6, finish_reason="length")


def _answerer(
    kb: KnowledgeBase,
    extractor: Extractor,
    mode: str,
    local: ScriptedModel | None = None,
    cloud: CloudChain | None = None,
) -> LLMAnswerer:
    settings = LLMSettings(answer_mode=mode)  # type: ignore[arg-type]
    return LLMAnswerer(settings, kb, local, cloud, extractor=extractor)


async def test_extractive_quotes_the_article_and_needs_no_model(
    default_kb: KnowledgeBase, extractor: Extractor
) -> None:
    local = ScriptedModel("local", RIGHT)
    answer = await _answerer(default_kb, extractor, "extractive", local).answer(QUESTION, [], {})
    assert answer is not None
    assert answer.route == "extractive"
    assert "at least 10 characters" in answer.text
    assert answer.text.endswith("(Source: Password and account)")
    assert answer.citations == ("password-and-account.md#2",)
    assert local.calls == []


async def test_extractive_works_with_the_local_model_off(
    default_kb: KnowledgeBase, extractor: Extractor
) -> None:
    answer = await _answerer(default_kb, extractor, "auto").answer(QUESTION, [], {})
    assert answer is not None
    assert (answer.route, answer.handoff_reason) == ("extractive", None)


@pytest.mark.parametrize("draft", [WRONG, LOOPING])
async def test_a_draft_that_fails_the_checks_falls_back_to_the_quote(
    default_kb: KnowledgeBase, extractor: Extractor, draft: Completion
) -> None:
    local = ScriptedModel("local", draft)
    streamed: list[str] = []
    token = TOKEN_SINK.set(streamed.append)
    try:
        answer = await _answerer(default_kb, extractor, "generative", local).answer(
            QUESTION, [], {}
        )
    finally:
        TOKEN_SINK.reset(token)
    assert answer is not None
    assert answer.route == "extractive"
    assert "8 characters" not in answer.text
    assert "10 characters" in answer.text
    assert len(local.calls) == 1
    assert streamed == []  # the rejected draft never reached the customer


async def test_a_draft_that_passes_the_checks_is_the_answer(
    default_kb: KnowledgeBase, extractor: Extractor
) -> None:
    local = ScriptedModel("local", RIGHT)
    answer = await _answerer(default_kb, extractor, "generative", local).answer(QUESTION, [], {})
    assert answer is not None
    assert answer.route == "local"
    assert answer.text == "Passwords need at least 10 characters.\n\n(Source: Password and account)"


async def test_auto_stops_waiting_for_a_model_whose_drafts_keep_failing(
    default_kb: KnowledgeBase, extractor: Extractor
) -> None:
    local = ScriptedModel("local", WRONG)
    answerer = _answerer(default_kb, extractor, "auto", local)
    for _ in range(drafts.MIN_DRAFTS + 5):
        answer = await answerer.answer(QUESTION, [], {})
        assert answer is not None
        assert answer.route == "extractive"
    assert len(local.calls) == drafts.MIN_DRAFTS
    # It is asked again now and then, and trusted again once its drafts pass.
    local.result = RIGHT
    for _ in range(drafts.PROBE_EVERY * drafts.WINDOW):
        await answerer.answer(QUESTION, [], {})
    assert answerer.drafts.pass_rate is not None
    assert answerer.drafts.pass_rate >= drafts.MIN_PASS_RATE
    answer = await answerer.answer(QUESTION, [], {})
    assert answer is not None
    assert answer.route == "local"


async def test_a_question_the_kb_does_not_cover_is_not_answered(
    default_kb: KnowledgeBase, extractor: Extractor
) -> None:
    answerer = _answerer(default_kb, extractor, "extractive")
    answer = await answerer.answer("do you offer a student discount on sofas?", [], {})
    assert answer is not None
    assert answer.route in ("human", "local")
    assert answer.route == "human" or answer.declined


async def test_a_cloud_answer_without_markers_is_judged_by_the_checks(
    default_kb: KnowledgeBase, extractor: Extractor, fake_openai: FakeOpenAI
) -> None:
    # Below the local threshold, so the cloud is asked; its answer has no [n].
    question = "the reset email never showed up, how many can I ask for?"
    fake_openai.script(
        ok("You can request up to 5 reset links per hour; check your spam folder too.")
    )
    settings = LLMSettings(answer_mode="extractive", local_threshold=0.99)
    async with CloudChain(CloudSettings(providers=[provider_for(fake_openai)])) as chain:
        answerer = LLMAnswerer(settings, default_kb, None, chain, extractor=extractor)
        answer = await answerer.answer(question, [], {})
    assert answer is not None
    assert answer.route == "cloud"
    assert answer.text.startswith("You can request up to 5 reset links per hour")


async def test_an_invented_cloud_answer_hands_off_with_its_cost(
    default_kb: KnowledgeBase, extractor: Extractor, fake_openai: FakeOpenAI
) -> None:
    fake_openai.script(ok("You can request up to 12 reset links per day.", usage=(900, 20)))
    provider = provider_for(fake_openai, price_in_per_m=1.0, price_out_per_m=4.0)
    settings = LLMSettings(answer_mode="extractive", local_threshold=0.99)
    async with CloudChain(CloudSettings(providers=[provider])) as chain:
        answerer = LLMAnswerer(settings, default_kb, None, chain, extractor=extractor)
        answer = await answerer.answer("how many reset links can I ask for?", [], {})
    assert answer is not None
    assert (answer.route, answer.handoff_reason) == ("human", "cloud_unsure")
    assert answer.cost_usd == pytest.approx((900 * 1.0 + 20 * 4.0) / 1e6)
