from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from bot.errors import InvalidInput, StorageError
from bot.storage import Store, TurnRecord, demo_orders


async def test_conversation_get_or_create(store: Store) -> None:
    first = await store.conversation("rest", "c-1", "alice")
    again = await store.conversation("rest", "c-1", "alice")
    other_channel = await store.conversation("slack", "c-1", "alice")
    assert first == again
    assert other_channel.id != first.id
    assert (first.channel, first.external_id, first.sender, first.mode) == (
        "rest",
        "c-1",
        "alice",
        "bot",
    )
    assert first.created_at.tzinfo is not None
    assert await store.conversation_by_id(first.id) == first
    assert await store.conversation_by_id(first.id + 1000) is None


async def test_concurrent_creators_get_the_same_conversation(store: Store) -> None:
    rows = await asyncio.gather(*(store.conversation("widget", "w-9", "bob") for _ in range(8)))
    assert len({row.id for row in rows}) == 1


async def test_inbound_is_idempotent_on_channel_and_external_id(store: Store) -> None:
    conv = await store.conversation("slack", "C1", "U1")
    first_id, created = await store.record_inbound(conv.id, "slack", "ts-1", "hi", {"a": 1})
    again_id, created_again = await store.record_inbound(conv.id, "slack", "ts-1", "hi", {})
    assert (created, created_again) == (True, False)
    assert again_id == first_id
    transcript = await store.transcript(conv.id)
    assert [(m.id, m.text, m.metadata, m.status) for m in transcript] == [
        (first_id, "hi", {"a": 1}, "pending")
    ]


async def test_inbound_without_external_id_is_always_new(store: Store) -> None:
    conv = await store.conversation("rest", "c-2", "carol")
    a, created_a = await store.record_inbound(conv.id, "rest", None, "one", {})
    b, created_b = await store.record_inbound(conv.id, "rest", None, "one", {})
    assert (created_a, created_b) == (True, True)
    assert a != b


async def test_concurrent_duplicate_inbound_stored_once(store: Store) -> None:
    conv = await store.conversation("slack", "C2", "U2")
    results = await asyncio.gather(
        *(store.record_inbound(conv.id, "slack", "ts-7", "retry", {}) for _ in range(6))
    )
    assert len({message_id for message_id, _ in results}) == 1
    assert sum(created for _, created in results) == 1


async def _inbound(store: Store, text: str = "where is my order?") -> tuple[int, int]:
    conv = await store.conversation("rest", "c-turn", "dave")
    inbound_id, _ = await store.record_inbound(conv.id, "rest", f"m-{text}", text, {})
    return conv.id, inbound_id


def _turn(conv_id: int, inbound_id: int, **overrides: object) -> TurnRecord:
    values: dict[str, object] = {
        "conversation_id": conv_id,
        "inbound_id": inbound_id,
        "state": {"stack": [{"flow_id": "order_status", "step": "ask_id"}], "slots": {"x": 1}},
        "events": [
            {"event": "user", "text": "where is my order?", "intent": "order_status"},
            {"event": "flow_started", "flow_id": "order_status"},
        ],
        "replies": [
            {"text": "What is your order number?"},
            {
                "text": "Pick one",
                "buttons": [{"title": "Cancel", "payload": "/cancel"}],
                "metadata": {"response": "utter_ask"},
            },
        ],
        "route": "flow",
        "intent": "order_status",
        "confidence": 0.93,
        "latency_ms": 12.5,
        "flow_id": "order_status",
    }
    values.update(overrides)
    return TurnRecord(**values)  # type: ignore[arg-type]


async def test_commit_turn_writes_everything(store: Store) -> None:
    conv_id, inbound_id = await _inbound(store)
    assert await store.pending_inbound() != []
    ids = await store.commit_turn(_turn(conv_id, inbound_id))
    replies = await store.replies_to(inbound_id)
    assert [m.id for m in replies] == ids
    assert [(m.text, m.direction, m.status, m.in_reply_to) for m in replies] == [
        ("What is your order number?", "out", "pending", inbound_id),
        ("Pick one", "out", "pending", inbound_id),
    ]
    assert replies[1].buttons == [{"title": "Cancel", "payload": "/cancel"}]
    assert replies[1].metadata == {"response": "utter_ask"}
    assert replies[0].conversation_external_id == "c-turn"
    assert all(m.created_at.tzinfo is not None for m in replies)
    assert await store.inbound_status(inbound_id) == "processed"
    assert await store.pending_inbound() == []
    assert await store.load_state(conv_id) == _turn(conv_id, inbound_id).state
    assert [e["event"] for e in await store.events(conv_id)] == ["user", "flow_started"]
    assert await store.route_counts() == {"flow": 1}


async def test_commit_turn_without_replies_or_events(store: Store) -> None:
    conv_id, inbound_id = await _inbound(store)
    turn = _turn(conv_id, inbound_id, replies=[], events=[], citations=[{"source": "kb.md"}])
    assert await store.commit_turn(turn) == []
    assert await store.inbound_status(inbound_id) == "processed"
    assert await store.events(conv_id) == []
    assert await store.replies_to(inbound_id) == []
    (row,) = await store.turns(conv_id)
    assert (row["route"], row["confidence"], row["citations"]) == (
        "flow",
        0.93,
        [{"source": "kb.md"}],
    )
    assert row["inbound_message_id"] == inbound_id
    assert row["created_at"].tzinfo is not None


async def test_events_keep_their_order_across_turns(store: Store) -> None:
    conv_id, first = await _inbound(store, "one")
    _, second = await _inbound(store, "two")
    await store.commit_turn(_turn(conv_id, first, events=[{"event": "user", "text": "one"}]))
    await store.commit_turn(
        _turn(
            conv_id,
            second,
            events=[{"event": "user", "text": "two"}, {"event": "bot", "text": "ok"}],
            route="cloud",
        )
    )
    assert await store.events(conv_id) == [
        {"event": "user", "text": "one"},
        {"event": "user", "text": "two"},
        {"event": "bot", "text": "ok"},
    ]
    assert await store.route_counts() == {"flow": 1, "cloud": 1}


async def _assert_nothing_written(store: Store, conv_id: int, inbound_id: int) -> None:
    assert await store.inbound_status(inbound_id) == "pending"
    assert await store.replies_to(inbound_id) == []
    assert await store.events(conv_id) == []
    assert await store.load_state(conv_id) is None
    assert await store.route_counts() == {}
    assert [m.id for m in await store.pending_inbound(conv_id)] == [inbound_id]


@pytest.mark.parametrize(
    "overrides",
    [
        # The last statement of the transaction fails: an event without a type.
        {"events": [{"event": "user", "text": "hi"}, {"text": "no event key"}]},
        # The turn row violates the route check constraint.
        {"route": "telepathy"},
        # A reply that cannot be serialised.
        {"replies": [{"text": "ok"}, {"text": "bad", "metadata": {"x": object()}}]},
    ],
    ids=["bad-event", "bad-route", "unserialisable-reply"],
)
async def test_failing_turn_leaves_nothing_half_written(
    store: Store, overrides: dict[str, object]
) -> None:
    conv_id, inbound_id = await _inbound(store)
    with pytest.raises(StorageError, match="commit_turn"):
        await store.commit_turn(_turn(conv_id, inbound_id, **overrides))
    await _assert_nothing_written(store, conv_id, inbound_id)
    # The inbound is still pending, so the turn can be retried.
    assert len(await store.commit_turn(_turn(conv_id, inbound_id))) == 2


async def test_turn_for_processed_inbound_is_refused(store: Store) -> None:
    conv_id, inbound_id = await _inbound(store)
    await store.commit_turn(_turn(conv_id, inbound_id))
    with pytest.raises(StorageError, match="not pending"):
        await store.commit_turn(_turn(conv_id, inbound_id, state={"other": True}))
    assert len(await store.replies_to(inbound_id)) == 2
    assert await store.load_state(conv_id) == _turn(conv_id, inbound_id).state


async def test_concurrent_turns_for_one_inbound_commit_once(store: Store) -> None:
    conv_id, inbound_id = await _inbound(store)
    results = await asyncio.gather(
        *(store.commit_turn(_turn(conv_id, inbound_id)) for _ in range(4)), return_exceptions=True
    )
    assert sum(isinstance(r, list) for r in results) == 1
    assert all(isinstance(r, list | StorageError) for r in results)
    assert len(await store.replies_to(inbound_id)) == 2


async def test_state_survives_a_restart(store: Store, db_url: str) -> None:
    conv_id, inbound_id = await _inbound(store)
    _, pending_id = await _inbound(store, "still pending")
    await store.commit_turn(_turn(conv_id, inbound_id))
    await store.stop()
    async with Store(db_url) as fresh:
        await fresh.upgrade()
        assert await fresh.load_state(conv_id) == _turn(conv_id, inbound_id).state
        assert [m.id for m in await fresh.pending_inbound()] == [pending_id]
        assert [m.text for m in await fresh.undelivered("rest")] == [
            "What is your order number?",
            "Pick one",
        ]


async def test_outbox_delivery(store: Store) -> None:
    conv_id, inbound_id = await _inbound(store)
    first, second = await store.commit_turn(_turn(conv_id, inbound_id))
    other = await store.conversation("slack", "C9", "U9")
    agent_id = await store.record_outbound(other.id, {"text": "An agent here."})
    assert [m.id for m in await store.undelivered("rest")] == [first, second]
    assert [m.id for m in await store.undelivered("slack")] == [agent_id]
    await store.mark_delivered([first])
    await store.mark_delivered([])
    assert [m.id for m in await store.undelivered("rest")] == [second]
    statuses = [(m.id, m.status) for m in await store.transcript(conv_id)]
    assert statuses == [(inbound_id, "processed"), (first, "delivered"), (second, "pending")]


async def test_set_mode(store: Store) -> None:
    conv = await store.conversation("widget", "w-1", "erin")
    await store.set_mode(conv.id, "human")
    assert (await store.conversation("widget", "w-1", "erin")).mode == "human"
    await store.set_mode(conv.id, "bot")
    assert (await store.conversation("widget", "w-1", "erin")).mode == "bot"
    with pytest.raises(StorageError):
        await store.set_mode(conv.id, "robot")  # type: ignore[arg-type]
    with pytest.raises(StorageError, match="does not exist"):
        await store.set_mode(conv.id + 100, "human")


async def test_unknown_inbound_status_raises(store: Store) -> None:
    with pytest.raises(StorageError, match="does not exist"):
        await store.inbound_status(424242)


async def test_orders_seed_and_lookup(store: Store) -> None:
    placed = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
    order = {
        "order_id": "HL-1",
        "email": "a@example.com",
        "status": "shipped",
        "items": [{"sku": "X", "name": "Thing", "quantity": 1, "price_cents": 500}],
        "total_cents": 500,
        "placed_at": placed,
    }
    await store.seed_orders([order])
    await store.seed_orders(
        [{**order, "status": "delivered", "delivered_at": "2025-01-05T10:00:00+00:00"}]
    )
    found = await store.get_order("HL-1")
    assert found is not None
    assert found["status"] == "delivered"
    assert found["placed_at"] == placed
    assert found["delivered_at"] == datetime(2025, 1, 5, 10, tzinfo=UTC)
    assert (found["currency"], found["returnable"], found["items"][0]["sku"]) == ("USD", True, "X")
    assert await store.get_order("HL-404") is None
    with pytest.raises(StorageError, match="unknown fields"):
        await store.seed_orders([{**order, "colour": "red"}])


async def test_calls_before_start_raise(db_url: str) -> None:
    with pytest.raises(StorageError, match="not started"):
        await Store(db_url).route_counts()


async def test_receive_stores_once_and_turn_context_reads_state(store: Store) -> None:
    first = await store.receive("rest", "c-rx", "erin", "m-1", "hello", {"k": 1})
    again = await store.receive("rest", "c-rx", "erin", "m-1", "hello", {"k": 1})
    assert first.created
    assert not again.created
    assert again.inbound_id == first.inbound_id
    assert again.conversation.id == first.conversation.id
    context = await store.turn_context(first.inbound_id)
    assert (context.status, context.mode, context.state) == ("pending", "bot", None)
    await store.commit_turn(_turn(first.conversation.id, first.inbound_id, delivered=True))
    context = await store.turn_context(first.inbound_id)
    assert context.status == "processed"
    assert context.state == _turn(0, 0).state
    assert {m.status for m in await store.replies_to(first.inbound_id)} == {"delivered"}
    assert await store.undelivered("rest") == []
    with pytest.raises(StorageError, match="does not exist"):
        await store.turn_context(first.inbound_id + 1000)


async def test_receive_in_a_known_conversation_reads_its_mode_and_state(store: Store) -> None:
    first = await store.receive("rest", "c-known", "erin", "m-1", "hello")
    await store.commit_turn(_turn(first.conversation.id, first.inbound_id))
    await store.set_mode(first.conversation.id, "human")
    second = await store.receive("rest", "c-known", "erin", "m-2", "again", {"k": 2})
    assert second.created
    assert second.conversation.id == first.conversation.id
    context = second.context
    assert (context.status, context.mode, context.state) == ("pending", "human", _turn(0, 0).state)
    assert await store.turn_input(second.inbound_id) == (context, "again", {"k": 2})
    retried = await store.receive("rest", "c-known", "erin", "m-1", "hello")
    assert (retried.created, retried.context.status) == (False, "processed")


async def test_reply_source_is_the_answered_message(store: Store) -> None:
    conv_id, inbound_id = await _inbound(store)
    ids = await store.commit_turn(_turn(conv_id, inbound_id))
    pushed = await store.record_outbound(conv_id, {"text": "an agent's"})
    inbound = await store.message(inbound_id)
    assert await store.reply_source(ids[1]) == (conv_id, inbound.metadata)
    assert await store.reply_source(pushed) == (conv_id, None)
    with pytest.raises(StorageError, match="no outbound message"):
        await store.reply_source(inbound_id)


async def test_last_events_only(store: Store) -> None:
    conv_id, inbound_id = await _inbound(store)
    await store.commit_turn(_turn(conv_id, inbound_id))
    assert await store.events(conv_id, limit=1) == [
        {"event": "flow_started", "flow_id": "order_status"}
    ]


async def test_update_order(store: Store) -> None:
    await store.seed_orders(demo_orders())
    assert await store.update_order("HL-10004", {"status": "cancelled", "shipping_address": "1 Rd"})
    order = await store.get_order("HL-10004")
    assert order is not None
    assert (order["status"], order["shipping_address"]) == ("cancelled", "1 Rd")
    assert not await store.update_order("HL-404", {"status": "cancelled"})
    with pytest.raises(StorageError, match="cannot be changed"):
        await store.update_order("HL-10004", {"email": "x@y.z"})


async def test_kb_chunks_and_usage(store: Store) -> None:
    chunk = {
        "source": "returns.md",
        "chunk_index": 0,
        "title": "Returns",
        "heading": "Window",
        "text": "30 days.",
        "embedding": b"\x00\x01",
        "model": "minilm",
        "content_hash": "h1",
    }
    await store.replace_kb_source("returns.md", [chunk, {**chunk, "chunk_index": 1}])
    await store.replace_kb_source("returns.md", [chunk])
    await store.replace_kb_source("old.md", [{**chunk, "source": "old.md"}])
    assert await store.kb_hashes() == {"returns.md": ("h1", "minilm"), "old.md": ("h1", "minilm")}
    assert await store.delete_kb_sources(["returns.md"]) == 1
    chunks = await store.kb_chunks()
    assert [(c["source"], c["chunk_index"], c["embedding"]) for c in chunks] == [
        ("returns.md", 0, b"\x00\x01")
    ]
    usage = {"provider": "openai", "model": "m", "tokens_in": 10, "tokens_out": 5}
    await store.add_usage({**usage, "month": "2026-11", "cost_usd": 0.25})
    await store.add_usage({**usage, "month": "2026-11", "cost_usd": 0.5, "provider": "azure"})
    await store.add_usage({**usage, "month": "2026-10", "cost_usd": 9.0})
    assert await store.month_cost("2026-11") == 0.75
    assert await store.month_cost("2026-11", "azure") == 0.5
    assert await store.month_cost("2026-12") == 0.0


async def test_the_same_message_id_in_two_conversations_is_two_messages(store: Store) -> None:
    alice = await store.conversation("rest", "alice", "alice")
    mallory = await store.conversation("rest", "mallory", "mallory")
    first, _ = await store.record_inbound(alice.id, "rest", "2", "HL-10001", {})
    second, created = await store.record_inbound(mallory.id, "rest", "2", "hello", {})
    assert created
    assert second != first
    assert [m.text for m in await store.transcript(mallory.id)] == ["hello"]


@pytest.mark.parametrize(
    ("field", "value"),
    [("sender", "s" * 256), ("message id", "m" * 256), ("message text", "a\x00b")],
)
async def test_receive_refuses_what_the_schema_cannot_hold_once(
    store: Store, field: str, value: str
) -> None:
    sender = value if field == "sender" else "u"
    message_id = value if field == "message id" else "m1"
    text = value if field == "message text" else "hi"
    with pytest.raises(InvalidInput, match=field):
        await store.receive("rest", "c-limits", sender, message_id, text, {})


async def test_a_data_error_of_the_database_is_invalid_input_not_an_outage(
    store: Store, db_url: str
) -> None:
    """Past the store's own checks, PostgreSQL's data exceptions (class 22) are permanent."""
    if not db_url.startswith("postgresql"):
        pytest.skip("SQLite stores a NUL in text; only PostgreSQL refuses it")
    conv = await store.conversation("rest", "c-nul", "u")
    with pytest.raises(InvalidInput, match="refused the data"):
        await store.record_inbound(conv.id, "rest", None, "a\x00b", {})
