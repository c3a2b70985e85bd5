"""Retention prunes and customer erasure over the real store, on both backends."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import asyncpg
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from sqlalchemy import Table, select, update

from bot import metrics
from bot.config import load_config
from bot.errors import StorageError
from bot.runtime import NoNLU, Runtime
from bot.server import RETENTION, create_app
from bot.storage import Store
from bot.storage.console_queries import AUDIT
from bot.storage.lifecycle import DELETED_TABLES, UNLINKED_TABLES, Lifecycle, RetentionPruner
from bot.storage.llm_queries import LLM_USAGE
from bot.storage.models import Base
from bot.storage.queries import MESSAGES
from tests.bot.storage.lifecycle_data import backdate, customer, rows
from tests.conftest import _asyncpg_dsn

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection

FULL = {
    "messages": 4,  # two inbound, the bot's reply, the agent's reply
    "turns": 1,
    "events": 2,
    "inbox": 1,
    "notes": 1,
    "audit_log": 2,
    "llm_usage": 1,
    "conversations": 1,
}
NONE = dict.fromkeys(FULL, 0)
PROJECT = Path(__file__).parents[1] / "dialogue" / "project"
ClientFactory = Callable[[web.Application], Awaitable[TestClient[Any, Any]]]
KEPT = ("llm_usage", "audit_log")  # outlive the conversation, unlinked


def test_every_table_that_names_a_conversation_is_covered() -> None:
    covered = {name for name, _ in (*DELETED_TABLES, *UNLINKED_TABLES)}
    naming = {t.name for t in Base.metadata.sorted_tables if "conversation_id" in t.c}
    assert naming == covered


async def _three(store: Store) -> tuple[int, int, int]:
    widget = await customer(store, "widget", "visitor-1", "visitor-1")
    slack = await customer(store, "slack", "T1:D1:U1", "U1")
    email = await customer(store, "email", "<thread-1@shop.test>", "pat@shop.test")
    return widget, slack, email


async def _unlinked(store: Store, table: Table) -> int:
    async def op(conn: AsyncConnection) -> int:
        query = select(table.c.id).where(table.c.conversation_id.is_(None))
        return len(list(await conn.execute(query)))

    return await store.run("unlinked", op)


async def test_erase_removes_one_customer_everywhere(store: Store) -> None:
    widget, slack, email = await _three(store)
    result = await Lifecycle(store).erase("U1")
    assert result.conversations == 1
    assert result.deleted == {k: v for k, v in FULL.items() if k not in KEPT}
    assert result.unlinked == {"llm_usage": 1, "audit_log": 2}
    assert await rows(store, [slack]) == NONE
    assert await rows(store, [widget]) == FULL
    assert await rows(store, [email]) == FULL
    assert await _unlinked(store, LLM_USAGE) == 1  # the budget still counts the spend
    assert await _unlinked(store, AUDIT) == 2  # the agents' actions stay on record
    assert await store.month_cost("2026-12") == pytest.approx(0.03)


async def test_erase_narrowed_to_a_channel(store: Store) -> None:
    on_rest = await customer(store, "rest", "sam", "sam")
    on_widget = await customer(store, "widget", "sam", "sam")
    result = await Lifecycle(store).erase("sam", "widget")
    assert result.conversations == 1
    assert await rows(store, [on_widget]) == NONE
    assert await rows(store, [on_rest]) == FULL


async def test_erase_matches_an_email_in_any_case(store: Store) -> None:
    email = await customer(store, "email", "<t@shop.test>", "pat@shop.test")
    result = await Lifecycle(store).erase("Pat@Shop.test")
    assert result.conversations == 1
    assert await rows(store, [email]) == NONE


async def test_erase_dry_run_changes_nothing(store: Store) -> None:
    widget, slack, email = await _three(store)
    result = await Lifecycle(store).erase("visitor-1", dry_run=True)
    assert result.dry_run
    assert (result.deleted["messages"], result.unlinked) == (4, {"llm_usage": 1, "audit_log": 2})
    for cid in (widget, slack, email):
        assert await rows(store, [cid]) == FULL


async def test_erase_of_nobody_matches_nothing(store: Store) -> None:
    widget, _, _ = await _three(store)
    result = await Lifecycle(store).erase("someone-else")
    assert result.conversations == 0
    assert set(result.deleted.values()) == {0}
    assert await rows(store, [widget]) == FULL
    with pytest.raises(StorageError, match="must not be empty"):
        await Lifecycle(store).erase("  ")


async def test_prune_deletes_only_inactive_conversations(store: Store) -> None:
    widget, slack, email = await _three(store)
    await backdate(store, widget, 40)
    await backdate(store, email, 40)
    cutoff = datetime.now(UTC) - timedelta(days=30)
    result = await Lifecycle(store, batch_size=1).prune(cutoff)
    assert result.conversations == 2
    assert result.deleted["messages"] == 8
    assert await rows(store, [widget, email]) == NONE
    assert await rows(store, [slack]) == FULL


async def test_a_recent_message_keeps_an_old_conversation(store: Store) -> None:
    old = await customer(store, "rest", "kim", "kim")
    await backdate(store, old, 40)
    await store.record_inbound(old, "rest", "kim-3", "still there?", {})
    cutoff = datetime.now(UTC) - timedelta(days=30)
    assert (await Lifecycle(store).prune(cutoff)).conversations == 0
    assert (await rows(store, [old]))["conversations"] == 1


async def test_prune_dry_run_in_batches_changes_nothing(store: Store) -> None:
    ids = list(await _three(store))
    for cid in ids:
        await backdate(store, cid, 40)
    cutoff = datetime.now(UTC) - timedelta(days=30)
    result = await Lifecycle(store, batch_size=2).prune(cutoff, dry_run=True)
    assert result.conversations == 3
    assert result.unlinked["audit_log"] == 6
    for cid in ids:
        assert await rows(store, [cid]) == FULL


async def test_prune_skips_a_conversation_locked_by_another_transaction(
    store: Store, db_url: str
) -> None:
    """PostgreSQL: a conversation a writer holds is left for the next prune."""
    if not db_url.startswith("postgresql"):
        pytest.skip("row locks are PostgreSQL's; SQLite has one writer at a time")
    held, free = await customer(store, "rest", "a", "a"), await customer(store, "rest", "b", "b")
    for cid in (held, free):
        await backdate(store, cid, 40)
    cutoff = datetime.now(UTC) - timedelta(days=30)
    writer = await asyncpg.connect(_asyncpg_dsn(db_url))
    try:
        async with writer.transaction():
            # What storing a message takes: a key-share lock on the conversation.
            await writer.execute("SELECT id FROM conversations WHERE id = $1 FOR KEY SHARE", held)
            assert (await Lifecycle(store).prune(cutoff)).conversations == 1
        assert (await rows(store, [held]))["conversations"] == 1
        assert await rows(store, [free]) == NONE
    finally:
        await writer.close()
    assert (await Lifecycle(store).prune(cutoff)).conversations == 1
    assert await rows(store, [held]) == NONE


def _pruned(table: str, kind: str = "deleted") -> float:
    labels = {"table": table, "kind": kind}
    value = metrics.REGISTRY.get_sample_value("helpline_retention_pruned_rows_total", labels)
    return value or 0.0


async def test_pruner_prunes_at_start_and_counts_the_rows(store: Store) -> None:
    old, recent = (
        await customer(store, "rest", "old", "old"),
        await customer(store, "rest", "n", "n"),
    )
    await backdate(store, old, 40)
    before = (_pruned("messages"), _pruned("audit_log", "unlinked"))
    pruner = RetentionPruner(store, retention_days=30)
    async with pruner:
        await pruner.pruned.wait()
    assert pruner.runs == 1
    assert await rows(store, [old]) == NONE
    assert await rows(store, [recent]) == FULL
    assert (_pruned("messages") - before[0], _pruned("audit_log", "unlinked") - before[1]) == (4, 2)


async def test_pruner_without_retention_starts_nothing(store: Store) -> None:
    old = await customer(store, "rest", "old", "old")
    await backdate(store, old, 4000)
    async with RetentionPruner(store, retention_days=None) as pruner:
        assert len(pruner._tasks) == 0
    assert pruner.runs == 0
    assert await rows(store, [old]) == FULL


async def test_pruner_survives_a_failed_prune(store: Store) -> None:
    """A prune that fails is logged and tried again at the next interval."""
    old = await customer(store, "rest", "old", "old")
    await backdate(store, old, 40)
    await store.stop()  # every call fails until the store is started again
    pruner = RetentionPruner(store, retention_days=30, interval_s=0.01)
    async with pruner:
        await asyncio.sleep(0.05)
        assert pruner.runs == 0
        await store.start()
        await pruner.pruned.wait()
    assert await rows(store, [old]) == NONE


async def _all_answered(conn: AsyncConnection) -> None:
    await conn.execute(update(MESSAGES).values(status="processed"))


async def test_the_server_prunes_while_it_runs(
    aiohttp_client: ClientFactory, db_url: str, tmp_path: Path
) -> None:
    async with Store(db_url) as seeding:
        await seeding.upgrade()
        old = await customer(seeding, "rest", "gone", "gone")
        await backdate(seeding, old, 40)
        kept = await customer(seeding, "rest", "kept", "kept")
        await seeding.run("answered", _all_answered)  # nothing for the server to recover
    (tmp_path / "helpline.yml").write_text(
        f"bot:\n  path: {PROJECT}\nstorage:\n  url: {db_url}\n  retention_days: 30\n"
        "llm:\n  enabled: false\n"
    )
    config = load_config(tmp_path / "helpline.yml")
    runtime = Runtime(config, nlu=NoNLU())
    app = create_app(config, runtime)
    client = await aiohttp_client(app)
    await app[RETENTION].pruned.wait()
    assert await rows(runtime.store, [old]) == NONE
    assert (await rows(runtime.store, [kept]))["conversations"] == 1
    text = await (await client.get("/metrics")).text()
    assert 'helpline_retention_pruned_rows_total{kind="deleted",table="messages"}' in text
