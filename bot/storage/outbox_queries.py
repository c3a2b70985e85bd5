"""Outbox statements: writing replies, where a reply goes, marking it delivered.

They run inside a transaction the store opens (see :mod:`bot.storage.queries`).
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from bot.errors import StorageError
from bot.storage import statements as st
from bot.storage.models import utcnow
from bot.storage.statements import CONVERSATIONS, MESSAGES

if TYPE_CHECKING:
    from collections.abc import Iterable

    from sqlalchemy.ext.asyncio import AsyncConnection

Claim = tuple[str, float]
"""A replica's id and the seconds its claim on a new reply holds (see claims.py)."""


def outbound_row(
    conversation_id: int,
    channel: str,
    reply: dict[str, Any],
    in_reply_to: int | None,
    status: str,
    claim: Claim | None,
) -> dict[str, Any]:
    """The columns of one outbound message (claimed by ``claim``'s replica if pending)."""
    row = {
        "conversation_id": conversation_id,
        "channel": channel,
        "direction": "out",
        "text": reply["text"],
        "buttons": list(reply.get("buttons") or []),
        "metadata": dict(reply.get("metadata") or {}),
        "status": status,
        "in_reply_to": in_reply_to,
        "claimed_by": None,
        "claimed_until": None,
    }
    if claim is not None and status == "pending":
        owner, lease_s = claim
        row.update(claimed_by=owner, claimed_until=utcnow() + timedelta(seconds=lease_s))
    return row


async def insert_outbound(
    conn: AsyncConnection,
    conversation_id: int,
    reply: dict[str, Any],
    in_reply_to: int | None,
    channel: str | None = None,
    status: str = "pending",
    claim: Claim | None = None,
) -> int:
    """Put one outbound message in the outbox (``pending`` unless already delivered).

    With ``claim`` a pending message is born claimed by that replica, which
    delivers it next without another round trip to claim it.
    """
    if channel is None:
        query = select(CONVERSATIONS.c.channel).where(CONVERSATIONS.c.id == conversation_id)
        channel = (await conn.execute(query)).scalar_one_or_none()
    if channel is None:
        raise StorageError(f"Conversation {conversation_id} does not exist.")
    row = outbound_row(conversation_id, channel, reply, in_reply_to, status, claim)
    insert = MESSAGES.insert().values(**row).returning(MESSAGES.c.id)
    return int((await conn.execute(insert)).scalar_one())


async def mark_delivered(conn: AsyncConnection, ids: Iterable[int]) -> None:
    """Mark outbound messages delivered."""
    wanted = list(ids)
    if not wanted:
        return
    await conn.execute(st.MARK_DELIVERED, {"p_ids": wanted, "p_now": utcnow()})


async def reply_source(conn: AsyncConnection, message_id: int) -> tuple[int, dict[str, Any] | None]:
    """Return the reply's conversation id and the metadata of the message it answers.

    The metadata is ``None`` for a reply that answers no message (an agent's).

    Raises:
        StorageError: There is no such outbound message.
    """
    row = (await conn.execute(st.REPLY_SOURCE, {"p_message_id": message_id})).one_or_none()
    if row is None:
        raise StorageError(f"there is no outbound message {message_id}")
    return int(row.conversation_id), None if row.metadata is None else dict(row.metadata)
