"""Live events for views that watch conversations (the widget, the console).

The bus is in-process for one replica; a Redis pub/sub bus with the same
protocol replaces it for many. Publishing never blocks: a subscriber that
falls too far behind loses its backlog and gets an ``{"type": "overflow"}``
event (then resynchronises from the store), so one slow browser cannot
stall a turn.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Callable
from typing import Any, Protocol

_LOGGER = logging.getLogger(__name__)
Event = dict[str, Any]
ALL = "*"


def conversation_topic(channel: str, external_id: str) -> str:
    """The topic of one conversation's events."""
    return f"conv:{channel}:{external_id}"


class Bus(Protocol):
    """Publish events on topics; subscribers get them in order."""

    def publish(self, topic: str, event: Event) -> None:
        """Send ``event`` to every subscriber of ``topic`` (and of :data:`ALL`)."""
        ...

    def subscribe(self, topic: str) -> Subscription:
        """Receive the topic's events from now on, until closed."""
        ...


class Subscription:
    """Events of one topic, registered when created; close it to unsubscribe.

    Use it as ``with bus.subscribe(topic) as events: async for e in events``.
    """

    def __init__(self, queue: asyncio.Queue[Event], unsubscribe: Callable[[], None]) -> None:
        self._queue = queue
        self._unsubscribe = unsubscribe

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> Event:
        return await self._queue.get()

    async def get(self) -> Event:
        """Return the next event (wrap in ``asyncio.timeout`` to bound the wait)."""
        return await self._queue.get()

    def close(self) -> None:
        """Stop receiving events."""
        self._unsubscribe()

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class LocalBus:
    """The in-process bus: one bounded queue per subscriber."""

    def __init__(self, max_backlog: int = 1000) -> None:
        if max_backlog < 2:
            raise ValueError("max_backlog must be at least 2")
        self._max_backlog = max_backlog
        self._subscribers: defaultdict[str, set[asyncio.Queue[Event]]] = defaultdict(set)

    def publish(self, topic: str, event: Event) -> None:
        """Queue ``event`` for each subscriber of ``topic`` and of :data:`ALL`."""
        event = {**event, "topic": topic}
        for key in (topic, ALL) if topic != ALL else (ALL,):
            for queue in self._subscribers.get(key, ()):
                if queue.full():
                    # The subscriber is too far behind: drop its backlog and
                    # tell it, so it resynchronises from the store.
                    _LOGGER.warning("A subscriber of %s is behind; dropping its backlog.", key)
                    while not queue.empty():
                        queue.get_nowait()
                    queue.put_nowait({"type": "overflow", "topic": topic})
                queue.put_nowait(event)

    def subscribe(self, topic: str) -> Subscription:
        """Subscribe to ``topic`` now; iterate the result, and close it when done."""
        queue: asyncio.Queue[Event] = asyncio.Queue(self._max_backlog)
        self._subscribers[topic].add(queue)

        def unsubscribe() -> None:
            subscribers = self._subscribers.get(topic)
            if subscribers is not None:
                subscribers.discard(queue)
                if not subscribers:
                    del self._subscribers[topic]

        return Subscription(queue, unsubscribe)

    def subscribers(self, topic: str) -> int:
        """How many iterators are subscribed to ``topic``."""
        return len(self._subscribers.get(topic, ()))

    def resync(self) -> None:
        """Tell every subscriber it may have missed events (e.g. the Redis link was down).

        Each gets its backlog dropped and an ``overflow`` event, as when it
        falls behind, so it resynchronises from the store.
        """
        for topic, queues in self._subscribers.items():
            for queue in queues:
                while not queue.empty():
                    queue.get_nowait()
                queue.put_nowait({"type": "overflow", "topic": topic})
