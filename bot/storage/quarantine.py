"""Turns that keep failing: their attempts are counted, then the message is set aside.

Before a turn runs, the inbound message's ``attempts`` goes up by one in a
statement of its own, so a turn that kills the process still counts. A
message whose turns failed too often is marked ``failed`` (never run again,
neither by a restart nor by recovery), its conversation starts afresh (the
stored dialogue state may be what fails), and an apology goes to the
outbox, all in one transaction (see :meth:`bot.manager.DialogueManager`).
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

from sqlalchemy import update

from bot.storage import outbox_queries
from bot.storage.statements import CONVERSATIONS, MESSAGES

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection

    from bot.storage.outbox_queries import Claim
    from bot.storage.store import Store

_m = MESSAGES.c


def _pending(inbound_id: int) -> tuple[Any, ...]:
    """The condition that picks inbound message ``inbound_id`` while it is pending."""
    return (_m.id == inbound_id, _m.direction == "in", _m.status == "pending")


async def count_attempt(conn: AsyncConnection, inbound_id: int) -> int | None:
    """Add one to a pending message's attempts; return the new count (``None``: not pending)."""
    query = (
        update(MESSAGES)
        .where(*_pending(inbound_id))
        .values(attempts=_m.attempts + 1)
        .returning(_m.attempts)
    )
    found = (await conn.execute(query)).scalar_one_or_none()
    return None if found is None else int(found)


async def set_aside(
    conn: AsyncConnection,
    conversation_id: int,
    inbound_id: int,
    reply: dict[str, Any],
    delivered: bool,
    claim: Claim | None,
) -> int | None:
    """Mark a pending message ``failed``, reset its conversation's state, queue ``reply``.

    Returns:
        The id of the reply, or ``None`` when the message was not pending
        (another replica finished or set it aside first): then nothing changed.
    """
    marked = await conn.execute(
        update(MESSAGES).where(*_pending(inbound_id)).values(status="failed")
    )
    if marked.rowcount != 1:
        return None
    fresh = update(CONVERSATIONS).where(CONVERSATIONS.c.id == conversation_id).values(state=None)
    await conn.execute(fresh)
    status = "delivered" if delivered else "pending"
    return await outbox_queries.insert_outbound(
        conn, conversation_id, reply, inbound_id, status=status, claim=claim
    )


class TurnAttempts:
    """The attempt count and the quarantine of inbound messages, over one store.

    Args:
        store: A started store (migrated to revision 0005 or later).
    """

    def __init__(self, store: Store) -> None:
        self.store = store

    async def count(self, inbound_id: int) -> int | None:
        """Count one more turn of a pending message, durably, before it runs.

        Returns:
            The attempts so far, this one included; ``None`` when the message
            is no longer pending.
        """
        op = functools.partial(count_attempt, inbound_id=inbound_id)
        return await self.store.run("count_attempt", op, autocommit=True)

    async def set_aside(
        self, conversation_id: int, inbound_id: int, reply: dict[str, Any], delivered: bool
    ) -> int | None:
        """Quarantine a message as ``failed`` and queue ``reply``, in one transaction.

        Args:
            conversation_id: The store id of the message's conversation.
            inbound_id: The failed message.
            reply: ``{"text", "buttons", "metadata"}`` for the customer.
            delivered: The caller hands the reply over itself (REST).

        Returns:
            The reply's id, or ``None`` when the message was not pending.
        """
        # New replies are born claimed by this replica, as a turn's are.
        claim = self.store._reply_claim
        op = functools.partial(
            set_aside,
            conversation_id=conversation_id,
            inbound_id=inbound_id,
            reply=reply,
            delivered=delivered,
            claim=claim,
        )
        return await self.store.run("set_aside", op)
