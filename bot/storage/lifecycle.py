"""Data lifecycle: pruning old conversations and erasing one customer's data.

Both work on whole conversations. The conversations that match are taken in
batches by id; each batch is found and deleted in one transaction, table by
table in dependency order (events, turns, notes, inbox, messages, then the
conversation), so a failure leaves the batch as it was and no row is left
pointing at a deleted one. Two kinds of row outlive the conversation with
their link to it cleared: model usage, because the monthly budget adds it up,
and the agents' audit log, which records who did what (its details hold ids,
never the customer's words).

On PostgreSQL a batch locks its conversations (``FOR UPDATE SKIP LOCKED``)
and checks the conditions again under the lock, so a message that arrives
while a prune runs keeps its conversation: a new message cannot be stored for
a locked conversation, and one stored just before the lock is seen by the
second check. A dry run counts the same rows in the same batches and changes
nothing.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import Table, delete, exists, func, select, update

from bot import metrics
from bot.errors import StorageError
from bot.lifecycle import Service
from bot.storage.console_queries import AUDIT, NOTES
from bot.storage.inbox_queries import INBOX
from bot.storage.llm_queries import LLM_USAGE
from bot.storage.queries import CONVERSATIONS, EVENTS, MESSAGES, TURNS
from bot.tasks import OwnedTasks

if TYPE_CHECKING:
    from collections.abc import Sequence

    from sqlalchemy import ColumnElement
    from sqlalchemy.ext.asyncio import AsyncConnection

    from bot.storage.store import Store

_LOGGER = logging.getLogger(__name__)

DEFAULT_BATCH_SIZE = 200
DAY_S = 86_400.0

# Every table with a conversation_id, children before the rows they point at.
DELETED_TABLES: tuple[tuple[str, Table], ...] = (
    ("events", EVENTS),
    ("turns", TURNS),
    ("notes", NOTES),
    ("inbox", INBOX),
    ("messages", MESSAGES),
)
# Tables whose rows outlive the conversation, with the link cleared.
UNLINKED_TABLES: tuple[tuple[str, Table], ...] = (
    ("llm_usage", LLM_USAGE),
    ("audit_log", AUDIT),
)

Counts = dict[str, int]


@dataclass
class Erasure:
    """What a prune or an erase removed (or, in a dry run, would remove).

    Attributes:
        dry_run: Whether nothing was changed.
        deleted: Rows deleted per table, ``conversations`` included.
        unlinked: Rows kept per table whose conversation link was cleared.
    """

    dry_run: bool
    deleted: Counts = field(default_factory=dict)
    unlinked: Counts = field(default_factory=dict)

    @property
    def conversations(self) -> int:
        """How many conversations matched."""
        return self.deleted.get("conversations", 0)

    def add(self, deleted: Counts, unlinked: Counts) -> None:
        """Add one batch's counts."""
        for total, part in ((self.deleted, deleted), (self.unlinked, unlinked)):
            for table, count in part.items():
                total[table] = total.get(table, 0) + count

    def as_dict(self) -> dict[str, Any]:
        """Return the counts as plain data, for ``--json``."""
        return {
            "dry_run": self.dry_run,
            "conversations": self.conversations,
            "deleted": dict(self.deleted),
            "unlinked": dict(self.unlinked),
        }


def _empty() -> tuple[Counts, Counts]:
    deleted = {name: 0 for name, _ in DELETED_TABLES}
    deleted["conversations"] = 0
    return deleted, {name: 0 for name, _ in UNLINKED_TABLES}


async def _count(conn: AsyncConnection, ids: Sequence[int]) -> tuple[Counts, Counts]:
    """Count the rows of the conversations ``ids`` in every table."""
    deleted, unlinked = _empty()
    for counts, tables in ((deleted, DELETED_TABLES), (unlinked, UNLINKED_TABLES)):
        for name, table in tables:
            query = select(func.count()).where(table.c.conversation_id.in_(ids))
            counts[name] = int((await conn.execute(query)).scalar_one())
    deleted["conversations"] = len(ids)
    return deleted, unlinked


async def _delete(conn: AsyncConnection, ids: Sequence[int]) -> tuple[Counts, Counts]:
    """Delete the conversations ``ids`` and every row that hangs off them."""
    deleted, unlinked = _empty()
    for name, table in DELETED_TABLES:
        result = await conn.execute(delete(table).where(table.c.conversation_id.in_(ids)))
        deleted[name] = int(result.rowcount)
    for name, table in UNLINKED_TABLES:
        statement = update(table).where(table.c.conversation_id.in_(ids))
        result = await conn.execute(statement.values(conversation_id=None))
        unlinked[name] = int(result.rowcount)
    result = await conn.execute(delete(CONVERSATIONS).where(CONVERSATIONS.c.id.in_(ids)))
    deleted["conversations"] = int(result.rowcount)
    return deleted, unlinked


async def sweep_batch(
    conn: AsyncConnection,
    where: Sequence[ColumnElement[bool]],
    after: int,
    limit: int,
    dry_run: bool,
) -> tuple[list[int], Counts, Counts]:
    """Find the next batch of matching conversations and delete (or count) their rows.

    Args:
        conn: The batch's transaction.
        where: Conditions on ``conversations`` that pick the targets.
        after: Only conversations with a larger id are taken.
        limit: The batch size.
        dry_run: Count instead of deleting.

    Returns:
        The ids the batch looked at (the next batch starts after the last),
        the rows deleted (counted) per table and the rows unlinked per table.
    """
    c = CONVERSATIONS.c
    query = select(c.id).where(*where, c.id > after).order_by(c.id).limit(limit)
    if not dry_run:
        query = query.with_for_update(of=CONVERSATIONS, skip_locked=True)
    seen = [int(row_id) for row_id in (await conn.execute(query)).scalars()]
    ids = seen
    if seen and not dry_run and conn.dialect.name == "postgresql":
        # A fresh statement sees what committed before the lock was taken.
        again = select(c.id).where(*where, c.id.in_(seen)).order_by(c.id)
        ids = [int(row_id) for row_id in (await conn.execute(again)).scalars()]
    if not ids:
        deleted, unlinked = _empty()
        return seen, deleted, unlinked
    deleted, unlinked = await (_count if dry_run else _delete)(conn, ids)
    return seen, deleted, unlinked


def inactive_since(cutoff: datetime) -> list[ColumnElement[bool]]:
    """Conditions for conversations with no activity at or after ``cutoff``.

    Activity is the conversation's own update time (every bot turn and mode
    change), any message either way, and the inbox row's update time.
    """
    c, m, i, n = CONVERSATIONS.c, MESSAGES.c, INBOX.c, NOTES.c
    return [
        c.updated_at < cutoff,
        ~exists().where(m.conversation_id == c.id, m.created_at >= cutoff),
        ~exists().where(i.conversation_id == c.id, i.updated_at >= cutoff),
        ~exists().where(n.conversation_id == c.id, n.created_at >= cutoff),
    ]


def customer_ids(customer: str) -> list[str]:
    """The sender values that name ``customer``.

    The email connector stores addresses lower-cased, so an address also
    matches its lower-case form.

    Raises:
        StorageError: ``customer`` is blank.
    """
    customer = customer.strip()
    if not customer:
        raise StorageError("A customer id to erase must not be empty.")
    if "@" in customer and customer.lower() != customer:
        return [customer, customer.lower()]
    return [customer]


def of_customer(customer: str, channel: str | None = None) -> list[ColumnElement[bool]]:
    """Conditions for the conversations of one customer (on one channel if given).

    A conversation belongs to the customer whose channel id started it: its
    ``sender`` (the widget visitor id, the Slack user id, the email address,
    the REST sender).
    """
    c = CONVERSATIONS.c
    where: list[ColumnElement[bool]] = [c.sender.in_(customer_ids(customer))]
    if channel is not None:
        where.append(c.channel == channel)
    return where


class Lifecycle:
    """Retention and erasure over one started store.

    Args:
        store: A started, migrated store.
        batch_size: Conversations per transaction.
    """

    def __init__(self, store: Store, batch_size: int = DEFAULT_BATCH_SIZE) -> None:
        self.store = store
        self.batch_size = batch_size

    async def prune(self, before: datetime, *, dry_run: bool = False) -> Erasure:
        """Delete the conversations whose last activity is older than ``before``."""
        result = await self._sweep("prune", inactive_since(before), dry_run)
        _LOGGER.info(
            "Pruned %d conversations inactive since %s%s.",
            result.conversations,
            before.isoformat(),
            " (dry run)" if dry_run else "",
        )
        return result

    async def erase(
        self, customer: str, channel: str | None = None, *, dry_run: bool = False
    ) -> Erasure:
        """Delete every conversation of one customer, with everything hanging off them.

        Raises:
            StorageError: ``customer`` is blank, or the database failed.
        """
        result = await self._sweep("erase", of_customer(customer, channel), dry_run)
        _LOGGER.info(
            "Erased %d conversations of one customer%s.",
            result.conversations,
            " (dry run)" if dry_run else "",
        )
        return result

    async def _sweep(
        self, what: str, where: Sequence[ColumnElement[bool]], dry_run: bool
    ) -> Erasure:
        """Run batches until one comes back short; each batch is one transaction."""
        result = Erasure(dry_run)
        result.add(*_empty())
        after = 0
        while True:
            op = functools.partial(
                sweep_batch, where=where, after=after, limit=self.batch_size, dry_run=dry_run
            )
            ids, deleted, unlinked = await self.store.run(what, op)
            result.add(deleted, unlinked)
            if len(ids) < self.batch_size:
                return result
            after = ids[-1]


class RetentionPruner(Service):
    """Prunes conversations inactive for ``retention_days``: at start, then once a day.

    The server owns one for as long as it runs. With no retention configured
    it starts nothing. A failed prune is logged and tried again at the next
    interval; each prune adds its rows to ``helpline_retention_pruned_rows_total``.

    Args:
        store: A started, migrated store.
        retention_days: Days without activity before a conversation goes;
            ``None`` keeps everything.
        interval_s: Seconds between prunes.
    """

    def __init__(self, store: Store, retention_days: int | None, interval_s: float = DAY_S) -> None:
        self.store = store
        self.retention_days = retention_days
        self.interval_s = interval_s
        self.runs = 0
        # Set after every prune that succeeded; whoever waits on it clears it.
        self.pruned = asyncio.Event()
        self._tasks = OwnedTasks()

    async def start(self) -> None:
        """Start the daily prune, if a retention is configured."""
        if self.retention_days is None or len(self._tasks):
            return
        _LOGGER.info(
            "Conversations inactive for %d day(s) are pruned every %.0f s.",
            self.retention_days,
            self.interval_s,
        )
        self._tasks.spawn(self._loop(self.retention_days), "retention-prune")

    async def stop(self) -> None:
        """Cancel the prune (a batch in flight rolls back) and wait for it."""
        await self._tasks.stop()

    async def prune_once(self, days: int) -> Erasure:
        """Prune once and count the rows in the metrics."""
        result = await Lifecycle(self.store).prune(datetime.now(UTC) - timedelta(days=days))
        for kind, counts in (("deleted", result.deleted), ("unlinked", result.unlinked)):
            for table, count in counts.items():
                metrics.RETENTION_PRUNED.labels(table, kind).inc(count)
        self.runs += 1
        self.pruned.set()
        return result

    async def _loop(self, days: int) -> None:
        while True:
            try:
                await self.prune_once(days)
            except StorageError:
                _LOGGER.exception(
                    "The retention prune failed; it runs again in %.0f s.", self.interval_s
                )
            await asyncio.sleep(self.interval_s)
