"""Open-ended turns: an answer from the knowledge base, the cloud, or a person.

:class:`LLMAnswerer` implements :class:`bot.dialogue.answer.Answerer`:

1. **Retrieve.** With no passage at or above ``retrieval.min_score`` the KB
   has nothing on the question: the bot says so and offers a person, asking
   no model (``declined``).
2. **Choose a quote** (:mod:`llm.extractive`) and score how well the KB
   covers the question (:func:`llm.confidence.score`). This is fast (no
   model) and decides every later step.
3. **Answer** by ``llm.answer_mode``:

   * ``extractive``: the quote, with the article title as its source.
   * ``generative``: the local model's draft, shown only when it passes
     every groundedness check (:mod:`llm.grounding`); otherwise the quote.
   * ``auto`` (default): as ``generative`` while the model's drafts pass the
     checks (:class:`llm.drafts.DraftRecord`); a model whose drafts keep
     failing (the embedded 135M model) is asked only now and then, and the
     quote answers meanwhile.

   Either is shown only when the confidence reaches ``local_threshold``.
4. **Cloud.** Otherwise the cloud chain gets the grounded prompt (the chain
   redacts PII). Its answer is judged by the same checks, with or without
   ``[n]`` markers, and shown when it passes.
5. **Human.** Otherwise the turn hands off (``handoff_reason`` one of
   ``low_confidence``, ``local_unavailable``, ``cloud_unavailable``,
   ``cloud_unsure`` or ``budget``); the handoff pattern speaks.

Drafts are never streamed to the customer: a draft may still be rejected.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Protocol

from bot import tracing
from bot.dialogue.answer import Answer
from bot.errors import BudgetExhausted, LLMError
from llm import grounding
from llm.confidence import DEFAULT_LOCAL_THRESHOLD, Features, score
from llm.drafts import DraftRecord, render_draft
from llm.prompt import approx_tokens, build_prompt
from llm.types import GenerationSettings

if TYPE_CHECKING:
    from collections.abc import Sequence

    from llm.extractive import Extract, Extractor
    from llm.prompt import Prompt, TokenCounter
    from llm.settings import LLMSettings
    from llm.types import ChatModel, Completion, LocalChatModel, Passage

_LOGGER = logging.getLogger(__name__)

NO_KNOWLEDGE_TEXT = (
    "I couldn't find anything about that in our help articles, and I'd rather not guess. "
    "Could you put it another way? If you'd like a person to help, just say so."
)
#: Sections compete for the quote among this many passages (at least).
EXTRACT_K = 3
HANDOFF_TEXT = "I'm passing your question to a member of our team."


class Retriever(Protocol):
    """What the answerer needs from :class:`llm.retrieval.KnowledgeBase`."""

    async def search(self, query: str, k: int | None = None) -> list[Passage]:
        """Return the passages relevant to ``query``, best first."""
        ...


def features_of(question: str, passages: Sequence[Passage], extract: Extract | None) -> Features:
    """Return the retrieval signals of the confidence (:class:`llm.confidence.Features`)."""
    top = passages[0].score if passages else 0.0
    if extract is None:
        text = passages[0].text if passages else ""
        return Features(top, top, 0.0, grounding.overlap(question, [text]))
    # A lone section (the others scored below retrieval.min_score) leads nothing.
    margin = extract.score - extract.runner_up if extract.runner_up else 0.0
    return Features(top, extract.similarity, margin, extract.coverage)


def quote(extract: Extract) -> str:
    """The customer-facing text of an extractive answer: the quote and its source."""
    return f"{extract.text}\n\n(Source: {'; '.join(extract.titles)})"


class LLMAnswerer:
    """Answers open-ended messages from the KB; escalates to the cloud, then a person.

    Args:
        settings: The ``llm`` section of the configuration.
        retriever: The knowledge base.
        local: The local model, or ``None`` when disabled.
        cloud: The cloud provider chain, or ``None`` when not configured.
        count_tokens: The local model's token counter, for the prompt budget;
            defaults to ``local.count_tokens`` when it has one.
        extractor: Chooses quotes from the KB's sections; without one there
            are no extractive answers.
    """

    def __init__(
        self,
        settings: LLMSettings,
        retriever: Retriever,
        local: LocalChatModel | None,
        cloud: ChatModel | None = None,
        count_tokens: TokenCounter | None = None,
        extractor: Extractor | None = None,
    ) -> None:
        self._settings = settings
        self._retriever = retriever
        self._local = local
        self._cloud = cloud
        self._extractor = extractor
        self._count = count_tokens or getattr(local, "count_tokens", None) or approx_tokens
        threshold = settings.local_threshold
        self.local_threshold = DEFAULT_LOCAL_THRESHOLD if threshold is None else threshold
        self.drafts = DraftRecord()

    @tracing.llm_answer
    async def answer(
        self, text: str, history: Sequence[dict[str, Any]], slots: dict[str, Any]
    ) -> Answer | None:
        """Answer ``text`` from the knowledge base, escalating when unsure."""
        settings = self._settings
        found = await self._retriever.search(text, max(settings.retrieval.top_k, EXTRACT_K))
        if not found:
            _LOGGER.info("No KB passage matches the question; saying so.")
            return Answer(text=NO_KNOWLEDGE_TEXT, route="local", declined=True)
        passages = found[: settings.retrieval.top_k]
        extract = None
        if self._extractor is not None:
            extract = await self._extractor.extract(text, found)
        features = features_of(text, found, extract)
        relevance = score(features)
        prompt = build_prompt(
            text,
            passages,
            history,
            instructions=settings.system_prompt,
            history_limit=settings.history_messages,
            budget_tokens=settings.prompt_budget_tokens,
            count_tokens=self._count,
        )
        reason = "low_confidence"
        if relevance >= self.local_threshold:
            local, reason = await self._try_local(prompt, text, features, extract)
            if local is not None:
                return local
        return await self._try_cloud(prompt, text, reason, relevance)

    async def candidate(self, text: str) -> tuple[str, Features] | None:
        """Return the quote the KB offers for ``text`` and its signals, whatever the threshold.

        For evaluation and calibration (``helpline kb evaluate``).
        """
        top_k = max(self._settings.retrieval.top_k, EXTRACT_K)
        passages = await self._retriever.search(text, top_k)
        if not passages or self._extractor is None:
            return None
        extract = await self._extractor.extract(text, passages)
        if extract is None:
            return None
        return quote(extract), features_of(text, passages, extract)

    def _wants_draft(self) -> bool:
        mode = self._settings.answer_mode
        if self._local is None or mode == "extractive":
            return False
        return mode == "generative" or self.drafts.worth_trying()

    @tracing.llm_local
    async def _try_local(
        self, prompt: Prompt, question: str, features: Features, extract: Extract | None
    ) -> tuple[Answer | None, str]:
        """Return a checked draft or the quote, or ``None`` and why there is none."""
        reason = "low_confidence"
        if self._wants_draft():
            assert self._local is not None
            local = self._settings.local
            generation = GenerationSettings(
                max_new_tokens=local.max_new_tokens,
                temperature=local.temperature,
                top_p=local.top_p,
            )
            try:
                completion = await self._local.complete(prompt.messages, generation)
            except LLMError as exc:
                _LOGGER.warning("The local model cannot answer (%s).", exc)
                reason = "local_unavailable"
            else:
                answer = self._judge("local", completion, prompt, question, features)
                self.drafts.record(answer is not None)
                if answer is not None:
                    return answer, ""
        if extract is not None:
            confidence = score(features)
            return Answer(
                text=quote(extract),
                route="extractive",
                confidence=confidence,
                citations=extract.citations,
                provider="extractive",
            ), ""
        if self._local is None:
            reason = "local_unavailable"
        return None, reason

    def _judge(
        self,
        route: str,
        completion: Completion,
        prompt: Prompt,
        question: str,
        features: Features,
    ) -> Answer | None:
        """Return the draft as an answer when it passes the checks, else ``None``."""
        texts = [f"{p.title} {p.extra.get('heading', '')}\n{p.text}" for p in prompt.passages]
        checks = grounding.check(
            completion.text, texts, question, finish_reason=completion.finish_reason
        )
        if not checks.passed:
            _LOGGER.info(
                "The %s draft fails the checks %s (%s).",
                route,
                ",".join(checks.failures),
                ", ".join(checks.unsupported) or "-",
            )
            return None
        text, citations = render_draft(completion.text, prompt.passages)
        confidence = score(features)
        return Answer(
            text=text,
            route=route,
            confidence=confidence,
            citations=citations,
            provider=completion.provider,
            tokens_in=completion.prompt_tokens,
            tokens_out=completion.completion_tokens,
            cost_usd=completion.cost_usd,
            local_confidence=confidence if route == "local" else None,
        )

    @tracing.llm_cloud
    async def _try_cloud(self, prompt: Prompt, question: str, reason: str, best: float) -> Answer:
        """Ask the cloud chain; hand off to a person when it fails or is unsure."""
        if self._cloud is None:
            return self._handoff(reason, best)
        generation = GenerationSettings(max_new_tokens=self._settings.cloud.max_new_tokens)
        try:
            completion = await self._cloud.complete(prompt.messages, generation)
        except BudgetExhausted as exc:
            _LOGGER.warning("The cloud budget is spent (%s); handing off.", exc)
            return self._handoff("budget", best)
        except LLMError as exc:
            _LOGGER.warning("The cloud is unavailable (%s); handing off.", exc)
            return self._handoff("cloud_unavailable", best)
        # The cloud model is judged by its text alone: the KB may cover a
        # question that retrieval scored low, and a grounded answer shows it.
        texts = [f"{p.title} {p.extra.get('heading', '')}\n{p.text}" for p in prompt.passages]
        checks = grounding.check(
            completion.text, texts, question, finish_reason=completion.finish_reason
        )
        confidence = checks.overlap if checks.passed else 0.0
        usage: dict[str, Any] = {
            "provider": completion.provider,
            "tokens_in": completion.prompt_tokens,
            "tokens_out": completion.completion_tokens,
            "cost_usd": completion.cost_usd,
            "cloud_confidence": confidence,
        }
        if confidence < self._settings.cloud_threshold:
            _LOGGER.info(
                "The cloud answer fails the checks %s; handing off.", ",".join(checks.failures)
            )
            return self._handoff("cloud_unsure", max(best, confidence), usage)
        text, citations = render_draft(completion.text, prompt.passages)
        return Answer(text=text, route="cloud", confidence=confidence, citations=citations, **usage)

    @staticmethod
    def _handoff(reason: str, confidence: float, usage: dict[str, Any] | None = None) -> Answer:
        return Answer(
            text=HANDOFF_TEXT,
            route="human",
            confidence=confidence,
            handoff_reason=reason,
            **(usage or {}),
        )
