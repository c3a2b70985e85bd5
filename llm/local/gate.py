"""A one-slot gate with two bounded FIFO queues and a maximum wait.

Customers' turns and ``/v1`` API calls wait in separate queues, each bounded by
``max_queue``: a freed slot goes to the oldest customer waiter first, so a customer
never waits behind API calls (only behind the one generating, whose length the
API's ``max_tokens`` ceiling bounds), and API calls cannot fill the customers' queue.

The gate is released from the worker thread when a generation really ends, so its
state sits behind a ``threading.Lock`` and waiters are woken on their own event loop
with ``call_soon_threadsafe``.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import deque

from bot.errors import ModelBusy

_LOGGER = logging.getLogger(__name__)

_Waiter = tuple[asyncio.AbstractEventLoop, "asyncio.Future[None]"]


class RequestGate:
    """Admit one request at a time; refuse when the queue is full or the wait too long.

    Args:
        max_queue: How many requests may wait for the slot.
        max_wait_s: How long a request may wait before it gets ``ModelBusy``.
    """

    def __init__(self, max_queue: int, max_wait_s: float) -> None:
        self.max_queue = max_queue
        self.max_wait_s = max_wait_s
        self._lock = threading.Lock()
        self._busy = False
        self._waiters: deque[_Waiter] = deque()
        self._background: deque[_Waiter] = deque()

    @property
    def depth(self) -> int:
        """How many requests wait for the slot now."""
        return len(self._waiters) + len(self._background)

    @property
    def busy(self) -> bool:
        """Whether a request holds the slot."""
        return self._busy

    async def acquire(self, *, background: bool = False) -> None:
        """Wait for the slot in FIFO order; ``background`` requests (API calls) go last.

        Raises:
            ModelBusy: The queue is full, or the slot did not come within ``max_wait_s``.
        """
        loop = asyncio.get_running_loop()
        queue = self._background if background else self._waiters
        with self._lock:
            if not self._busy and not self._waiters and not self._background:
                self._busy = True
                return
            if len(queue) >= self.max_queue:
                raise ModelBusy(f"The local model's queue is full ({self.max_queue} waiting).")
            future: asyncio.Future[None] = loop.create_future()
            waiter = (loop, future)
            queue.append(waiter)
        try:
            await asyncio.wait_for(asyncio.shield(future), self.max_wait_s)
        except (TimeoutError, asyncio.CancelledError) as exc:
            if self._withdraw(queue, waiter):
                if isinstance(exc, TimeoutError):
                    raise ModelBusy(
                        f"Waited more than {self.max_wait_s:g} s for the local model."
                    ) from None
                raise
            # The slot was handed over while we gave up: take it, then pass it on.
            await future
            self.release()
            if isinstance(exc, asyncio.CancelledError):
                raise
            raise ModelBusy("The local model's slot came too late.") from None

    def _withdraw(self, queue: deque[_Waiter], waiter: _Waiter) -> bool:
        """Remove a waiter that gives up; ``False`` if it was already handed the slot."""
        with self._lock:
            try:
                queue.remove(waiter)
            except ValueError:
                return False
            return True

    def release(self) -> None:
        """Free the slot and hand it to the oldest customer, else API, waiter; thread-safe."""
        with self._lock:
            queue = self._waiters or self._background
            if not queue:
                self._busy = False
                return
            loop, future = queue.popleft()
        try:
            loop.call_soon_threadsafe(_wake, future)
        except RuntimeError:  # Its loop is closed: nobody will take the slot there.
            _LOGGER.debug("A waiter's event loop is closed; passing the slot on.")
            self.release()


def _wake(future: asyncio.Future[None]) -> None:
    """Hand the slot to a waiter (on its loop)."""
    if not future.done():
        future.set_result(None)
