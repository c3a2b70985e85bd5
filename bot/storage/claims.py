"""Outbox claims and orphaned messages, for several replicas on one database.

A replica delivers a reply only after claiming it: one conditional ``UPDATE``
sets ``claimed_by`` and ``claimed_until`` on a pending reply whose claim is
free, expired or already its own. The row count says who won, atomically, on
SQLite and PostgreSQL alike, and a replica that is killed mid-delivery leaves
a claim that simply expires, so another replica delivers the reply. Each
delivery carries the message id, the channel's idempotency key, so the rare
retry after a crash between ``send`` and the delivered mark is recognisable.
"""

from __future__ import annotations

import functools
from datetime import timedelta
from typing import TYPE_CHECKING

from sqlalchemy import and_, or_, update

from bot.storage.models import utcnow
from bot.storage.queries import MESSAGES, select_messages

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection

    from bot.storage.records import StoredMessage
    from bot.storage.store import Store


async def _claim(conn: AsyncConnection, message_id: int, owner: str, lease_s: float) -> bool:
    m, now = MESSAGES.c, utcnow()
    result = await conn.execute(
        update(MESSAGES)
        .where(
            m.id == message_id,
            m.direction == "out",
            m.status == "pending",
            or_(m.claimed_until.is_(None), m.claimed_until < now, m.claimed_by == owner),
        )
        .values(claimed_by=owner, claimed_until=now + timedelta(seconds=lease_s))
    )
    return bool(result.rowcount == 1)


async def _release(conn: AsyncConnection, message_id: int, owner: str) -> None:
    m = MESSAGES.c
    await conn.execute(
        update(MESSAGES)
        .where(m.id == message_id, m.claimed_by == owner)
        .values(claimed_by=None, claimed_until=None)
    )


async def _orphans(conn: AsyncConnection, older_than_s: float) -> list[StoredMessage]:
    m = MESSAGES.c
    cutoff = utcnow() - timedelta(seconds=older_than_s)
    where = and_(m.direction == "in", m.status == "pending", m.created_at < cutoff)
    return await select_messages(conn, where)


class Claims:
    """Claims on outbox rows for one replica, and the inbound messages nobody ran.

    Args:
        store: The started store.
        owner: This replica's id (unique per process).
        lease_s: How long a claim holds without being renewed.
    """

    def __init__(self, store: Store, owner: str, lease_s: float) -> None:
        self.store = store
        self.owner = owner
        self.lease_s = lease_s

    async def claim(self, message_id: int) -> bool:
        """Claim (or renew the claim on) a pending reply; ``False`` if another replica holds it."""
        op = functools.partial(
            _claim, message_id=message_id, owner=self.owner, lease_s=self.lease_s
        )
        return await self.store.run("claim_delivery", op, autocommit=True)

    async def release(self, message_id: int) -> None:
        """Give up this replica's claim so the next sweep, on any replica, retries it."""
        op = functools.partial(_release, message_id=message_id, owner=self.owner)
        await self.store.run("release_delivery", op, autocommit=True)

    async def orphans(self, older_than_s: float) -> list[StoredMessage]:
        """Inbound messages stored more than ``older_than_s`` ago whose turn never ran."""
        op = functools.partial(_orphans, older_than_s=older_than_s)
        return await self.store.run("orphaned_inbound", op, autocommit=True)
