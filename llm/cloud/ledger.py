"""Where cloud usage is recorded, so the monthly budget can be enforced.

:class:`UsageLedger` is what :class:`~llm.cloud.chain.CloudChain` needs; the
:class:`~bot.storage.Store` satisfies it on the database, and
:class:`MemoryLedger` keeps usage in memory for a bot run without a database.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any, Protocol


class UsageLedger(Protocol):
    """Records model calls and sums their cost per month."""

    async def add_usage(self, usage: dict[str, Any]) -> None:
        """Record one call.

        Args:
            usage: ``month`` (``YYYY-MM``), ``provider``, ``model``,
                ``tokens_in``, ``tokens_out``, ``cost_usd`` and optionally
                ``conversation_id``.
        """
        ...

    async def month_cost(self, month: str, provider: str | None = None) -> float:
        """Return the USD spent in ``month``, for one provider or all."""
        ...


class MemoryLedger:
    """A :class:`UsageLedger` in process memory; it forgets on restart."""

    def __init__(self) -> None:
        self._rows: list[dict[str, Any]] = []
        self._lock = asyncio.Lock()

    @property
    def rows(self) -> list[dict[str, Any]]:
        """A copy of every recorded call, oldest first."""
        return [dict(row) for row in self._rows]

    async def add_usage(self, usage: dict[str, Any]) -> None:
        """Record one call (see :meth:`UsageLedger.add_usage`)."""
        async with self._lock:
            self._rows.append(dict(usage))

    async def month_cost(self, month: str, provider: str | None = None) -> float:
        """Return the USD spent in ``month``, for one provider or all."""
        async with self._lock:
            return float(
                sum(
                    row.get("cost_usd", 0.0)
                    for row in self._rows
                    if row["month"] == month and provider in (None, row["provider"])
                )
            )


def month_of(moment: datetime) -> str:
    """Return the ``YYYY-MM`` budget month of ``moment`` (UTC)."""
    return moment.astimezone(UTC).strftime("%Y-%m")


def cost_usd(
    tokens_in: int, tokens_out: int, price_in_per_m: float, price_out_per_m: float
) -> float:
    """Return what a call cost from a price table in USD per million tokens."""
    return (tokens_in * price_in_per_m + tokens_out * price_out_per_m) / 1_000_000
