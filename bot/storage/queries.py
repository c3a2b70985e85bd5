"""The statements behind :class:`bot.storage.store.Store`, one function per call.

Each function runs inside a transaction that the store opens, retries and
translates errors for; here there is only SQL. Rows leave as plain records.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import Table, func, select, update
from sqlalchemy.dialects import postgresql, sqlite

from bot.errors import StorageError
from bot.storage import statements as st
from bot.storage.models import utcnow
from bot.storage.outbox_queries import Claim, outbound_row
from bot.storage.records import ConversationRow, StoredMessage, TurnRecord
from bot.storage.statements import CONVERSATIONS, EVENTS, MESSAGES, TURNS

if TYPE_CHECKING:
    from collections.abc import Sequence

    from sqlalchemy import ColumnElement, Row
    from sqlalchemy.ext.asyncio import AsyncConnection

__all__ = ["CONVERSATIONS", "EVENTS", "MESSAGES", "TURNS"]


def dialect_insert(conn: AsyncConnection, table: Table) -> Any:
    """Return the dialect's INSERT, which knows ``ON CONFLICT``."""
    if conn.dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


def conversation_row(row: Row[Any]) -> ConversationRow:
    """The record of a ``conversations`` row."""
    c = row._mapping
    return ConversationRow(
        id=c["id"],
        channel=c["channel"],
        external_id=c["external_id"],
        sender=c["sender"],
        mode=c["mode"],
        metadata=dict(c["metadata"] or {}),
        created_at=c["created_at"],
        updated_at=c["updated_at"],
    )


async def _find_conversation(
    conn: AsyncConnection, channel: str, external_id: str, sender: str, create: bool
) -> Row[Any] | None:
    """The conversation's row; a new one is created first if ``create`` (else ``None``).

    ``INSERT ... ON CONFLICT DO NOTHING`` then ``SELECT`` makes concurrent
    creators agree on one row.
    """
    key = {"p_channel": channel, "p_external_id": external_id}
    row = (await conn.execute(st.CONVERSATION_BY_KEY, key)).one_or_none()
    if row is not None or not create:
        return row
    insert = dialect_insert(conn, CONVERSATIONS).values(
        channel=channel, external_id=external_id, sender=sender, mode="bot", metadata={}
    )
    await conn.execute(insert.on_conflict_do_nothing(index_elements=["channel", "external_id"]))
    return (await conn.execute(st.CONVERSATION_BY_KEY, key)).one()


async def get_or_create_conversation(
    conn: AsyncConnection, channel: str, external_id: str, sender: str
) -> ConversationRow:
    """Return the conversation, creating it first when it is new (race-safe)."""
    row = await _find_conversation(conn, channel, external_id, sender, create=True)
    assert row is not None  # created
    return conversation_row(row)


async def conversation_by_id(conn: AsyncConnection, conversation_id: int) -> ConversationRow | None:
    """Return the conversation with the store id, or ``None``."""
    query = select(CONVERSATIONS).where(CONVERSATIONS.c.id == conversation_id)
    row = (await conn.execute(query)).one_or_none()
    return None if row is None else conversation_row(row)


async def record_inbound(
    conn: AsyncConnection,
    conversation_id: int,
    channel: str,
    external_id: str | None,
    text: str,
    metadata: dict[str, Any],
) -> tuple[int, bool]:
    """Store an inbound message once per ``(conversation_id, external_id)``."""
    row = {
        "conversation_id": conversation_id,
        "channel": channel,
        "direction": "in",
        "external_id": external_id,
        "text": text,
        "buttons": [],
        "metadata": metadata,
        "status": "pending",
    }
    new_id = (await conn.execute(st.insert_inbound(conn), row)).scalar_one_or_none()
    if new_id is not None:
        return new_id, True
    key = {"p_conversation_id": conversation_id, "p_external_id": external_id}
    return (await conn.execute(st.INBOUND_ID, key)).scalar_one(), False


async def receive(
    conn: AsyncConnection,
    channel: str,
    external_id: str,
    sender: str,
    message_id: str | None,
    text: str,
    metadata: dict[str, Any],
    create: bool = True,
) -> tuple[ConversationRow, int, bool, tuple[str, str, dict[str, Any] | None]] | None:
    """Store the inbound message and read what its turn needs.

    The conversation is created when it is new, unless ``create`` is false:
    then the result is ``None`` and nothing is written. Each statement is
    atomic on its own (see :meth:`Store.receive`). Returns the conversation,
    the message id, whether it is new, and :func:`turn_context`'s reading.
    """
    row = await _find_conversation(conn, channel, external_id, sender, create)
    if row is None:
        return None
    conversation = conversation_row(row)
    inbound_id, created = await record_inbound(
        conn, conversation.id, channel, message_id, text, metadata
    )
    if not created:  # a retried delivery: its status and the state are read anew
        return conversation, inbound_id, False, await turn_context(conn, inbound_id)
    state = None if row.state is None else dict(row.state)
    return conversation, inbound_id, True, ("pending", conversation.mode, state)


async def turn_context(
    conn: AsyncConnection, inbound_id: int
) -> tuple[str, str, dict[str, Any] | None]:
    """Return the inbound message's status, its conversation's mode and state."""
    context, _, _ = await turn_input(conn, inbound_id)
    return context


async def turn_input(
    conn: AsyncConnection, inbound_id: int
) -> tuple[tuple[str, str, dict[str, Any] | None], str, dict[str, Any]]:
    """Return :func:`turn_context`'s reading plus the message's text and metadata.

    One statement: what a turn needs to start, read under its lock.
    """
    row = (await conn.execute(st.TURN_INPUT, {"p_inbound_id": inbound_id})).one_or_none()
    if row is None:
        raise StorageError(f"Inbound message {inbound_id} does not exist.")
    state = None if row.state is None else dict(row.state)
    return (str(row.status), str(row.mode), state), str(row.text), dict(row.metadata or {})


async def select_messages(
    conn: AsyncConnection, *where: ColumnElement[bool]
) -> list[StoredMessage]:
    """Return the messages matching ``where``, oldest first."""
    m, c = MESSAGES.c, CONVERSATIONS.c
    query = (
        select(MESSAGES, c.external_id.label("conversation_external_id"))
        .join(CONVERSATIONS, m.conversation_id == c.id)
        .where(*where)
        .order_by(m.id)
    )
    return [_stored_message(row) for row in await conn.execute(query)]


def _stored_message(row: Row[Any]) -> StoredMessage:
    r = row._mapping
    return StoredMessage(
        id=r["id"],
        conversation_id=r["conversation_id"],
        conversation_external_id=r["conversation_external_id"],
        channel=r["channel"],
        direction=r["direction"],
        external_id=r["external_id"],
        text=r["text"],
        buttons=list(r["buttons"] or []),
        metadata=dict(r["metadata"] or {}),
        status=r["status"],
        in_reply_to=r["in_reply_to"],
        created_at=r["created_at"],
    )


async def inbound_status(conn: AsyncConnection, inbound_id: int) -> str:
    """Return ``pending`` or ``processed`` for an inbound message."""
    m = MESSAGES.c
    query = select(m.status).where(m.id == inbound_id, m.direction == "in")
    status = (await conn.execute(query)).scalar_one_or_none()
    if status is None:
        raise StorageError(f"Inbound message {inbound_id} does not exist.")
    return str(status)


async def load_state(conn: AsyncConnection, conversation_id: int) -> dict[str, Any] | None:
    """Return the stored dialogue state, or ``None`` before the first turn."""
    query = select(CONVERSATIONS.c.state).where(CONVERSATIONS.c.id == conversation_id)
    state = (await conn.execute(query)).scalar_one_or_none()
    return None if state is None else dict(state)


async def commit_turn(conn: AsyncConnection, turn: TurnRecord, claim: Claim | None) -> list[int]:
    """Write everything a turn produced; the caller's transaction makes it atomic.

    The inbound message is claimed first (``pending`` -> ``processed``), so a
    turn for a message that was answered already writes nothing. Five
    statements whatever the turn holds: the claim, the state (which also
    reads the last event number), the turn row, the replies and the events.
    """
    params = {"p_inbound_id": turn.inbound_id, "p_conversation_id": turn.conversation_id}
    if (await conn.execute(st.CLAIM_INBOUND, params)).rowcount != 1:
        raise StorageError(
            f"Inbound message {turn.inbound_id} of conversation {turn.conversation_id} is not "
            "pending; the turn was not committed."
        )
    state = {"p_conversation_id": turn.conversation_id, "p_state": turn.state, "p_now": utcnow()}
    channel, last = (await conn.execute(st.UPDATE_STATE, state)).one()
    turn_id = await _insert_turn(conn, turn)
    status = "delivered" if turn.delivered else "pending"
    rows = [
        outbound_row(turn.conversation_id, channel, r, turn.inbound_id, status, claim)
        for r in turn.replies
    ]
    ids: list[int] = []
    if rows:
        ids = [int(i) for i in (await conn.execute(st.INSERT_MESSAGES, rows)).scalars()]
    await _insert_events(conn, turn.conversation_id, turn_id, turn.events, int(last))
    return ids


async def _insert_turn(conn: AsyncConnection, turn: TurnRecord) -> int:
    row = {"conversation_id": turn.conversation_id, "inbound_message_id": turn.inbound_id}
    row.update({name: getattr(turn, name) for name in st.TURN_COLUMNS})
    return int((await conn.execute(st.INSERT_TURN, row)).scalar_one())


async def _insert_events(
    conn: AsyncConnection,
    conversation_id: int,
    turn_id: int | None,
    events: Sequence[dict[str, Any]],
    last: int,
) -> None:
    if not events:
        return
    rows = [
        {
            "conversation_id": conversation_id,
            "turn_id": turn_id,
            "seq": last + offset,
            "type": kind,
            "data": data,
        }
        for offset, (kind, data) in enumerate(map(st.event_columns, events), start=1)
    ]
    await conn.execute(st.INSERT_EVENTS, rows)


async def events(
    conn: AsyncConnection, conversation_id: int, limit: int | None = None
) -> list[dict[str, Any]]:
    """Return the conversation's events in order (the last ``limit`` ones when given)."""
    if limit is None:
        e = EVENTS.c
        query = select(e.type, e.data).where(e.conversation_id == conversation_id)
        rows = list(await conn.execute(query.order_by(e.seq)))
    else:
        params = {"p_conversation_id": conversation_id, "p_limit": limit}
        rows = list(await conn.execute(st.LAST_EVENTS, params))[::-1]
    return [{"event": row.type, **(row.data or {})} for row in rows]


async def set_mode(conn: AsyncConnection, conversation_id: int, mode: str) -> None:
    """Switch a conversation between the bot and a human agent."""
    c = CONVERSATIONS.c
    result = await conn.execute(
        update(CONVERSATIONS).where(c.id == conversation_id).values(mode=mode, updated_at=utcnow())
    )
    if result.rowcount != 1:
        raise StorageError(f"Conversation {conversation_id} does not exist.")


async def route_counts(conn: AsyncConnection) -> dict[str, int]:
    """Count the turns per route."""
    query = select(TURNS.c.route, func.count()).group_by(TURNS.c.route)
    return {route: int(count) for route, count in await conn.execute(query)}


async def turns(conn: AsyncConnection, conversation_id: int) -> list[dict[str, Any]]:
    """Return a conversation's turns, oldest first, as dicts of their columns."""
    query = select(TURNS).where(TURNS.c.conversation_id == conversation_id).order_by(TURNS.c.id)
    return [dict(row._mapping) for row in await conn.execute(query)]
