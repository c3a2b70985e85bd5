"""The bus for several replicas: :class:`bot.bus.LocalBus` plus Redis pub/sub.

``publish`` hands the event to this replica's subscribers at once and queues
it for a background publisher, which sends it to the Redis channel
``<prefix>:bus:<topic>``; it never waits for Redis. The publisher sends what
queued meanwhile in one pipeline, so a busy replica pays one round trip for
many events. A reader on every
replica pattern-subscribes to ``<prefix>:bus:*`` and hands other replicas'
events to its local subscribers. One publisher connection and one reader
connection per replica keep each replica's events in order per topic.

When Redis goes away the publisher keeps a bounded backlog (the oldest
events go first when it is full) and both sides reconnect with backoff,
logging a warning once per outage. Once the reader is back, every local
subscriber gets an ``overflow`` event, as when it falls behind, so it
resynchronises from the store instead of trusting a stream with a gap.
"""

from __future__ import annotations

import asyncio
import collections
import itertools
import json
import logging
import uuid
from typing import TYPE_CHECKING, Any

from redis.exceptions import RedisError

from bot import metrics
from bot.bus import LocalBus
from bot.lifecycle import Service
from bot.tasks import OwnedTasks

if TYPE_CHECKING:
    from redis.asyncio import Redis
    from redis.asyncio.client import PubSub

    from bot.bus import Event, Subscription

_LOGGER = logging.getLogger(__name__)
# Queued events sent per round trip (one pipeline of PUBLISH commands).
_PUBLISH_BATCH = 256


class RedisBus(Service):
    """A bus whose subscribers on any replica get the events of every replica.

    Args:
        client: The Redis client (each connection is taken from its pool).
        prefix: The key prefix shared by the replicas of one deployment.
        max_backlog: Events a slow subscriber may fall behind (as LocalBus).
        max_unsent: Events kept for Redis while it is unreachable.
        retry_base_s: The first reconnection delay; it doubles up to ``retry_max_s``.
        retry_max_s: The longest delay between reconnection attempts.
    """

    def __init__(
        self,
        client: Redis,
        prefix: str,
        *,
        max_backlog: int = 1000,
        max_unsent: int = 10_000,
        retry_base_s: float = 0.1,
        retry_max_s: float = 5.0,
    ) -> None:
        self._client = client
        self._channel_prefix = f"{prefix}:bus:"
        self.local = LocalBus(max_backlog)
        self.origin = uuid.uuid4().hex
        # Our own events come back from Redis too; they start with this.
        self._own_prefix = json.dumps({"origin": self.origin})[:-1].encode()
        self._unsent: collections.deque[tuple[str, str]] = collections.deque(maxlen=max_unsent)
        self._wake = asyncio.Event()
        self._listening = asyncio.Event()
        self._retry = (retry_base_s, retry_max_s)
        self._tasks = OwnedTasks()
        self._closing = False
        self.dropped = 0

    def publish(self, topic: str, event: Event) -> None:
        """Deliver ``event`` to local subscribers now and queue it for the other replicas."""
        self.local.publish(topic, event)
        if len(self._unsent) == self._unsent.maxlen:
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 1000 == 0:
                _LOGGER.warning("Redis is behind; %d bus events were dropped.", self.dropped)
        payload = json.dumps({"origin": self.origin, "event": event}, default=str)
        self._unsent.append((self._channel_prefix + topic, payload))
        self._wake.set()

    def subscribe(self, topic: str) -> Subscription:
        """Receive the topic's events, from this replica and every other, from now on."""
        return self.local.subscribe(topic)

    async def start(self) -> None:
        """Start the publisher and the reader; they connect (and reconnect) on their own."""
        self._tasks.spawn(self._publish_forever(), "bus:publisher")
        self._tasks.spawn(self._read_forever(), "bus:reader")

    async def wait_listening(self) -> None:
        """Wait until the reader is subscribed (events published after that reach us)."""
        await self._listening.wait()

    async def stop(self) -> None:
        """Stop both tasks; events not yet sent are dropped (live views resync)."""
        # redis-py can swallow a cancellation mid-command, so the loops also
        # check this flag (and the publisher is woken to see it).
        self._closing = True
        self._wake.set()
        await self._tasks.stop()

    async def _publish_forever(self) -> None:
        delay, failing = self._retry[0], False
        while not self._closing:
            await self._wake.wait()
            self._wake.clear()
            while self._unsent and not self._closing:
                batch = list(itertools.islice(self._unsent, _PUBLISH_BATCH))
                try:
                    async with self._client.pipeline(transaction=False) as pipe:
                        for channel, payload in batch:
                            pipe.publish(channel, payload)
                        await pipe.execute()
                except (RedisError, OSError) as exc:
                    metrics.BACKEND_RETRIES.labels("redis").inc()
                    if not failing:
                        _LOGGER.warning("Cannot publish bus events to Redis: %s; retrying.", exc)
                    failing = True
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, self._retry[1])
                    continue
                if failing:
                    _LOGGER.info("Publishing bus events to Redis again.")
                delay, failing = self._retry[0], False
                for item in batch:  # those a full backlog dropped meanwhile are gone already
                    if self._unsent and self._unsent[0] is item:
                        self._unsent.popleft()

    async def _read_forever(self) -> None:
        delay, failing = self._retry[0], False
        while not self._closing:
            pubsub = self._client.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.psubscribe(self._channel_prefix + "*")
                if failing:
                    _LOGGER.info("Receiving bus events from Redis again.")
                    self.local.resync()  # events of the outage are gone
                delay, failing = self._retry[0], False
                self._listening.set()
                await self._read(pubsub)
            except (RedisError, OSError) as exc:
                metrics.BACKEND_RETRIES.labels("redis").inc()
                if not failing:
                    _LOGGER.warning("Lost the Redis bus subscription: %s; reconnecting.", exc)
                failing = True
                self._listening.clear()
            finally:
                await pubsub.aclose()
            await asyncio.sleep(delay)
            delay = min(delay * 2, self._retry[1])

    async def _read(self, pubsub: PubSub) -> None:
        async for message in pubsub.listen():
            if message.get("type") != "pmessage":
                continue
            self._dispatch(message)

    def _dispatch(self, message: dict[str, Any]) -> None:
        """Hand one Redis message from another replica to the local subscribers."""
        data = message["data"]
        if isinstance(data, bytes) and data.startswith(self._own_prefix):
            return  # ours, delivered locally when published (spares the JSON parse)
        channel = _text(message["channel"])
        try:
            body = json.loads(message["data"])
            origin, event = body["origin"], body["event"]
        except (ValueError, KeyError, TypeError):
            _LOGGER.warning("Ignoring a malformed bus message on %s.", channel)
            return
        if origin == self.origin or not isinstance(event, dict):
            return  # our own events reached our subscribers when published
        self.local.publish(channel.removeprefix(self._channel_prefix), event)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
