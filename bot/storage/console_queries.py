"""Statements of the agent console: agents, sessions, throttling, notes, canned, audit.

The inbox itself (handoffs, claims, summaries, stats) is in
:mod:`bot.storage.inbox_queries`. Rows leave as plain dicts.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import Table, delete, func, or_, select, update

from bot.storage.models import (
    Agent,
    AgentSession,
    AuditEntry,
    CannedResponse,
    LoginFailure,
    Note,
    utcnow,
)

if TYPE_CHECKING:
    from datetime import datetime

    from sqlalchemy.ext.asyncio import AsyncConnection

AGENTS: Table = Agent.__table__  # type: ignore[assignment]
SESSIONS: Table = AgentSession.__table__  # type: ignore[assignment]
FAILURES: Table = LoginFailure.__table__  # type: ignore[assignment]
NOTES: Table = Note.__table__  # type: ignore[assignment]
CANNED: Table = CannedResponse.__table__  # type: ignore[assignment]
AUDIT: Table = AuditEntry.__table__  # type: ignore[assignment]
_AGENT_COLUMNS = ("id", "email", "name", "role", "presence", "disabled", "created_at")


def _agent_query() -> Any:
    return select(*(AGENTS.c[name] for name in _AGENT_COLUMNS))


async def create_agent(
    conn: AsyncConnection, email: str, name: str, role: str, password_hash: str
) -> dict[str, Any]:
    """Insert an agent (email lowercased); return its public columns."""
    insert = AGENTS.insert().values(
        email=email.strip().lower(),
        name=name,
        role=role,
        password_hash=password_hash,
        presence="away",
        disabled=False,
    )
    new_id = (await conn.execute(insert.returning(AGENTS.c.id))).scalar_one()
    agent = await agent_by_id(conn, int(new_id))
    assert agent is not None
    return agent


async def agent_by_id(conn: AsyncConnection, agent_id: int) -> dict[str, Any] | None:
    """Return an agent's public columns, or ``None``."""
    row = (await conn.execute(_agent_query().where(AGENTS.c.id == agent_id))).one_or_none()
    return None if row is None else dict(row._mapping)


async def login_record(conn: AsyncConnection, email: str) -> dict[str, Any] | None:
    """Return an agent's columns with ``password_hash``, by (lowercased) email."""
    query = _agent_query().add_columns(AGENTS.c.password_hash)
    row = (await conn.execute(query.where(AGENTS.c.email == email.strip().lower()))).one_or_none()
    return None if row is None else dict(row._mapping)


async def list_agents(conn: AsyncConnection) -> list[dict[str, Any]]:
    """Return every agent's public columns, by id."""
    return [dict(r._mapping) for r in await conn.execute(_agent_query().order_by(AGENTS.c.id))]


async def update_agent(
    conn: AsyncConnection, agent_id: int, values: dict[str, Any]
) -> dict[str, Any] | None:
    """Change an agent's ``name``, ``role``, ``disabled``, ``presence`` or hash."""
    if values:
        await conn.execute(update(AGENTS).where(AGENTS.c.id == agent_id).values(**values))
    if values.get("disabled"):
        await conn.execute(delete(SESSIONS).where(SESSIONS.c.agent_id == agent_id))
    return await agent_by_id(conn, agent_id)


async def disable_agent(conn: AsyncConnection, email: str) -> bool:
    """Disable the agent with ``email`` and end its sessions; ``False`` if unknown."""
    agent = await login_record(conn, email)
    if agent is None:
        return False
    await update_agent(conn, int(agent["id"]), {"disabled": True})
    return True


async def create_session(
    conn: AsyncConnection, token_hash: str, agent_id: int, csrf: str, expires_at: datetime
) -> None:
    """Store a new login session."""
    await conn.execute(
        SESSIONS.insert().values(
            token_hash=token_hash, agent_id=agent_id, csrf_token=csrf, expires_at=expires_at
        )
    )


async def session_agent(
    conn: AsyncConnection, token_hash: str, now: datetime
) -> tuple[dict[str, Any], str] | None:
    """Return the session's (enabled) agent and CSRF token, touching ``last_seen_at``."""
    s = SESSIONS.c
    query = (
        _agent_query()
        .add_columns(s.csrf_token)
        .join(SESSIONS, s.agent_id == AGENTS.c.id)
        .where(s.token_hash == token_hash, s.expires_at > now, AGENTS.c.disabled.is_(False))
    )
    row = (await conn.execute(query)).one_or_none()
    if row is None:
        return None
    await conn.execute(update(SESSIONS).where(s.token_hash == token_hash).values(last_seen_at=now))
    data = dict(row._mapping)
    return data, str(data.pop("csrf_token"))


async def live_sessions(conn: AsyncConnection, token_hashes: list[str], now: datetime) -> set[str]:
    """Return those of ``token_hashes`` that are unexpired sessions of enabled agents.

    Read only (unlike :func:`session_agent`), for the console sockets' checks.
    """
    if not token_hashes:
        return set()
    s = SESSIONS.c
    query = (
        select(s.token_hash)
        .select_from(SESSIONS.join(AGENTS, s.agent_id == AGENTS.c.id))
        .where(s.token_hash.in_(token_hashes), s.expires_at > now, AGENTS.c.disabled.is_(False))
    )
    return {str(row.token_hash) for row in await conn.execute(query)}


async def delete_session(conn: AsyncConnection, token_hash: str) -> None:
    """End one session."""
    await conn.execute(delete(SESSIONS).where(SESSIONS.c.token_hash == token_hash))


async def add_login_failure(conn: AsyncConnection, email: str, ip: str) -> None:
    """Count a failed login of ``email`` from ``ip``."""
    await conn.execute(FAILURES.insert().values(email=email.strip().lower()[:255], ip=ip[:64]))


async def login_failures(
    conn: AsyncConnection, email: str, ip: str, since: datetime
) -> tuple[list[datetime], list[datetime]]:
    """Return the times of failures since ``since``: for ``email``, and from ``ip``."""
    f = FAILURES.c
    query = select(f.email, f.ip, f.at).where(
        f.at >= since, or_(f.email == email.strip().lower(), f.ip == ip)
    )
    rows = list(await conn.execute(query.order_by(f.at)))
    by_email = [r.at for r in rows if r.email == email.strip().lower()]
    return by_email, [r.at for r in rows if r.ip == ip]


async def recent_login_failures(
    conn: AsyncConnection, email: str, ip: str, since: datetime
) -> list[tuple[str, str, datetime]]:
    """Return the (email, ip, at) of failures since ``since`` for ``email`` or from ``ip``."""
    f = FAILURES.c
    query = select(f.email, f.ip, f.at).where(
        f.at >= since, or_(f.email == email.strip().lower(), f.ip == ip)
    )
    return [(r.email, r.ip, r.at) for r in await conn.execute(query.order_by(f.at))]


async def clear_login_failures(conn: AsyncConnection, email: str, ip: str | None = None) -> None:
    """Forget an email's failures after it logged in (only those from ``ip`` if given)."""
    where = [FAILURES.c.email == email.strip().lower()]
    if ip is not None:
        where.append(FAILURES.c.ip == ip)
    await conn.execute(delete(FAILURES).where(*where))


async def add_note(
    conn: AsyncConnection, conversation_id: int, agent_id: int, text: str
) -> dict[str, Any]:
    """Store a private note; return it with its author."""
    insert = NOTES.insert().values(conversation_id=conversation_id, agent_id=agent_id, text=text)
    note_id = (await conn.execute(insert.returning(NOTES.c.id))).scalar_one()
    return (await notes(conn, conversation_id, int(note_id)))[0]


async def notes(
    conn: AsyncConnection, conversation_id: int, note_id: int | None = None
) -> list[dict[str, Any]]:
    """Return a conversation's notes (or one), oldest first, with the author's name."""
    n = NOTES.c
    query = (
        select(n.id, n.text, n.created_at, n.agent_id, AGENTS.c.name.label("agent_name"))
        .join(AGENTS, AGENTS.c.id == n.agent_id)
        .where(n.conversation_id == conversation_id)
    )
    if note_id is not None:
        query = query.where(n.id == note_id)
    return [dict(r._mapping) for r in await conn.execute(query.order_by(n.id))]


async def canned(conn: AsyncConnection, canned_id: int | None = None) -> list[dict[str, Any]]:
    """Return the canned responses (or one), by shortcut."""
    query = select(CANNED)
    if canned_id is not None:
        query = query.where(CANNED.c.id == canned_id)
    return [dict(r._mapping) for r in await conn.execute(query.order_by(CANNED.c.shortcut))]


async def add_canned(
    conn: AsyncConnection, shortcut: str, title: str, text: str
) -> dict[str, Any] | None:
    """Insert a canned response; ``None`` if the shortcut is taken."""
    taken = await conn.execute(select(CANNED.c.id).where(CANNED.c.shortcut == shortcut))
    if taken.first() is not None:
        return None
    insert = CANNED.insert().values(shortcut=shortcut, title=title, text=text)
    new_id = (await conn.execute(insert.returning(CANNED.c.id))).scalar_one()
    return (await canned(conn, int(new_id)))[0]


async def delete_canned(conn: AsyncConnection, canned_id: int) -> bool:
    """Delete a canned response; ``False`` if there was none."""
    result = await conn.execute(delete(CANNED).where(CANNED.c.id == canned_id))
    return bool(result.rowcount)


async def audit(
    conn: AsyncConnection,
    agent_id: int | None,
    action: str,
    conversation_id: int | None = None,
    detail: dict[str, Any] | None = None,
) -> None:
    """Append one row to the audit log."""
    await conn.execute(
        AUDIT.insert().values(
            agent_id=agent_id,
            action=action,
            conversation_id=conversation_id,
            detail=dict(detail or {}),
            at=utcnow(),
        )
    )


async def audit_entries(conn: AsyncConnection, limit: int) -> list[dict[str, Any]]:
    """Return the newest ``limit`` audit rows, newest first, with agent names."""
    a = AUDIT.c
    query = (
        select(a.id, a.agent_id, a.action, a.conversation_id, a.detail, a.at, AGENTS.c.name)
        .outerjoin(AGENTS, AGENTS.c.id == a.agent_id)
        .order_by(a.id.desc())
        .limit(limit)
    )
    return [dict(r._mapping) for r in await conn.execute(query)]


async def count_agents(conn: AsyncConnection) -> int:
    """How many agents exist."""
    return int((await conn.execute(select(func.count()).select_from(AGENTS))).scalar_one())


async def staffing(conn: AsyncConnection) -> tuple[int, int]:
    """How many agents are enabled, and how many of them are online."""
    a = AGENTS.c
    query = select(func.count(), func.count().filter(a.presence == "online")).where(
        a.disabled.is_(False)
    )
    enabled, online = (await conn.execute(query)).one()
    return int(enabled), int(online)
