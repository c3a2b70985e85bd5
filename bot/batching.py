"""Group commit: many callers' small writes folded into one call, with no timer.

The first caller flushes its items at once. Items that arrive while that
flush runs wait for it and go together in the next one, so under load N
writes cost about one round trip each batch, and alone a write costs what it
did before. Every caller returns once its own items are written, or raises
the error of the flush that carried them.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Generic, TypeVar

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Iterable

_T = TypeVar("_T")


@dataclass
class _Batch(Generic[_T]):
    items: list[_T] = field(default_factory=list)
    done: bool = False
    error: Exception | None = None


class Coalescer(Generic[_T]):
    """Folds concurrent :meth:`add` calls into as few ``flush`` calls as possible.

    Args:
        flush: Writes one batch; it must be safe to repeat for the same items
            (a flush cancelled half way is run again by the next caller).
    """

    def __init__(self, flush: Callable[[list[_T]], Awaitable[None]]) -> None:
        self._flush = flush
        self._open: _Batch[_T] = _Batch()
        self._lock = asyncio.Lock()
        self.flushes = 0

    async def add(self, items: Iterable[_T]) -> None:
        """Write ``items`` in the current batch; return once that batch is written.

        Raises:
            Exception: Whatever the flush carrying these items raised.
        """
        batch = self._open
        batch.items.extend(items)
        async with self._lock:  # FIFO: whoever gets it next flushes what queued meanwhile
            if batch.done:
                if batch.error is not None:
                    raise batch.error
                return
            if batch is self._open:
                self._open = _Batch()
            self.flushes += 1
            try:
                await self._flush(batch.items)
            except Exception as exc:
                batch.done, batch.error = True, exc
                raise
            batch.done = True
