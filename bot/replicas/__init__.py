"""Several ``helpline run`` replicas on one PostgreSQL and one Redis.

With ``redis.url`` set the runtime swaps its in-process parts for these:

- :class:`~bot.replicas.bus.RedisBus`: live events reach views on any replica.
- :class:`~bot.replicas.locks.RedisTurnLocks`: one conversation's turns run one
  at a time across replicas; a killed replica's lock expires with its lease.
- :class:`bot.storage.claims.Claims`: one replica claims each outbox reply.
- :func:`~bot.replicas.recovery.recover_forever`: every replica periodically
  runs the turns of messages a dead replica accepted but never answered, and
  sweeps the outbox, under the same locks and claims.
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from typing import TYPE_CHECKING

from redis.asyncio import Redis

from bot.lifecycle import Service
from bot.replicas.bus import RedisBus
from bot.replicas.locks import RedisTurnLocks
from bot.storage.claims import Claims

if TYPE_CHECKING:
    from bot.config import RedisSettings
    from bot.storage.store import Store

__all__ = ["RedisBus", "RedisTurnLocks", "Replicas"]
_LOGGER = logging.getLogger(__name__)


class Replicas(Service):
    """The Redis-backed parts of one replica, built from the ``redis`` section.

    Args:
        settings: The ``redis`` section; its ``url`` must be set.
        store: The store the outbox claims use.
    """

    def __init__(self, settings: RedisSettings, store: Store) -> None:
        if not settings.url:
            raise ValueError("redis.url is not set")
        self.settings = settings
        self.replica_id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.client: Redis = Redis.from_url(
            settings.url, health_check_interval=10, socket_connect_timeout=5
        )
        prefix = settings.key_prefix
        self.bus = RedisBus(self.client, prefix)
        self.locks = RedisTurnLocks(
            self.client, prefix, settings.lock_lease_s, settings.lock_wait_s
        )
        self.claims = Claims(store, self.replica_id, settings.delivery_lease_s)
        store.claim_new_replies(self.replica_id, settings.delivery_lease_s)

    async def start(self) -> None:
        """Start the bus (it connects to Redis in the background)."""
        await self.bus.start()
        _LOGGER.info("Replica %s uses Redis for its bus, turn locks and recovery.", self.replica_id)

    async def stop(self) -> None:
        """Stop the bus and close the Redis connections."""
        await self.bus.stop()
        await self.client.aclose()
