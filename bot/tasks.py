"""Background tasks with an owner (CONVENTIONS 6; see opsdroid #1952).

Every long-lived object that starts tasks keeps them in one
:class:`OwnedTasks`: a failure is logged when the task ends, and ``stop``
cancels and awaits them all, so nothing is left pending at shutdown.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Coroutine

_LOGGER = logging.getLogger(__name__)


class OwnedTasks:
    """A set of running tasks that its owner cancels and awaits on stop."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()

    def __len__(self) -> int:
        return len(self._tasks)

    def spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]:
        """Run ``coro`` in a task owned by this set."""
        task = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            _LOGGER.error("Task %s failed.", task.get_name(), exc_info=task.exception())

    async def drain(self) -> None:
        """Wait until every task, including ones started meanwhile, has finished."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def wait(self, timeout_s: float) -> bool:
        """As :meth:`drain`, for at most ``timeout_s``; return whether all finished.

        Unlike a timeout around :meth:`drain`, the tasks still running at the
        deadline are left running (for :meth:`stop` to cancel).
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while self._tasks:
            left = deadline - loop.time()
            if left <= 0:
                return False
            await asyncio.wait(list(self._tasks), timeout=left)
        return True

    async def stop(self) -> None:
        """Cancel every task and wait for them to end."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
