"""Outbox claims and orphaned messages on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio

from bot.storage import Store
from bot.storage.claims import Claims
from bot.storage.records import TurnRecord


async def _reply(store: Store) -> int:
    conv = await store.conversation("widget", "v1", "v1")
    return await store.record_outbound(conv.id, {"text": "hi"})


async def test_one_replica_wins_a_claim(store: Store) -> None:
    reply = await _reply(store)
    a, b = Claims(store, "a", 30), Claims(store, "b", 30)
    won = await asyncio.gather(*(c.claim(reply) for c in (a, b, a, b)))
    assert won.count(True) >= 1
    assert not (won[0] and won[1])  # never both replicas
    holder = a if won[0] else b
    assert await holder.claim(reply)  # renewing one's own claim
    other = b if holder is a else a
    assert not await other.claim(reply)
    await holder.release(reply)
    assert await other.claim(reply)


async def test_an_expired_claim_goes_to_the_next_replica(store: Store) -> None:
    reply = await _reply(store)
    assert await Claims(store, "dead", 0.05).claim(reply)
    assert not await Claims(store, "b", 30).claim(reply)
    await asyncio.sleep(0.1)
    assert await Claims(store, "b", 30).claim(reply)


async def test_a_delivered_reply_cannot_be_claimed(store: Store) -> None:
    reply = await _reply(store)
    await store.mark_delivered([reply])
    assert not await Claims(store, "a", 30).claim(reply)


async def test_orphans_are_old_pending_inbound_messages(store: Store) -> None:
    claims = Claims(store, "a", 30)
    received = await store.receive("widget", "v1", "v1", "m1", "hello")
    assert await claims.orphans(3600) == []
    assert [m.id for m in await claims.orphans(0)] == [received.inbound_id]


async def test_replies_are_born_claimed_by_the_replica_that_wrote_them(store: Store) -> None:
    store.claim_new_replies("a", 30)
    conv = await store.conversation("widget", "v1", "v1")
    received = await store.receive("widget", "v1", "v1", "m1", "hello")
    turn = TurnRecord(
        conversation_id=conv.id,
        inbound_id=received.inbound_id,
        state={},
        events=[{"event": "user", "text": "hello"}],
        replies=[{"text": "one"}, {"text": "two"}, {"text": "three"}],
        route="flow",
    )
    ids = await store.commit_turn(turn)
    pushed = await store.record_outbound(conv.id, {"text": "from an agent"})
    assert [m.text for m in await store.replies_to(received.inbound_id)] == ["one", "two", "three"]
    assert ids == sorted(ids)
    b = Claims(store, "b", 30)
    for reply in [*ids, pushed]:
        assert not await b.claim(reply)  # a holds them from the start
        assert await Claims(store, "a", 30).claim(reply)


async def test_replies_written_without_a_claim_are_free(store: Store) -> None:
    reply = await _reply(store)
    assert await Claims(store, "b", 30).claim(reply)
