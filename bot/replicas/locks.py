"""Turn locks across replicas: one Redis lock per conversation, with a lease.

The lock is redis-py's (``SET NX PX`` with a random token, released by a
script that checks the token). It is taken with a short lease that a
background task renews while the turn runs, so a replica that is SIGKILLed
mid-turn leaves a lock that expires within one lease and the conversation is
never stuck. Within a replica an asyncio lock is taken first, so turns that
meet on the same replica wait in order instead of polling Redis.

While Redis cannot be reached a turn waits for its lock (retrying with
backoff, up to ``wait_s``) and then fails with :class:`StorageError`; its
message stays pending and recovery runs it later. A turn never starts
without its lock. Should a lease be lost while a turn runs (Redis restarted
and forgot the key), the turn is not interrupted: the database still refuses
to commit the same message's turn twice (``commit_turn`` needs the message
pending), but another message of the same conversation may start its turn
on another replica before this one ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from redis.exceptions import LockError, RedisError

from bot import metrics
from bot.errors import StorageError
from bot.manager import local_locks

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from redis.asyncio import Redis
    from redis.asyncio.lock import Lock

_LOGGER = logging.getLogger(__name__)
# Backoff while Redis cannot be reached (doubling, within the lock wait).
_RETRY_BASE_S = 0.1
_RETRY_MAX_S = 1.0


class RedisTurnLocks:
    """Per-conversation turn locks shared by every replica on one Redis.

    Args:
        client: The Redis client.
        prefix: Key prefix; the lock of a conversation is ``<prefix>:lock:<channel>:<id>``.
        lease_s: How long a lock outlives a replica that stopped renewing it.
        wait_s: How long a turn waits for the lock before it fails (the
            message stays pending, and recovery runs it later).
    """

    def __init__(self, client: Redis, prefix: str, lease_s: float, wait_s: float) -> None:
        self._client = client
        self._prefix = prefix
        self._lease_s = lease_s
        self._wait_s = wait_s
        self._local = local_locks()

    def key(self, conversation: tuple[str, str]) -> str:
        """The Redis key of a conversation's lock."""
        channel, external_id = conversation
        return f"{self._prefix}:lock:{channel}:{external_id}"

    @asynccontextmanager
    async def hold(self, key: tuple[str, str]) -> AsyncIterator[None]:
        """Hold the conversation's lock on every replica for the block.

        Raises:
            StorageError: Redis cannot be reached, or the lock stayed taken
                for ``wait_s``.
        """
        async with self._local.hold(key):
            lock = self._client.lock(
                self.key(key),
                timeout=self._lease_s,
                sleep=min(0.05, self._lease_s / 10),
                blocking_timeout=self._wait_s,
                thread_local=False,
            )
            await self._acquire(lock)
            # Most turns end well within a third of the lease: the renewing
            # task starts only for those that do not (a timer is cheaper).
            renewing: list[asyncio.Task[None]] = []

            def start_renewing() -> None:
                renewing.append(
                    asyncio.create_task(self._renew(lock), name=f"lock:{self.key(key)}")
                )

            timer = asyncio.get_running_loop().call_later(self._lease_s / 3, start_renewing)
            try:
                yield
            finally:
                timer.cancel()
                for task in renewing:
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
                await self._release(lock)

    async def _acquire(self, lock: Lock) -> None:
        """Take the lock within ``wait_s``, trying again while Redis is unreachable.

        A Redis that restarts or drops the connection only delays the turn:
        the turn never starts without the lock.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._wait_s
        delay, failing = _RETRY_BASE_S, False
        while True:
            try:
                acquired = await lock.acquire(blocking_timeout=max(deadline - loop.time(), 0))
            except RedisError as exc:
                if loop.time() + delay > deadline:
                    raise StorageError(
                        f"cannot take the turn lock {lock.name!r} for {self._wait_s} s: {exc}"
                    ) from exc
                metrics.BACKEND_RETRIES.labels("redis").inc()
                if not failing:
                    _LOGGER.warning(
                        "Cannot take the turn lock %s now: %s; retrying.", lock.name, exc
                    )
                failing = True
                await asyncio.sleep(delay)
                delay = min(delay * 2, _RETRY_MAX_S)
                continue
            if not acquired:
                raise StorageError(f"the turn lock {lock.name!r} stayed taken for {self._wait_s} s")
            return

    async def _renew(self, lock: Lock) -> None:
        """Push the lease forward now and every third of it until cancelled."""
        while True:
            try:
                await lock.reacquire()
            except LockError:
                _LOGGER.warning("The turn lock %s was lost; its lease had expired.", lock.name)
                return
            except RedisError as exc:
                _LOGGER.warning("Cannot renew the turn lock %s now: %s", lock.name, exc)
            await asyncio.sleep(self._lease_s / 3)

    @staticmethod
    async def _release(lock: Lock) -> None:
        try:
            await lock.release()
        except LockError:
            _LOGGER.warning("The turn lock %s had expired before its turn ended.", lock.name)
        except RedisError as exc:
            # Its lease ends it shortly; nothing is lost.
            _LOGGER.warning("Cannot release the turn lock %s now: %s", lock.name, exc)
