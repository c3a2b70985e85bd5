"""Handoffs as the dialogue manager sees them: who can take one, and the queue.

Before a turn the manager asks :class:`HandoffDesk` how the conversation
stands: with an agent who claimed it (the message is theirs, the bot stays
silent), queued and unclaimed (the bot still answers, see
:mod:`bot.dialogue.desk`), or with the bot. The handoff pattern learns who
can take a conversation now (enabled agents, presence, business hours) and
whether a reply can reach the customer by email, only if the turn hands off.
After the turn the desk records what it decided: the inbox row, an address
for an email follow-up, or the customer's going back to the bot.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from bot import metrics
from bot.dialogue.desk import Desk, Followup, Staffing, valid_email
from bot.dialogue.events import BotUttered, HandoffRequested, UserUttered
from bot.storage.records import TurnRecord

if TYPE_CHECKING:
    from bot.dialogue.desk import DeskLoader
    from bot.dialogue.engine import TurnResult
    from bot.storage.console_store import ConsoleStore
    from bot.storage.records import ConversationRow, TurnContext
    from bot.storage.store import Store

#: Whether an aware datetime falls in business hours.
OpenAt = Callable[[datetime], bool]


@dataclass(frozen=True)
class DeskSettings:
    """What the composition root knows about the support desk.

    Attributes:
        business_hours: When agents answer (``connectors.console.business_hours``);
            ``None`` is always open.
        email_outbound: An email connector runs, so an agent's reply to a
            conversation of another channel can go out by email.
    """

    business_hours: OpenAt | None = None
    email_outbound: bool = False


@dataclass(frozen=True)
class QueueState:
    """Where a conversation stands before its turn.

    Attributes:
        claimed: An agent has it: the bot stays silent.
        queued: It waits for a person, unclaimed: the bot answers meanwhile.
        followup_email: Where an agent's reply goes by email, if anywhere.
    """

    claimed: bool = False
    queued: bool = False
    followup_email: str | None = None


class HandoffDesk:
    """Answers "can a person take this now?" and records what a turn decided.

    Args:
        console: The console's store calls.
        settings: Business hours and the email outbound; set by the server
            before the runtime starts (:attr:`bot.runtime.Runtime.desk`).
    """

    def __init__(self, console: ConsoleStore, settings: DeskSettings | None = None) -> None:
        self.console = console
        self.settings = settings or DeskSettings()

    async def staffing(self, now: datetime | None = None) -> Staffing:
        """Whether someone can take a conversation at ``now``, or why nobody can."""
        hours = self.settings.business_hours
        if hours is not None and not hours(now or datetime.now(UTC)):
            return "closed"
        enabled, online = await self.console.staffing()
        if enabled == 0:
            return "no_agents"
        return "available" if online else "agents_away"

    async def queue_state(self, conv: ConversationRow, mode: str) -> QueueState:
        """How the conversation stands; read only while it is with people."""
        if mode != "human":
            return QueueState()
        entry = await self.console.queue_entry(conv.id)
        if entry is None:
            # Human mode with no open row: nobody would see the message, so the bot answers.
            return QueueState()
        if entry["assignee_id"] is not None:
            return QueueState(claimed=True)
        return QueueState(queued=True, followup_email=entry["followup_email"])

    def loader(self, conv: ConversationRow, queue: QueueState) -> DeskLoader:
        """Work the desk out for the turn, only if the turn hands off."""

        async def load() -> Desk:
            followup: Followup = "none"
            if conv.channel == "email" or queue.followup_email:
                followup = "known"
            elif self.settings.email_outbound:
                followup = "collect"
            return Desk(await self.staffing(), followup)

        return load

    async def record(self, conv: ConversationRow, result: TurnResult) -> None:
        """Put in the inbox what the turn decided."""
        if result.withdrawn:
            await self.console.withdraw(conv.id)
        if result.handoff_reason is not None and _nobody_could_answer(result):
            # No agent account and no way to reach the customer by email: a
            # queue nobody can open would only make every later answer end
            # with "you're still in the queue". The bot keeps the conversation.
            metrics.HANDOFFS.labels(result.handoff_reason).inc()
        elif result.handoff_reason is not None:
            unstaffed = result.desk is not None and not result.desk.available
            sender = valid_email(conv.sender) if conv.channel == "email" and unstaffed else None
            # Human mode and the console's inbox row, in one transaction. A customer
            # told that nobody is there is not sent the console's away notice too.
            await self.console.hand_off(
                conv.id, result.handoff_reason, followup_email=sender, notified=unstaffed
            )
            metrics.HANDOFFS.labels(result.handoff_reason).inc()
        if result.followup_email is not None:
            await self.console.set_followup(conv.id, result.followup_email)


def _nobody_could_answer(result: TurnResult) -> bool:
    desk = result.desk
    return (
        desk is not None
        and desk.staffing == "no_agents"
        and desk.followup == "none"
        and result.followup_email is None
    )


def mark_handoff(result: TurnResult, replies: list[dict[str, Any]]) -> None:
    """Flag the reply that tells the customer about the handoff (``metadata.handoff``).

    Live views (the widget, the console's alerts) know a handoff by it,
    whichever response a bot's pattern says.
    """
    if result.handoff_reason is None:
        return
    said = 0
    for event in result.events:
        if isinstance(event, HandoffRequested):
            if said < len(replies):
                replies[said]["metadata"]["handoff"] = True
            return
        if isinstance(event, BotUttered):
            said += 1


async def record_with_agent(
    store: Store,
    initial_state: dict[str, Any],
    conv: ConversationRow,
    inbound_id: int,
    context: TurnContext,
    text: str,
    started: float,
) -> None:
    """Store a message of a conversation an agent has claimed; the bot says nothing."""
    await store.commit_turn(
        TurnRecord(
            conversation_id=conv.id,
            inbound_id=inbound_id,
            state=context.state or initial_state,
            events=[UserUttered(text).to_dict()],
            route="human",
            latency_ms=(time.perf_counter() - started) * 1000,
        )
    )
    metrics.TURNS.labels("human").inc()
