"""Open-ended turns: a grounded local answer, then the cloud, then a person.

:class:`LLMAnswerer` implements :class:`bot.dialogue.answer.Answerer`:

1. **Retrieve.** With no passage at or above ``retrieval.min_score`` the bot
   has nothing to ground an answer on. It does not ask any model (a model
   without passages invents); it says it has no article on that and offers a
   person, without handing off: an off-topic question should not leave the
   conversation waiting for an agent (``route="local"``, confidence 0).
2. **Local.** The local model answers from the prompt of
   :func:`llm.prompt.build_prompt`. If its confidence
   (:func:`llm.confidence.score`) reaches the local threshold
   (``local_threshold``, or the calibrated default), it is the answer.
3. **Cloud.** Otherwise (low confidence, or the local model busy, failing or
   disabled) the cloud chain gets the same messages. Redacting PII is the
   chain's job, at the one place where text leaves the machine. Its answer
   is scored the same way (its log-probs when the provider returns them)
   against ``cloud_threshold``.
4. **Human.** Otherwise the customer is told a person will follow up, with
   ``handoff_reason`` one of ``low_confidence`` (no cloud configured),
   ``local_unavailable`` (local failed and no cloud), ``cloud_unavailable``,
   ``cloud_unsure`` or ``budget``.

Citations: the answer's ``[n]`` markers name the passages used; they become
``Answer.citations`` (passage ids such as ``returns-policy.md#2``; the top
passage when the model cited none). In the text shown to the customer the
markers are removed and the titles of the cited articles are appended as one
``(Source: ...)`` line, which reads well on every channel.
"""

from __future__ import annotations

import logging
import re
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Protocol

from bot import tracing
from bot.dialogue.answer import TOKEN_SINK, Answer
from bot.errors import BudgetExhausted, LLMError
from llm.confidence import DEFAULT_LOCAL_THRESHOLD, cited_numbers, score
from llm.prompt import approx_tokens, build_prompt
from llm.types import GenerationSettings

if TYPE_CHECKING:
    from collections.abc import Sequence

    from llm.prompt import Prompt, TokenCounter
    from llm.settings import LLMSettings
    from llm.types import ChatModel, Completion, LocalChatModel, Passage

_LOGGER = logging.getLogger(__name__)

NO_KNOWLEDGE_TEXT = (
    "I couldn't find anything about that in our help articles, and I'd rather not guess. "
    "Could you put it another way? If you'd like a person to help, just say so."
)
HANDOFF_TEXT = (
    "I'm not sure enough to answer that myself, so I've passed your question to a member "
    "of our team. They'll follow up here shortly."
)
_MARKER = re.compile(r"\s*\[(\d+)\]")


class Retriever(Protocol):
    """What the answerer needs from :class:`llm.retrieval.KnowledgeBase`."""

    async def search(self, query: str, k: int | None = None) -> list[Passage]:
        """Return the passages relevant to ``query``, best first."""
        ...


def render(text: str, passages: Sequence[Passage]) -> tuple[str, tuple[str, ...]]:
    """Return the customer-facing text and the ids of the passages it cites.

    ``[n]`` markers are removed and the cited articles' titles appended as
    ``(Source: A; B)``. With no valid marker the top passage is the citation
    and no source line is added.
    """
    numbers = cited_numbers(text, len(passages))
    clean = _MARKER.sub("", text).strip()
    if not numbers:
        return clean, (passages[0].id,) if passages else ()
    cited = [passages[n - 1] for n in numbers]
    titles = list(dict.fromkeys(p.title for p in cited))
    return f"{clean}\n\n(Source: {'; '.join(titles)})", tuple(p.id for p in cited)


class LLMAnswerer:
    """Answers open-ended messages: local model, cloud chain, then a person.

    Args:
        settings: The ``llm`` section of the configuration.
        retriever: The knowledge base.
        local: The local model, or ``None`` when disabled.
        cloud: The cloud provider chain, or ``None`` when not configured.
        count_tokens: The local model's token counter, for the prompt budget;
            defaults to ``local.count_tokens`` when it has one.
    """

    def __init__(
        self,
        settings: LLMSettings,
        retriever: Retriever,
        local: LocalChatModel | None,
        cloud: ChatModel | None = None,
        count_tokens: TokenCounter | None = None,
    ) -> None:
        self._settings = settings
        self._retriever = retriever
        self._local = local
        self._cloud = cloud
        self._count = count_tokens or getattr(local, "count_tokens", None) or approx_tokens
        threshold = settings.local_threshold
        self.local_threshold = DEFAULT_LOCAL_THRESHOLD if threshold is None else threshold

    @tracing.llm_answer
    async def answer(
        self, text: str, history: Sequence[dict[str, Any]], slots: dict[str, Any]
    ) -> Answer | None:
        """Answer ``text`` from the knowledge base, escalating when unsure."""
        settings = self._settings
        passages = await self._retriever.search(text, settings.retrieval.top_k)
        if not passages:
            _LOGGER.info("No KB passage matches the question; saying so.")
            return Answer(text=NO_KNOWLEDGE_TEXT, route="local", confidence=0.0)
        prompt = build_prompt(
            text,
            passages,
            history,
            instructions=settings.system_prompt,
            history_limit=settings.history_messages,
            budget_tokens=settings.prompt_budget_tokens,
            count_tokens=self._count,
        )
        local, best, reason = await self._try_local(prompt)
        if local is not None:
            return replace(local, local_confidence=local.confidence)
        answer = await self._try_cloud(prompt, reason, best)
        return replace(answer, local_confidence=best if reason == "low_confidence" else None)

    @tracing.llm_local
    async def _try_local(self, prompt: Prompt) -> tuple[Answer | None, float, str]:
        """Return the local answer when confident, else its confidence and why not."""
        if self._local is None:
            return None, 0.0, "local_unavailable"
        local = self._settings.local
        generation = GenerationSettings(
            max_new_tokens=local.max_new_tokens, temperature=local.temperature, top_p=local.top_p
        )
        sink = TOKEN_SINK.get()
        try:
            if sink is None:
                completion = await self._local.complete(prompt.messages, generation)
            else:  # the channel shows the draft as it is generated
                completion = await self._local.complete(prompt.messages, generation, on_token=sink)
        except LLMError as exc:
            _LOGGER.warning("The local model cannot answer (%s); escalating.", exc)
            return None, 0.0, "local_unavailable"
        confidence = self._confidence(completion, prompt)
        if confidence < self.local_threshold:
            _LOGGER.info(
                "Local confidence %.2f is below %.2f; escalating.", confidence, self.local_threshold
            )
            return None, confidence, "low_confidence"
        return self._grounded("local", completion, prompt, confidence), confidence, ""

    @tracing.llm_cloud
    async def _try_cloud(self, prompt: Prompt, reason: str, best: float) -> Answer:
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
        confidence = self._confidence(completion, prompt)
        if confidence < self._settings.cloud_threshold:
            _LOGGER.info(
                "Cloud confidence %.2f is below %.2f; handing off.",
                confidence,
                self._settings.cloud_threshold,
            )
            unsure = self._handoff("cloud_unsure", max(best, confidence), completion)
            return replace(unsure, cloud_confidence=confidence)
        answer = self._grounded("cloud", completion, prompt, confidence)
        return replace(answer, cloud_confidence=confidence)

    def _confidence(self, completion: Completion, prompt: Prompt) -> float:
        return score(
            completion.text,
            [t.logprob for t in completion.tokens],
            prompt.passages[0].score if prompt.passages else 0.0,
            len(prompt.passages),
        )

    @staticmethod
    def _grounded(route: str, completion: Completion, prompt: Prompt, confidence: float) -> Answer:
        text, citations = render(completion.text, prompt.passages)
        return Answer(
            text=text,
            route=route,
            confidence=confidence,
            citations=citations,
            provider=completion.provider,
            tokens_in=completion.prompt_tokens,
            tokens_out=completion.completion_tokens,
            cost_usd=completion.cost_usd,
        )

    @staticmethod
    def _handoff(reason: str, confidence: float, completion: Completion | None = None) -> Answer:
        usage: dict[str, Any] = {}
        if completion is not None:
            usage = {
                "provider": completion.provider,
                "tokens_in": completion.prompt_tokens,
                "tokens_out": completion.completion_tokens,
                "cost_usd": completion.cost_usd,
            }
        return Answer(
            text=HANDOFF_TEXT, route="human", confidence=confidence, handoff_reason=reason, **usage
        )
