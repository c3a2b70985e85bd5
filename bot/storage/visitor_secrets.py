"""Hashed visitor secrets in a conversation's metadata (no column of their own).

A channel whose customers are identified only by an id the browser keeps
(the widget's visitor id) also hands each browser a random secret and keeps
only its SHA-256 here, under :data:`SECRETS_KEY` in ``conversations.metadata``.
Nothing else writes a conversation's metadata. A few digests are kept (one per
tab that opened the conversation before it existed), newest last.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

from sqlalchemy import select, update

from bot.storage.models import utcnow
from bot.storage.queries import CONVERSATIONS, conversation_row, get_or_create_conversation

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection

    from bot.storage.records import ConversationRow
    from bot.storage.store import Store

#: The metadata key holding the list of hex SHA-256 digests.
SECRETS_KEY = "visitor_secrets"
#: At most this many digests are kept per conversation.
MAX_SECRETS = 8


def digests(conversation: ConversationRow) -> list[str]:
    """The secret digests stored for ``conversation`` (empty for one never claimed)."""
    stored = conversation.metadata.get(SECRETS_KEY)
    return [d for d in stored if isinstance(d, str)] if isinstance(stored, list) else []


async def _find(conn: AsyncConnection, channel: str, external_id: str) -> ConversationRow | None:
    c = CONVERSATIONS.c
    query = select(CONVERSATIONS).where(c.channel == channel, c.external_id == external_id)
    row = (await conn.execute(query)).one_or_none()
    return None if row is None else conversation_row(row)


async def _claim(conn: AsyncConnection, channel: str, external_id: str, digest: str) -> int:
    conversation = await get_or_create_conversation(conn, channel, external_id, external_id)
    c = CONVERSATIONS.c
    # Lock the row (PostgreSQL; SQLite runs one transaction at a time anyway).
    query = select(c.metadata).where(c.id == conversation.id).with_for_update()
    metadata = dict((await conn.execute(query)).scalar_one() or {})
    kept = [d for d in metadata.get(SECRETS_KEY) or [] if isinstance(d, str) and d != digest]
    metadata[SECRETS_KEY] = [*kept, digest][-MAX_SECRETS:]
    await conn.execute(
        update(CONVERSATIONS)
        .where(c.id == conversation.id)
        .values(metadata=metadata, updated_at=utcnow())
    )
    return conversation.id


async def find(store: Store, channel: str, external_id: str) -> ConversationRow | None:
    """Return the conversation ``(channel, external_id)`` without creating it."""
    op = functools.partial(_find, channel=channel, external_id=external_id)
    return await store.run("find_conversation", op, autocommit=True)


async def claim(store: Store, channel: str, external_id: str, digest: str) -> int:
    """Create the conversation if it is new and add ``digest`` to its secrets.

    The caller has decided the visitor may hold the conversation; this only
    records the digest. Returns the conversation's store id.
    """
    op = functools.partial(_claim, channel=channel, external_id=external_id, digest=digest)
    return await store.run("claim_visitor_secret", op)
