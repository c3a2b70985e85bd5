"""Statements of the human inbox: handoffs, claims, summaries, notices and stats.

A row is opened in the same transaction that puts a conversation in human
mode; claiming is one conditional ``UPDATE``, so exactly one agent wins.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import String, Table, cast, exists, func, or_, select, update

from bot.storage.console_queries import AGENTS
from bot.storage.models import InboxRow, utcnow
from bot.storage.queries import CONVERSATIONS, MESSAGES, TURNS, set_mode

if TYPE_CHECKING:
    from datetime import datetime

    from sqlalchemy.ext.asyncio import AsyncConnection

INBOX: Table = InboxRow.__table__  # type: ignore[assignment]
VIEWS = ("needs_human", "mine", "open", "resolved")
_REOPEN = {
    "status": "open",
    "assignee_id": None,
    "claimed_at": None,
    "first_human_reply_at": None,
    "resolved_at": None,
    "csat": None,
    "csat_requested_at": None,
    "notified_at": None,
    "followup_email": None,
}


async def hand_off(
    conn: AsyncConnection,
    conversation_id: int,
    reason: str,
    followup_email: str | None = None,
    notified: bool = False,
) -> bool:
    """Put the conversation in human mode and open (or reopen) its inbox row.

    Args:
        conn: The transaction.
        conversation_id: The conversation.
        reason: Why it goes to a person.
        followup_email: Where an agent's reply goes by email (the sender's
            address on the email channel), when nobody could take it now.
        notified: The customer was told already where the request stands.

    Returns:
        Whether a row was opened; an open row only gets the new reason.
    """
    await set_mode(conn, conversation_id, "human")
    now, i = utcnow(), INBOX.c
    row = (
        await conn.execute(select(i.status).where(i.conversation_id == conversation_id))
    ).one_or_none()
    extra: dict[str, Any] = {"notified_at": now} if notified else {}
    if followup_email is not None:
        extra["followup_email"] = followup_email
    if row is None:
        await conn.execute(
            INBOX.insert().values(
                conversation_id=conversation_id,
                handoff_reason=reason,
                handoff_at=now,
                updated_at=now,
                status="open",
                **extra,
            )
        )
        return True
    values: dict[str, Any] = {"handoff_reason": reason, "updated_at": now}
    if row.status != "open":
        values.update(_REOPEN, handoff_at=now)
    values.update(extra)
    await conn.execute(update(INBOX).where(i.conversation_id == conversation_id).values(**values))
    return row.status != "open"


async def queue_entry(conn: AsyncConnection, conversation_id: int) -> dict[str, Any] | None:
    """The open inbox row's ``assignee_id`` and ``followup_email``, or ``None``."""
    i = INBOX.c
    query = select(i.assignee_id, i.followup_email).where(
        i.conversation_id == conversation_id, i.status == "open"
    )
    row = (await conn.execute(query)).one_or_none()
    return None if row is None else dict(row._mapping)


async def set_followup(conn: AsyncConnection, conversation_id: int, email: str) -> bool:
    """Send an agent's replies to ``email``; ``False`` if the row is not open."""
    i = INBOX.c
    result = await conn.execute(
        update(INBOX)
        .where(i.conversation_id == conversation_id, i.status == "open")
        .values(followup_email=email, updated_at=utcnow())
    )
    return result.rowcount == 1


async def withdraw(conn: AsyncConnection, conversation_id: int) -> bool:
    """Take an unclaimed conversation out of the queue and give it back to the bot.

    Returns:
        ``False`` if an agent claimed it meanwhile (it stays with them).
    """
    i, now = INBOX.c, utcnow()
    result = await conn.execute(
        update(INBOX)
        .where(i.conversation_id == conversation_id, i.status == "open", i.assignee_id.is_(None))
        .values(status="withdrawn", updated_at=now)  # not resolved: no resolution time
    )
    if result.rowcount != 1:
        return False
    await set_mode(conn, conversation_id, "bot")
    return True


async def claim(
    conn: AsyncConnection, conversation_id: int, agent_id: int
) -> tuple[bool, dict[str, Any] | None]:
    """Claim an open, unassigned conversation; return (won, the assignee)."""
    i, now = INBOX.c, utcnow()
    won = await conn.execute(
        update(INBOX)
        .where(i.conversation_id == conversation_id, i.assignee_id.is_(None), i.status == "open")
        .values(assignee_id=agent_id, claimed_at=now, updated_at=now)
    )
    query = (
        select(AGENTS.c.id, AGENTS.c.name)
        .join(INBOX, i.assignee_id == AGENTS.c.id)
        .where(i.conversation_id == conversation_id)
    )
    owner = (await conn.execute(query)).one_or_none()
    return won.rowcount == 1, None if owner is None else dict(owner._mapping)


async def assign(conn: AsyncConnection, conversation_id: int, agent_id: int) -> bool:
    """Give an open conversation to ``agent_id``; ``False`` if it is not open."""
    i, now = INBOX.c, utcnow()
    result = await conn.execute(
        update(INBOX)
        .where(i.conversation_id == conversation_id, i.status == "open")
        .values(assignee_id=agent_id, claimed_at=now, updated_at=now)
    )
    return result.rowcount == 1


async def first_reply(conn: AsyncConnection, conversation_id: int) -> datetime | None:
    """Record the first human reply; return the handoff time if this was it."""
    i, now = INBOX.c, utcnow()
    result = await conn.execute(
        update(INBOX)
        .where(i.conversation_id == conversation_id, i.first_human_reply_at.is_(None))
        .values(first_human_reply_at=now, updated_at=now)
        .returning(i.handoff_at)
    )
    value: datetime | None = result.scalar_one_or_none()
    return value


async def resolve(conn: AsyncConnection, conversation_id: int, csat: bool) -> datetime | None:
    """Resolve the open row and give the conversation back to the bot.

    Returns:
        The handoff time, or ``None`` if the row was not open.
    """
    i, now = INBOX.c, utcnow()
    values: dict[str, Any] = {"status": "resolved", "resolved_at": now, "updated_at": now}
    if csat:
        values["csat_requested_at"] = now
    result = await conn.execute(
        update(INBOX)
        .where(i.conversation_id == conversation_id, i.status == "open")
        .values(**values)
        .returning(i.handoff_at)
    )
    handoff_at: datetime | None = result.scalar_one_or_none()
    if handoff_at is not None:
        await set_mode(conn, conversation_id, "bot")
    return handoff_at


async def record_csat(conn: AsyncConnection, conversation_id: int, score: int) -> bool:
    """Store the customer's CSAT answer if one was asked for and not given yet."""
    i = INBOX.c
    result = await conn.execute(
        update(INBOX)
        .where(
            i.conversation_id == conversation_id,
            i.csat_requested_at.is_not(None),
            i.csat.is_(None),
        )
        .values(csat=score, updated_at=utcnow())
    )
    return result.rowcount == 1


def _summary_query() -> Any:
    c, i, m = CONVERSATIONS.c, INBOX.c, MESSAGES.c
    last = MESSAGES.alias("last_message")
    last_in = MESSAGES.alias("last_inbound")
    last_id = select(func.max(m.id)).where(m.conversation_id == c.id).scalar_subquery()
    last_in_id = (
        select(func.max(m.id)).where(m.conversation_id == c.id, m.direction == "in")
    ).scalar_subquery()
    return select(
        c.id,
        c.channel,
        c.external_id,
        c.sender,
        c.mode,
        i.status,
        i.handoff_reason,
        i.handoff_at,
        i.assignee_id,
        i.first_human_reply_at,
        i.resolved_at,
        i.csat,
        i.followup_email,
        AGENTS.c.name.label("assignee_name"),
        last.c.text.label("last_text"),
        last.c.direction.label("last_direction"),
        last.c.created_at.label("last_at"),
        last_in.c.metadata.label("customer_metadata"),
    ).select_from(
        CONVERSATIONS.outerjoin(INBOX, i.conversation_id == c.id)
        .outerjoin(AGENTS, AGENTS.c.id == i.assignee_id)
        .outerjoin(last, last.c.id == last_id)
        .outerjoin(last_in, last_in.c.id == last_in_id)
    )


def _search(q: str) -> Any:
    c, m = CONVERSATIONS.c, MESSAGES.c
    escaped = q.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    pattern = f"%{escaped}%"
    in_messages = exists().where(
        m.conversation_id == c.id,
        or_(
            func.lower(m.text).like(pattern, escape="\\"),
            func.lower(cast(m.metadata, String)).like(pattern, escape="\\"),
        ),
    )
    return or_(
        func.lower(c.sender).like(pattern, escape="\\"),
        func.lower(c.external_id).like(pattern, escape="\\"),
        in_messages,
    )


async def summaries(
    conn: AsyncConnection, view: str, agent_id: int, q: str | None = None, limit: int = 200
) -> list[dict[str, Any]]:
    """Return the rows of one inbox view (see :data:`VIEWS`), in queue order."""
    c, i = CONVERSATIONS.c, INBOX.c
    query = _summary_query()
    if view == "resolved":
        query = query.where(i.status == "resolved").order_by(i.resolved_at.desc())
    else:
        query = query.where(i.status == "open").order_by(i.handoff_at, c.id)
    if view == "needs_human":
        query = query.where(c.mode == "human", i.assignee_id.is_(None))
    elif view == "mine":
        query = query.where(i.assignee_id == agent_id)
    if q:
        query = query.where(_search(q))
    return [dict(r._mapping) for r in await conn.execute(query.limit(limit))]


async def summary(conn: AsyncConnection, conversation_id: int) -> dict[str, Any] | None:
    """Return one conversation's summary row (with or without an inbox row)."""
    query = _summary_query().where(CONVERSATIONS.c.id == conversation_id)
    row = (await conn.execute(query)).one_or_none()
    return None if row is None else dict(row._mapping)


async def conversation_id(conn: AsyncConnection, channel: str, external_id: str) -> int | None:
    """Return the store id of a channel's conversation, or ``None``."""
    c = CONVERSATIONS.c
    query = select(c.id).where(c.channel == channel, c.external_id == external_id)
    return (await conn.execute(query)).scalar_one_or_none()


async def unnotified(conn: AsyncConnection, handed_off_before: datetime | None) -> list[int]:
    """Return open, unclaimed conversations whose customer was not told when to expect us."""
    i = INBOX.c
    query = select(i.conversation_id).where(
        i.status == "open", i.assignee_id.is_(None), i.notified_at.is_(None)
    )
    if handed_off_before is not None:
        query = query.where(i.handoff_at <= handed_off_before)
    return [int(v) for v in (await conn.execute(query.order_by(i.handoff_at))).scalars()]


async def mark_notified(conn: AsyncConnection, conversation_id: int) -> bool:
    """Mark the customer told; ``False`` if someone (another replica) did it already."""
    i = INBOX.c
    result = await conn.execute(
        update(INBOX)
        .where(i.conversation_id == conversation_id, i.notified_at.is_(None))
        .values(notified_at=utcnow())
    )
    return result.rowcount == 1


async def stats_rows(conn: AsyncConnection) -> dict[str, list[dict[str, Any]]]:
    """Return the raw rows the stats endpoint aggregates: turns and inbox rows."""
    t, i = TURNS.c, INBOX.c
    turns = select(t.conversation_id, t.route, t.cost_usd, t.created_at)
    inbox = select(
        i.conversation_id,
        i.status,
        i.handoff_reason,
        i.handoff_at,
        i.first_human_reply_at,
        i.resolved_at,
        i.csat,
    )
    return {
        "turns": [dict(r._mapping) for r in await conn.execute(turns)],
        "inbox": [dict(r._mapping) for r in await conn.execute(inbox)],
    }
