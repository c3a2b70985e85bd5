"""What a turn produces, and the engine's tunables."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from bot.dialogue.events import BotUttered

if TYPE_CHECKING:
    from bot.dialogue.answer import Answer
    from bot.dialogue.desk import Desk
    from bot.dialogue.events import Event
    from bot.dialogue.state import DialogueState


@dataclass
class TurnResult:
    """What one turn did.

    Attributes:
        events: Every event of the turn, the user's message first.
        state: The dialogue state after the turn.
        route: ``flow``, ``local``, ``cloud`` or ``human``.
        confidence: Intent or answer confidence, when there is one.
        flow_id: The user flow the turn worked on, if any.
        handoff_reason: Set when the conversation goes to a human.
        citations: Knowledge-base passages an answer used.
        answer: The answerer's answer, for an open-ended turn.
        desk: What the handoff saw of the support desk, when the turn handed off.
        withdrawn: The customer left the queue for a person (back to the bot).
        followup_email: The address the customer left for an email follow-up.
    """

    events: list[Event]
    state: DialogueState
    route: str = "flow"
    confidence: float | None = None
    flow_id: str | None = None
    handoff_reason: str | None = None
    citations: tuple[str, ...] = ()
    answer: Answer | None = None
    desk: Desk | None = None
    withdrawn: bool = False
    followup_email: str | None = None

    @property
    def replies(self) -> list[BotUttered]:
        """The bot messages of this turn, in order."""
        return [e for e in self.events if isinstance(e, BotUttered)]


@dataclass
class EngineSettings:
    """Tunables of the engine."""

    max_message_chars: int = 2000
    action_timeout_s: float = 5.0
    seed: int | None = None
