"""Conversations with data in every table, made through the real store paths.

Shared by the lifecycle tests of the store and of the CLI.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import text, update

from bot.storage import TurnRecord
from bot.storage.console_queries import NOTES
from bot.storage.console_store import ConsoleStore
from bot.storage.inbox_queries import INBOX
from bot.storage.queries import CONVERSATIONS, MESSAGES

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection

    from bot.storage import Store

# Every table that names a conversation, as the schema has it.
CONVERSATION_TABLES = (
    "messages",
    "turns",
    "events",
    "inbox",
    "notes",
    "audit_log",
    "llm_usage",
)


async def agent_id(store: Store, email: str = "ana@helpline.test") -> int:
    """Create (once) the console agent who handles the handoffs."""
    db = ConsoleStore(store)
    record = await db.login_record(email)
    if record is not None:
        return int(record["id"])
    return int((await db.create_agent(email, "Ana", "agent", "not-a-real-hash"))["id"])


async def customer(store: Store, channel: str, external_id: str, sender: str) -> int:
    """A conversation with a bot turn, a handoff, an agent reply, a note and a CSAT.

    Returns:
        The conversation's store id.
    """
    received = await store.receive(channel, external_id, sender, f"{external_id}-1", "hi", {})
    cid = received.conversation.id
    turn = TurnRecord(
        conversation_id=cid,
        inbound_id=received.inbound_id,
        state={"stack": [], "slots": {"email": sender}},
        events=[{"event": "user", "text": "hi"}, {"event": "bot", "text": "Hello!"}],
        replies=[{"text": "Hello!"}],
        route="cloud",
        provider="fake",
        cost_usd=0.01,
    )
    await store.commit_turn(turn)
    await store.add_usage(
        {
            "month": "2026-12",
            "provider": "fake",
            "model": "m",
            "cost_usd": 0.01,
            "conversation_id": cid,
        }
    )
    second, _ = await store.record_inbound(cid, channel, f"{external_id}-2", "a human please", {})
    await _console(store, cid, second)
    return cid


async def _console(store: Store, cid: int, inbound_id: int) -> None:
    db = ConsoleStore(store)
    agent = await agent_id(store)
    await db.hand_off(cid, "user_request")
    await db.claim(cid, agent)
    await db.audit(agent, "claim", cid)
    await store.record_outbound(cid, {"text": "Ana here."}, in_reply_to=inbound_id)
    await db.first_reply(cid)
    note = await db.add_note(cid, agent, "wants a refund")
    await db.audit(agent, "note", cid, {"note_id": note["id"]})
    await db.resolve(cid, csat=True)
    assert await db.record_csat(cid, 5)


async def rows(store: Store, ids: list[int]) -> dict[str, int]:
    """Count the rows per table that name one of the conversations ``ids``."""
    marks = ", ".join(str(int(i)) for i in ids) or "NULL"

    async def op(conn: AsyncConnection) -> dict[str, int]:
        counts = {}
        for table in CONVERSATION_TABLES:
            query = text(f"SELECT count(*) FROM {table} WHERE conversation_id IN ({marks})")
            counts[table] = int((await conn.execute(query)).scalar_one())
        query = text(f"SELECT count(*) FROM conversations WHERE id IN ({marks})")
        counts["conversations"] = int((await conn.execute(query)).scalar_one())
        return counts

    return await store.run("rows", op)


async def backdate(store: Store, cid: int, days: int) -> None:
    """Move every activity timestamp of one conversation ``days`` days into the past."""
    when = datetime.now(UTC) - timedelta(days=days)
    targets = (
        (CONVERSATIONS, CONVERSATIONS.c.id, "updated_at"),
        (MESSAGES, MESSAGES.c.conversation_id, "created_at"),
        (INBOX, INBOX.c.conversation_id, "updated_at"),
        (NOTES, NOTES.c.conversation_id, "created_at"),
    )

    async def op(conn: AsyncConnection) -> None:
        for table, key, column in targets:
            await conn.execute(update(table).where(key == cid).values({column: when}))

    await store.run("backdate", op)
