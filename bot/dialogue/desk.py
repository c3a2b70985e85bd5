"""Whether people can take a conversation now, and the queue seen from a turn.

The manager works the :class:`Desk` out before a turn (agent accounts,
presence, business hours, whether an email can reach the customer) and the
engine reads it: ``action_human_handoff`` copies it into the handoff
pattern's ``context``, so a bot's ``pattern_human_handoff`` branches on
``context.available`` and ``context.followup``.

While a handed-off conversation waits in the queue unclaimed, the bot still
runs its turns (Intercom and Chatwoot do the same): it answers, says the
request is still queued, and lets the customer leave the queue by asking for
the bot (:func:`before_turn`, :func:`after_turn`).
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, get_args

from bot.dialogue.events import HandoffWithdrawn

if TYPE_CHECKING:
    from bot.dialogue.engine import Turn

#: Who can answer now: a person, or why nobody can.
Staffing = Literal["available", "no_agents", "agents_away", "closed"]
STAFFING: tuple[str, ...] = get_args(Staffing)
#: How a reply can reach the customer later by email: ``collect`` an address
#: (the channel is not email), ``known`` (the sender's address, or one given),
#: or ``none`` (no email connector: the bot must not promise an email).
Followup = Literal["none", "collect", "known"]
FOLLOWUPS: tuple[str, ...] = get_args(Followup)

#: The built-in flow that collects an address for an email follow-up.
EMAIL_FLOW = "handoff_email_followup"
#: The slot it collects.
EMAIL_SLOT = "handoff_email"
#: A button payload that leaves the queue (offered with the queue notice).
BOT_INTENT = "talk_to_bot"
STILL_QUEUED = "utter_human_handoff_still_queued"
WITHDRAWN = "utter_human_handoff_withdrawn"
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[A-Za-z]{2,}$")
_ASKS_FOR_THE_BOT = frozenset(
    {
        "bot",
        "the bot",
        "bot please",
        "talk to the bot",
        "talk to bot",
        "back to the bot",
        "back to bot",
        "i want the bot",
        "i want to talk to the bot",
        "let me talk to the bot",
        "no need for a person",
        "i don't need a person anymore",
    }
)
_FILLERS = frozenset({"please", "pls", "ok", "okay", "just", "now", "thanks"})
#: These leave the queue only when no flow is running (else they cancel the flow).
_CANCELS = frozenset({"cancel", "cancel it", "cancel the request", "never mind", "nevermind"})


@dataclass(frozen=True)
class Desk:
    """The support desk as one conversation's turn sees it.

    Attributes:
        staffing: ``available``, or why nobody can answer now.
        followup: How an agent's reply can reach the customer by email.
    """

    staffing: Staffing = "available"
    followup: Followup = "none"

    @property
    def available(self) -> bool:
        """Whether a person can take the conversation now."""
        return self.staffing == "available"

    def context(self) -> dict[str, Any]:
        """What the handoff pattern reads as ``context.*``."""
        return {
            "available": self.available,
            "staffing": self.staffing,
            "followup": self.followup,
        }


#: Works the desk out when a turn first needs it.
DeskLoader = Callable[[], Awaitable[Desk]]
#: The desk when nobody says otherwise (the e2e runner, bare engines): staffed.
STAFFED = Desk()


def valid_email(value: Any) -> str | None:
    """The address if ``value`` looks like one, else ``None``."""
    if not isinstance(value, str) or not _EMAIL.match(value.strip()):
        return None
    return value.strip()


def asks_for_the_bot(turn: Turn) -> bool:
    """Whether the message asks to leave the queue and go on with the bot."""
    parse = turn.parse
    intent = parse.intent.name if parse.intent and not parse.out_of_scope else None
    if intent == BOT_INTENT:
        return True
    tokens = re.sub(r"[^\w' ]+", " ", parse.text.casefold()).split()
    words = " ".join(t for t in tokens if t not in _FILLERS)
    if words in _ASKS_FOR_THE_BOT:
        return True
    no_flow = turn.state.top_user_frame() is None
    return no_flow and (intent == "cancel" or words in _CANCELS)


async def before_turn(turn: Turn) -> bool:
    """Take a queued conversation back when the customer asks for the bot.

    Returns:
        Whether the message was handled (the turn runs no command).
    """
    if not turn.queued or not asks_for_the_bot(turn):
        return False
    turn.emit(HandoffWithdrawn())
    turn.result.withdrawn = True
    turn.utter(WITHDRAWN)
    return True


def after_turn(turn: Turn, email_flow_was_active: bool) -> None:
    """Tell a queued customer, whose turn the bot just answered, they are still queued.

    Not while a flow waits for an answer (the notice would bury its
    question), nor after a turn that handed off again or dealt with the
    email follow-up, which say where the request stands themselves.
    """
    result = turn.result
    if not turn.queued or result.withdrawn or result.handoff_reason is not None:
        return
    if email_flow_was_active or turn.state.stack:
        return
    turn.utter(STILL_QUEUED)


async def handoff(turn: Turn, context: dict[str, Any]) -> Desk:
    """Give the handoff pattern's ``context`` the desk; return it."""
    desk = await turn.desk()
    context.update(desk.context())
    turn.result.desk = desk
    return desk


async def record_email(turn: Turn) -> None:
    """``action_handoff_email``: the address an agent's reply goes to."""
    address = valid_email(turn.state.slots.get(EMAIL_SLOT))
    if address is not None:
        turn.result.followup_email = address
