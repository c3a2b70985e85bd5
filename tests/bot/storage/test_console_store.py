"""The console's storage: handoff rows, the race-safe claim, CSAT and notices."""

from __future__ import annotations

import asyncio

from bot.storage import Store
from bot.storage.console_store import ConsoleStore


async def test_concurrent_claims_have_exactly_one_winner(store: Store) -> None:
    db = ConsoleStore(store)
    conv = await store.conversation("rest", "race", "u")
    agents = [await db.create_agent(f"a{i}@x.io", f"A{i}", "agent", "h") for i in range(4)]
    assert await db.hand_off(conv.id, "user_request") is True
    assert await db.hand_off(conv.id, "low_confidence") is False  # refreshed, not reopened
    results = await asyncio.gather(*(db.claim(conv.id, a["id"]) for a in agents))
    winners = [owner for won, owner in results if won]
    assert len(winners) == 1
    assert all(owner == winners[0] for _, owner in results)
    summary = await db.summary(conv.id)
    assert summary is not None
    assert summary["handoff_reason"] == "low_confidence"
    assert summary["mode"] == "human"
    assert summary["assignee_id"] == winners[0]["id"]


async def test_resolve_csat_and_reopen(store: Store) -> None:
    db = ConsoleStore(store)
    conv = await store.conversation("rest", "csat", "u")
    await db.hand_off(conv.id, "budget")
    assert await db.record_csat(conv.id, 5) is False  # not asked for
    assert await db.resolve(conv.id, csat=True) is not None
    assert await db.resolve(conv.id, csat=False) is None  # not open any more
    assert await db.record_csat(conv.id, 4) is True
    assert await db.record_csat(conv.id, 1) is False  # answered once
    summary = await db.summary(conv.id)
    assert summary is not None
    assert (summary["csat"], summary["mode"]) == (4, "bot")
    assert await db.hand_off(conv.id, "user_request") is True  # a new handoff reopens
    summary = await db.summary(conv.id)
    assert summary is not None
    assert (summary["status"], summary["csat"]) == ("open", None)


async def test_each_customer_is_notified_once(store: Store) -> None:
    db = ConsoleStore(store)
    conv = await store.conversation("rest", "notice", "u")
    await db.hand_off(conv.id, "user_request")
    assert await db.unnotified(None) == [conv.id]
    assert await asyncio.gather(db.mark_notified(conv.id), db.mark_notified(conv.id)) in (
        [True, False],
        [False, True],
    )
    assert await db.unnotified(None) == []
