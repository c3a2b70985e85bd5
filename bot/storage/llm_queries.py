"""Statements for the knowledge-base index and model usage (see :mod:`queries`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import Table, delete, func, select

from bot.storage.models import KBChunk, LLMUsage

if TYPE_CHECKING:
    from collections.abc import Sequence

    from sqlalchemy.ext.asyncio import AsyncConnection

KB_CHUNKS: Table = KBChunk.__table__  # type: ignore[assignment]
LLM_USAGE: Table = LLMUsage.__table__  # type: ignore[assignment]
_CHUNK_FIELDS = (
    "source",
    "chunk_index",
    "title",
    "heading",
    "text",
    "embedding",
    "model",
    "content_hash",
)


async def replace_kb_source(
    conn: AsyncConnection, source: str, chunks: Sequence[dict[str, Any]]
) -> None:
    """Replace every chunk of one article with ``chunks``."""
    await conn.execute(delete(KB_CHUNKS).where(KB_CHUNKS.c.source == source))
    if chunks:
        await conn.execute(KB_CHUNKS.insert(), [{k: c[k] for k in _CHUNK_FIELDS} for c in chunks])


async def delete_kb_sources(conn: AsyncConnection, keep: Sequence[str]) -> int:
    """Delete the chunks of every article not in ``keep``; return how many went."""
    result = await conn.execute(delete(KB_CHUNKS).where(KB_CHUNKS.c.source.not_in(list(keep))))
    return int(result.rowcount or 0)


async def kb_hashes(conn: AsyncConnection) -> dict[str, tuple[str, str]]:
    """Return each article's ``(content_hash, model)`` as indexed."""
    c = KB_CHUNKS.c
    query = select(c.source, c.content_hash, c.model).where(c.chunk_index == 0)
    return {row.source: (row.content_hash, row.model) for row in await conn.execute(query)}


async def kb_chunks(conn: AsyncConnection) -> list[dict[str, Any]]:
    """Return every chunk, ordered by article and position."""
    c = KB_CHUNKS.c
    query = select(*(getattr(c, f) for f in _CHUNK_FIELDS)).order_by(c.source, c.chunk_index)
    return [dict(row._mapping) for row in await conn.execute(query)]


async def add_usage(conn: AsyncConnection, usage: dict[str, Any]) -> None:
    """Record one model call (``month``, ``provider``, ``model``, tokens, cost)."""
    await conn.execute(LLM_USAGE.insert().values(**usage))


async def month_cost(conn: AsyncConnection, month: str, provider: str | None = None) -> float:
    """Return the USD spent in ``month`` (``YYYY-MM``), for one provider or all."""
    u = LLM_USAGE.c
    query = select(func.coalesce(func.sum(u.cost_usd), 0.0)).where(u.month == month)
    if provider is not None:
        query = query.where(u.provider == provider)
    return float((await conn.execute(query)).scalar_one())
