"""A turn's writes on PostgreSQL in one statement each, so one round trip each.

PostgreSQL runs data-modifying CTEs (``WITH ... UPDATE/INSERT ... RETURNING``)
as one statement, atomic without a transaction around it. SQLite has no such
CTEs and keeps the plain statements of :mod:`bot.storage.queries`; the store
picks by dialect, and its tests run both.

**Receiving** into a known conversation is one statement instead of two:
``conv`` finds the conversation, ``ins`` stores the message in it unless its
channel id was stored before (``ON CONFLICT DO NOTHING``).

**Committing** a turn is one statement instead of five inside
``BEGIN``/``COMMIT`` (seven round trips, about a fifth of a flow turn's CPU):

- ``claimed`` marks the inbound message processed if it was pending;
- ``st`` stores the new state only if ``claimed`` did (so an answered
  message writes nothing) and reads the channel and the last event number;
- ``turn`` inserts the turn row, ``replies`` the outbound messages and
  ``ev`` the events, each selecting from ``st`` so they too need the claim.

The commit is built once per shape (number of replies and of events). It
returns no row when the message was not pending.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

from sqlalchemy import bindparam, exists, func, insert, literal, select, true, union_all, update
from sqlalchemy.dialects import postgresql

from bot.errors import StorageError
from bot.storage import queries
from bot.storage.models import utcnow
from bot.storage.outbox_queries import outbound_row
from bot.storage.records import ConversationRow
from bot.storage.statements import (
    CONVERSATIONS,
    EVENTS,
    INBOUND_ID,
    MESSAGES,
    TURN_COLUMNS,
    TURNS,
    event_columns,
    last_seq,
)

if TYPE_CHECKING:
    from sqlalchemy import Column
    from sqlalchemy.ext.asyncio import AsyncConnection

    from bot.storage.outbox_queries import Claim
    from bot.storage.records import TurnRecord

Reading = tuple[ConversationRow, int, bool, tuple[str, str, dict[str, Any] | None]]

_REPLY_HEAD = ("conversation_id", "channel", "direction", "in_reply_to", "created_at")
_REPLY_COLUMNS = ("text", "buttons", "metadata", "status", "claimed_by", "claimed_until")


def _param(name: str, column: Column[Any]) -> Any:
    return bindparam(name, type_=column.type)


@functools.lru_cache(maxsize=64)
def commit_statement(replies: int, events: int) -> Any:
    """The one-statement commit of a turn with ``replies`` replies and ``events`` events."""
    m, c, t, e = MESSAGES.c, CONVERSATIONS.c, TURNS.c, EVENTS.c
    conversation, inbound, now = (
        _param("p_conversation_id", c.id),
        _param("p_inbound_id", m.id),
        _param("p_now", m.created_at),
    )
    claimed = (
        update(MESSAGES)
        .where(m.id == inbound, m.conversation_id == conversation, m.direction == "in")
        .where(m.status == "pending")
        .values(status="processed")
        .returning(m.id)
        .cte("claimed")
    )
    st = (
        update(CONVERSATIONS)
        .where(c.id == conversation, exists(select(claimed.c.id)))
        .values(state=_param("p_state", c.state), updated_at=now)
        .returning(c.channel, last_seq(conversation).label("last"))
        .cte("st")
    )
    turn_values = [conversation, inbound, now]
    turn_values += [_param(f"t_{name}", t[name]) for name in TURN_COLUMNS]
    turn = (
        insert(TURNS)
        .from_select(
            ["conversation_id", "inbound_message_id", "created_at", *TURN_COLUMNS],
            select(*turn_values).select_from(st),
        )
        .returning(t.id)
        .cte("turn")
    )
    out: list[Any] = [st.c.channel, turn.c.id]
    statement_ctes: list[Any] = []
    if replies:
        rows = [
            select(
                conversation,
                st.c.channel,
                literal("out"),
                inbound,
                now,
                *[_param(f"r{i}_{name}", m[name]) for name in _REPLY_COLUMNS],
            ).select_from(st)
            for i in range(replies)
        ]
        written = (
            insert(MESSAGES)
            .from_select(
                [*_REPLY_HEAD, *_REPLY_COLUMNS],
                union_all(*rows) if replies > 1 else rows[0],
            )
            .returning(m.id)
            .cte("replies")
        )
        out.append(select(func.array_agg(written.c.id)).scalar_subquery())
    if events:
        rows = [
            select(
                conversation,
                turn.c.id,
                st.c.last + (k + 1),
                _param(f"e{k}_type", e.type),
                _param(f"e{k}_data", e.data),
                now,
            ).select_from(turn.join(st, true()))
            for k in range(events)
        ]
        statement_ctes.append(
            insert(EVENTS)
            .from_select(
                ["conversation_id", "turn_id", "seq", "type", "data", "created_at"],
                union_all(*rows) if events > 1 else rows[0],
            )
            .cte("ev")
        )
    statement = select(*out).select_from(st.join(turn, true()))
    for cte in statement_ctes:  # never referenced, so added by hand
        statement = statement.add_cte(cte)
    return statement


def commit_parameters(turn: TurnRecord, claim: Claim | None) -> dict[str, Any]:
    """The bind parameters of :func:`commit_statement` for ``turn``."""
    now = utcnow()
    params: dict[str, Any] = {
        "p_conversation_id": turn.conversation_id,
        "p_inbound_id": turn.inbound_id,
        "p_now": now,
        "p_state": turn.state,
    }
    params.update({f"t_{name}": getattr(turn, name) for name in TURN_COLUMNS})
    status = "delivered" if turn.delivered else "pending"
    for i, reply in enumerate(turn.replies):
        row = outbound_row(turn.conversation_id, "", reply, turn.inbound_id, status, claim)
        params.update({f"r{i}_{name}": row[name] for name in _REPLY_COLUMNS})
    for k, event in enumerate(turn.events):
        params[f"e{k}_type"], params[f"e{k}_data"] = event_columns(event)
    return params


async def commit_turn(conn: AsyncConnection, turn: TurnRecord, claim: Claim | None) -> list[int]:
    """Write everything a turn produced in one statement; return the reply ids in order.

    Raises:
        StorageError: The inbound message is not pending; nothing was written.
    """
    statement = commit_statement(len(turn.replies), len(turn.events))
    row = (await conn.execute(statement, commit_parameters(turn, claim))).one_or_none()
    if row is None:
        raise StorageError(
            f"Inbound message {turn.inbound_id} of conversation {turn.conversation_id} is not "
            "pending; the turn was not committed."
        )
    # The replies are inserted in the order given, and their serial ids grow in
    # that order, so sorting them restores it (as SQLAlchemy's own
    # sort_by_parameter_order does for a serial key).
    return sorted(int(i) for i in row[2]) if turn.replies else []


def _receive_statement() -> Any:
    m, c = MESSAGES.c, CONVERSATIONS.c
    channel = _param("p_channel", m.channel)
    conv = (
        select(CONVERSATIONS)
        .where(c.channel == channel, c.external_id == _param("p_external_id", c.external_id))
        .cte("conv")
    )
    values = [
        conv.c.id,
        channel,
        literal("in"),
        _param("p_message_id", m.external_id),
        _param("p_text", m.text),
        _param("p_buttons", m.buttons),
        _param("p_metadata", m.metadata),
        literal("pending"),
        _param("p_now", m.created_at),
    ]
    columns = ["conversation_id", "channel", "direction", "external_id", "text"]
    columns += ["buttons", "metadata", "status", "created_at"]
    ins = (
        postgresql.insert(MESSAGES)
        .from_select(columns, select(*values).select_from(conv))
        .on_conflict_do_nothing(index_elements=["conversation_id", "direction", "external_id"])
        .returning(m.id)
        .cte("ins")
    )
    return select(conv, ins.c.id.label("inbound_id")).select_from(conv.outerjoin(ins, true()))


#: The conversation of ``(p_channel, p_external_id)`` with message ``p_message_id``
#: stored in it; ``inbound_id`` is null when that message was stored before.
RECEIVE = _receive_statement()


async def receive(
    conn: AsyncConnection,
    channel: str,
    external_id: str,
    message_id: str | None,
    text: str,
    metadata: dict[str, Any],
) -> Reading | None:
    """Store an inbound message in a known conversation; ``None`` if it is not known.

    Returns what :func:`bot.storage.queries.receive` does.
    """
    params: dict[str, Any] = {
        "p_channel": channel,
        "p_external_id": external_id,
        "p_message_id": message_id,
        "p_text": text,
        "p_buttons": [],
        "p_metadata": metadata,
        "p_now": utcnow(),
    }
    row = (await conn.execute(RECEIVE, params)).one_or_none()
    if row is None:
        return None
    conversation = queries.conversation_row(row)
    if row.inbound_id is not None:
        state = None if row.state is None else dict(row.state)
        return conversation, int(row.inbound_id), True, ("pending", conversation.mode, state)
    # A retried delivery: its id, status and the state are read anew.
    key = {"p_conversation_id": conversation.id, "p_external_id": message_id}
    inbound_id = int((await conn.execute(INBOUND_ID, key)).scalar_one())
    return conversation, inbound_id, False, await queries.turn_context(conn, inbound_id)
