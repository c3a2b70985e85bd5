"""The store calls outside the conversation path: the knowledge base, model usage, orders.

:class:`bot.storage.store.Store` inherits them; each runs through its
``_run`` (one transaction, retries, error translation).
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any, TypeVar

from bot.storage import llm_queries, order_queries

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Sequence

    from sqlalchemy.ext.asyncio import AsyncConnection

_T = TypeVar("_T")


class ModelAndOrderCalls:
    """Knowledge-base chunks, model usage and the demo orders, for :class:`Store`."""

    async def _run(
        self, what: str, op: Callable[[AsyncConnection], Awaitable[_T]], *, autocommit: bool = False
    ) -> _T:
        raise NotImplementedError  # the store's

    async def replace_kb_source(self, source: str, chunks: Sequence[dict[str, Any]]) -> None:
        """Replace the indexed chunks of one knowledge-base article."""
        op = functools.partial(llm_queries.replace_kb_source, source=source, chunks=chunks)
        await self._run("replace_kb_source", op)

    async def delete_kb_sources(self, keep: Sequence[str]) -> int:
        """Drop the chunks of articles that are gone; return how many chunks went."""
        op = functools.partial(llm_queries.delete_kb_sources, keep=keep)
        return await self._run("delete_kb_sources", op)

    async def kb_hashes(self) -> dict[str, tuple[str, str]]:
        """Return each indexed article's ``(content_hash, model)``."""
        return await self._run("kb_hashes", llm_queries.kb_hashes)

    async def kb_chunks(self) -> list[dict[str, Any]]:
        """Return every indexed chunk (with its embedding bytes)."""
        return await self._run("kb_chunks", llm_queries.kb_chunks)

    async def add_usage(self, usage: dict[str, Any]) -> None:
        """Record one model call: ``month``, ``provider``, ``model``, tokens, ``cost_usd``."""
        await self._run("add_usage", functools.partial(llm_queries.add_usage, usage=usage))

    async def month_cost(self, month: str, provider: str | None = None) -> float:
        """Return the USD spent on models in ``month`` (``YYYY-MM``)."""
        op = functools.partial(llm_queries.month_cost, month=month, provider=provider)
        return await self._run("month_cost", op)

    async def get_order(self, order_id: str) -> dict[str, Any] | None:
        """Return an order's columns as a dict, or ``None`` if there is none."""
        op = functools.partial(order_queries.get_order, order_id=order_id)
        return await self._run("get_order", op, autocommit=True)

    async def update_order(self, order_id: str, changes: dict[str, Any]) -> bool:
        """Change an order's status, shipping address or returnability.

        Returns:
            Whether the order exists.
        """
        op = functools.partial(order_queries.update_order, order_id=order_id, changes=changes)
        return await self._run("update_order", op)

    async def seed_orders(self, orders: Sequence[dict[str, Any]]) -> None:
        """Insert or update orders (keyed on ``order_id``); safe to repeat."""
        await self._run("seed_orders", functools.partial(order_queries.seed_orders, orders=orders))
