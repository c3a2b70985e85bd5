"""The protocol for open-ended turns that no flow handles.

``bot`` defines it; the LLM package implements it (local model, cloud
fallback, escalation). Until an answerer is configured, open-ended turns run
``pattern_cannot_handle``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from bot.dialogue.engine import Turn

TokenSink = Callable[[str], None]
#: Where an answerer streams the text of a draft answer as it is generated, when
#: the channel shows answers live (the widget). The final answer still arrives
#: as the turn's reply and replaces the draft, which may have been escalated.
TOKEN_SINK: ContextVar[TokenSink | None] = ContextVar("helpline_token_sink", default=None)
#: The store id of the conversation whose turn is running (the dialogue manager
#: sets it), so that what an answerer's model calls cost is recorded against it.
TURN_CONVERSATION: ContextVar[int | None] = ContextVar("helpline_turn_conversation", default=None)


@dataclass(frozen=True)
class Answer:
    """An answer to an open-ended message.

    Attributes:
        text: What to tell the customer.
        route: Who answered: ``extractive`` (a quote of the KB), ``local`` (the
            local model's checked draft), ``cloud`` or ``human`` (a handoff).
        confidence: The answerer's confidence in ``[0, 1]``.
        citations: Identifiers of the knowledge-base passages used.
        handoff_reason: Why a human is needed, when ``route`` is ``human``.
        provider: The model provider that answered (``local`` or a cloud name).
        tokens_in: Prompt tokens of the model call(s).
        tokens_out: Generated tokens of the model call(s).
        cost_usd: What the model call(s) cost.
        local_confidence: The local model's score, when it answered (even if escalated).
        cloud_confidence: The cloud's score, when it answered (even if handed off).
        declined: The knowledge base has nothing on the question, and the text says so.
    """

    text: str
    route: str = "local"
    confidence: float = 0.0
    citations: tuple[str, ...] = ()
    handoff_reason: str | None = None
    provider: str | None = None
    tokens_in: int | None = None
    tokens_out: int | None = None
    cost_usd: float | None = None
    local_confidence: float | None = None
    cloud_confidence: float | None = None
    declined: bool = False


class Answerer(Protocol):
    """Answers open-ended messages, or returns ``None`` when it cannot."""

    async def answer(
        self, text: str, history: Sequence[dict[str, Any]], slots: dict[str, Any]
    ) -> Answer | None:
        """Answer ``text`` given the conversation so far."""
        ...


async def answer_open_ended(turn: Turn) -> None:
    """Hand a message no flow handles to the engine's answerer.

    An answer routed to a person is not said: the handoff pattern speaks for
    it, so the customer gets one message, whatever the reason.
    """
    answerer = turn.engine.answerer
    answer = None
    if answerer is not None:
        history = await turn.history()
        answer = await answerer.answer(turn.parse.text, history, dict(turn.state.slots))
    if answer is None:
        turn.push("pattern_cannot_handle")
        return
    turn.result.route = answer.route
    turn.result.confidence = answer.confidence
    turn.result.citations = answer.citations
    turn.result.answer = answer
    if answer.route == "human":
        turn.push("pattern_human_handoff", reason=answer.handoff_reason or "low_confidence")
    else:
        turn.say(answer.text)
