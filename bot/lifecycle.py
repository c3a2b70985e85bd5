"""The start/stop lifecycle every long-lived object shares (CONVENTIONS 6).

A class that has ``async start()`` and ``async stop()`` inherits
:class:`Service` to work as an async context manager: if ``start`` fails,
``stop`` still runs, so nothing half-opened leaks.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Self

if TYPE_CHECKING:
    from types import TracebackType


class Service:
    """Mixin: ``async with obj:`` runs ``start()`` then, always, ``stop()``."""

    async def start(self) -> None:
        """Open what the object needs; subclasses override it."""

    async def stop(self) -> None:
        """Release it again; must be safe after a failed or partial start."""

    async def __aenter__(self) -> Self:
        try:
            await self.start()
        except BaseException:
            await self.stop()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()
