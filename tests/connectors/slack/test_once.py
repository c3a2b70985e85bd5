"""A reply is posted once even when the outbox sends it again after a crash.

Slack has no idempotency key, so every reply carries message metadata with
its outbox id, and a reply that an earlier attempt may have posted is looked
up in its thread (``conversations.replies``) before it is posted again.
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp.test_utils import TestClient
from sqlalchemy import update

from bot.server import RUNTIME
from bot.storage import Store
from bot.storage.queries import MESSAGES
from tests.connectors.slack.fake_slack import TEAM_ID, FakeSlack
from tests.connectors.slack.helpers import CUSTOMER, DM, dm, post_event

Client = TestClient[Any, Any]
PER_USER = f"{TEAM_ID}:{CUSTOMER}"


async def _pending_again(store: Store, message_id: int) -> None:
    """What a crash between the post and the delivered mark leaves behind."""

    async def op(conn: Any) -> None:
        query = update(MESSAGES).where(MESSAGES.c.id == message_id)
        await conn.execute(query.values(status="pending", delivered_at=None))

    await store.run("test_pending_again", op)


async def _delivered_reply(client: Client, fake: FakeSlack, event_id: str) -> int:
    await post_event(client, dm("/check_order", "1700000000.000100", event_id))
    await fake.wait_for("chat.postMessage")
    store = client.app[RUNTIME].store
    async with asyncio.timeout(15):  # until the delivered mark is written
        while True:
            if not await store.undelivered("slack"):
                break
            await asyncio.sleep(0.02)
    conversation = await store.conversation("slack", PER_USER, CUSTOMER)
    (reply,) = [m for m in await store.transcript(conversation.id) if m.direction == "out"]
    return reply.id


async def test_a_reply_posted_before_a_crash_is_not_posted_again(
    client: Client, fake: FakeSlack
) -> None:
    reply_id = await _delivered_reply(client, fake, "Ev0ONCE")
    (posted,) = fake.successful("chat.postMessage")
    assert posted.params["metadata"] == {
        "event_type": "helpline_reply",
        "event_payload": {"message_id": reply_id},
    }
    runtime = client.app[RUNTIME]
    await _pending_again(runtime.store, reply_id)
    conversation = await runtime.store.conversation("slack", PER_USER, CUSTOMER)
    never_sent = await runtime.store.record_outbound(conversation.id, {"text": "Still there?"})
    assert await runtime.dispatcher.sweep("slack") == 2
    posts = fake.successful("chat.postMessage")
    assert [p.params["text"] for p in posts] == [posted.params["text"], "Still there?"]
    assert posts[1].params["metadata"]["event_payload"] == {"message_id": never_sent}
    checks = fake.successful("conversations.replies")
    assert len(checks) == 2  # one look per reply from the outbox, none for live ones
    assert {c.params["ts"] for c in checks} == {"1700000000.000100"}
    assert all(c.params["channel"] == DM for c in checks)
    assert await runtime.store.undelivered("slack") == []


async def test_a_reply_is_sent_when_slack_cannot_be_asked(
    sqlite_client: Client, fake: FakeSlack
) -> None:
    client = sqlite_client
    reply_id = await _delivered_reply(client, fake, "Ev0ASK")
    runtime = client.app[RUNTIME]
    await _pending_again(runtime.store, reply_id)
    fake.fail_next(1, status=500, method="conversations.replies")
    assert await runtime.dispatcher.sweep("slack") == 1
    assert [c.status for c in fake.calls if c.method == "conversations.replies"] == [500]
    posts = fake.successful("chat.postMessage")
    assert len(posts) == 2  # at least once: a second post rather than none
    assert await runtime.store.undelivered("slack") == []


async def test_a_post_whose_answer_was_lost_is_not_posted_again(
    client: Client, fake: FakeSlack
) -> None:
    fake.lose_answers = 1  # Slack posts it, then the connection breaks
    await post_event(client, dm("/check_order", "1700000000.000100", "Ev0LOST"))
    store = client.app[RUNTIME].store
    conversation = await _conversation_when_settled(client, fake)
    (reply,) = [m for m in await store.transcript(conversation) if m.direction == "out"]
    posts = [c for c in fake.calls if c.method == "chat.postMessage"]
    assert [c.answer_lost for c in posts] == [True]  # one post, never repeated
    (check,) = fake.successful("conversations.replies")  # the retry looked first
    assert check.params["include_all_metadata"] == "true"
    assert reply.status == "delivered"


async def _conversation_when_settled(client: Client, fake: FakeSlack) -> int:
    """Wait until a conversation reply is stored and none is pending; its conversation id."""
    store = client.app[RUNTIME].store
    await fake.wait_until(lambda: any(c.answer_lost for c in fake.calls))
    async with asyncio.timeout(15):
        while True:
            conversation = await store.conversation("slack", PER_USER, CUSTOMER)
            replies = [m for m in await store.transcript(conversation.id) if m.direction == "out"]
            if replies and all(m.status == "delivered" for m in replies):
                return conversation.id
            await asyncio.sleep(0.05)
