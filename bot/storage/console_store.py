"""The agent console's calls on the store, each one transaction.

:class:`ConsoleStore` wraps a started :class:`bot.storage.store.Store` and
runs the statements of :mod:`bot.storage.console_queries` and
:mod:`bot.storage.inbox_queries` with the store's retries and error
translation, keeping ``store.py`` small.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any, TypeVar

from bot.storage import console_queries as cq
from bot.storage import inbox_queries as iq

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable
    from datetime import datetime

    from sqlalchemy.ext.asyncio import AsyncConnection

    from bot.storage.store import Store

_T = TypeVar("_T")
Row = dict[str, Any]


class ConsoleStore:
    """Console persistence over one store.

    Args:
        store: A started store (migrated to revision 0003 or later).
    """

    def __init__(self, store: Store) -> None:
        self.store = store

    async def _call(self, fn: Callable[..., Awaitable[_T]], **kwargs: Any) -> _T:
        op: Callable[[AsyncConnection], Awaitable[_T]] = functools.partial(fn, **kwargs)
        return await self.store.run(fn.__name__, op)

    # Agents and sessions.
    async def create_agent(self, email: str, name: str, role: str, password_hash: str) -> Row:
        """Create an agent; raises ``StorageError`` if the email is taken."""
        return await self._call(
            cq.create_agent, email=email, name=name, role=role, password_hash=password_hash
        )

    async def agent(self, agent_id: int) -> Row | None:
        """Return an agent's public columns."""
        return await self._call(cq.agent_by_id, agent_id=agent_id)

    async def login_record(self, email: str) -> Row | None:
        """Return an agent's columns including the password hash."""
        return await self._call(cq.login_record, email=email)

    async def agents(self) -> list[Row]:
        """Return every agent."""
        return await self._call(cq.list_agents)

    async def update_agent(self, agent_id: int, values: dict[str, Any]) -> Row | None:
        """Change an agent; disabling ends its sessions."""
        return await self._call(cq.update_agent, agent_id=agent_id, values=values)

    async def disable_agent(self, email: str) -> bool:
        """Disable an agent by email."""
        return await self._call(cq.disable_agent, email=email)

    async def create_session(
        self, token_hash: str, agent_id: int, csrf: str, expires_at: datetime
    ) -> None:
        """Store a login session."""
        await self._call(
            cq.create_session,
            token_hash=token_hash,
            agent_id=agent_id,
            csrf=csrf,
            expires_at=expires_at,
        )

    async def session_agent(self, token_hash: str, now: datetime) -> tuple[Row, str] | None:
        """Return the agent and CSRF token of a live session."""
        return await self._call(cq.session_agent, token_hash=token_hash, now=now)

    async def live_sessions(self, token_hashes: list[str], now: datetime) -> set[str]:
        """Return which of the sessions are still live (unexpired, agent enabled)."""
        return await self._call(cq.live_sessions, token_hashes=token_hashes, now=now)

    async def delete_session(self, token_hash: str) -> None:
        """End a session."""
        await self._call(cq.delete_session, token_hash=token_hash)

    async def add_login_failure(self, email: str, ip: str) -> None:
        """Count a failed login."""
        await self._call(cq.add_login_failure, email=email, ip=ip)

    async def login_failures(
        self, email: str, ip: str, since: datetime
    ) -> tuple[list[datetime], list[datetime]]:
        """Return recent failure times by email and by IP."""
        return await self._call(cq.login_failures, email=email, ip=ip, since=since)

    async def recent_login_failures(
        self, email: str, ip: str, since: datetime
    ) -> list[tuple[str, str, datetime]]:
        """Return the (email, ip, at) of recent failures for ``email`` or from ``ip``."""
        return await self._call(cq.recent_login_failures, email=email, ip=ip, since=since)

    async def clear_login_failures(self, email: str, ip: str | None = None) -> None:
        """Forget an email's failures (only those from ``ip`` if given)."""
        await self._call(cq.clear_login_failures, email=email, ip=ip)

    # Notes, canned responses, audit.
    async def add_note(self, conversation_id: int, agent_id: int, text: str) -> Row:
        """Store a private note."""
        return await self._call(
            cq.add_note, conversation_id=conversation_id, agent_id=agent_id, text=text
        )

    async def notes(self, conversation_id: int) -> list[Row]:
        """Return a conversation's notes."""
        return await self._call(cq.notes, conversation_id=conversation_id)

    async def canned(self, canned_id: int | None = None) -> list[Row]:
        """Return the canned responses (or one)."""
        return await self._call(cq.canned, canned_id=canned_id)

    async def add_canned(self, shortcut: str, title: str, text: str) -> Row | None:
        """Add a canned response; ``None`` if the shortcut is taken."""
        return await self._call(cq.add_canned, shortcut=shortcut, title=title, text=text)

    async def delete_canned(self, canned_id: int) -> bool:
        """Delete a canned response."""
        return await self._call(cq.delete_canned, canned_id=canned_id)

    async def audit(
        self,
        agent_id: int | None,
        action: str,
        conversation_id: int | None = None,
        detail: dict[str, Any] | None = None,
    ) -> None:
        """Append to the audit log."""
        await self._call(
            cq.audit,
            agent_id=agent_id,
            action=action,
            conversation_id=conversation_id,
            detail=detail,
        )

    async def audit_entries(self, limit: int) -> list[Row]:
        """Return the newest audit rows."""
        return await self._call(cq.audit_entries, limit=limit)

    async def staffing(self) -> tuple[int, int]:
        """How many agents are enabled, and how many of them are online."""
        return await self._call(cq.staffing)

    # The inbox.
    async def hand_off(
        self,
        conversation_id: int,
        reason: str,
        followup_email: str | None = None,
        notified: bool = False,
    ) -> bool:
        """Human mode plus an open inbox row, in one transaction; whether it is new."""
        return await self._call(
            iq.hand_off,
            conversation_id=conversation_id,
            reason=reason,
            followup_email=followup_email,
            notified=notified,
        )

    async def queue_entry(self, conversation_id: int) -> Row | None:
        """The open inbox row's ``assignee_id`` and ``followup_email``."""
        return await self._call(iq.queue_entry, conversation_id=conversation_id)

    async def set_followup(self, conversation_id: int, email: str) -> bool:
        """Send an agent's replies to ``email``."""
        return await self._call(iq.set_followup, conversation_id=conversation_id, email=email)

    async def withdraw(self, conversation_id: int) -> bool:
        """Take an unclaimed conversation out of the queue, back to the bot."""
        return await self._call(iq.withdraw, conversation_id=conversation_id)

    async def claim(self, conversation_id: int, agent_id: int) -> tuple[bool, Row | None]:
        """Claim race-safely; return (won, assignee)."""
        return await self._call(iq.claim, conversation_id=conversation_id, agent_id=agent_id)

    async def assign(self, conversation_id: int, agent_id: int) -> bool:
        """Assign an open conversation."""
        return await self._call(iq.assign, conversation_id=conversation_id, agent_id=agent_id)

    async def first_reply(self, conversation_id: int) -> datetime | None:
        """Record the first human reply; the handoff time when it was the first."""
        return await self._call(iq.first_reply, conversation_id=conversation_id)

    async def resolve(self, conversation_id: int, csat: bool) -> datetime | None:
        """Resolve and hand back to the bot; the handoff time, or ``None`` if not open."""
        return await self._call(iq.resolve, conversation_id=conversation_id, csat=csat)

    async def record_csat(self, conversation_id: int, score: int) -> bool:
        """Store a CSAT answer if one was asked for."""
        return await self._call(iq.record_csat, conversation_id=conversation_id, score=score)

    async def summaries(self, view: str, agent_id: int, q: str | None = None) -> list[Row]:
        """Return one inbox view."""
        return await self._call(iq.summaries, view=view, agent_id=agent_id, q=q)

    async def summary(self, conversation_id: int) -> Row | None:
        """Return one conversation's summary row."""
        return await self._call(iq.summary, conversation_id=conversation_id)

    async def conversation_id(self, channel: str, external_id: str) -> int | None:
        """Return a conversation's store id."""
        return await self._call(iq.conversation_id, channel=channel, external_id=external_id)

    async def unnotified(self, handed_off_before: datetime | None) -> list[int]:
        """Return queued conversations whose customer has not been told yet."""
        return await self._call(iq.unnotified, handed_off_before=handed_off_before)

    async def mark_notified(self, conversation_id: int) -> bool:
        """Mark the customer told, once."""
        return await self._call(iq.mark_notified, conversation_id=conversation_id)

    async def stats_rows(self) -> dict[str, list[Row]]:
        """Return the rows the stats aggregate."""
        return await self._call(iq.stats_rows)
