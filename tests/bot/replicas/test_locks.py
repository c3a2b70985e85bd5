"""RedisTurnLocks against the live Redis: two lock sets stand for two replicas."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import pytest

from bot.errors import StorageError
from bot.replicas.locks import RedisTurnLocks

if TYPE_CHECKING:
    from redis.asyncio import Redis

pytestmark = pytest.mark.timeout(60)
KEY = ("widget", "visitor-1")


async def test_turns_of_one_conversation_never_overlap(redis_client: Redis, prefix: str) -> None:
    a = RedisTurnLocks(redis_client, prefix, lease_s=5, wait_s=30)
    b = RedisTurnLocks(redis_client, prefix, lease_s=5, wait_s=30)
    inside: list[str] = []
    log: list[tuple[str, str]] = []

    async def turn(locks: RedisTurnLocks, name: str) -> None:
        async with locks.hold(KEY):
            inside.append(name)
            log.append(("enter", name))
            await asyncio.sleep(0.01)
            assert inside == [name]
            inside.remove(name)
            log.append(("exit", name))

    await asyncio.gather(*(turn(a if i % 2 else b, f"t{i}") for i in range(20)))
    assert len(log) == 40
    for i in range(0, 40, 2):  # enter and exit of the same turn, always adjacent
        assert log[i][0] == "enter"
        assert log[i + 1] == ("exit", log[i][1])
    assert await redis_client.exists(a.key(KEY)) == 0


async def test_other_conversations_do_not_wait(redis_client: Redis, prefix: str) -> None:
    a = RedisTurnLocks(redis_client, prefix, lease_s=5, wait_s=0.2)
    b = RedisTurnLocks(redis_client, prefix, lease_s=5, wait_s=0.2)
    async with a.hold(KEY), b.hold(("widget", "visitor-2")):
        with pytest.raises(StorageError, match="stayed taken"):
            async with b.hold(KEY):
                pass


async def test_a_dead_holders_lock_expires_with_its_lease(redis_client: Redis, prefix: str) -> None:
    # A replica SIGKILLed mid-turn: its lock key is there and nobody renews it.
    locks = RedisTurnLocks(redis_client, prefix, lease_s=1, wait_s=30)
    await redis_client.set(locks.key(KEY), "token-of-a-dead-replica", px=1000)
    async with locks.hold(KEY):
        assert await redis_client.get(locks.key(KEY)) != b"token-of-a-dead-replica"


async def test_the_lease_is_renewed_while_the_turn_runs(redis_client: Redis, prefix: str) -> None:
    a = RedisTurnLocks(redis_client, prefix, lease_s=0.3, wait_s=0.1)
    b = RedisTurnLocks(redis_client, prefix, lease_s=0.3, wait_s=0.1)
    async with a.hold(KEY):
        await asyncio.sleep(1.0)  # three leases: only renewal keeps it
        with pytest.raises(StorageError):
            async with b.hold(KEY):
                pass
    async with b.hold(KEY):
        pass


async def test_unreachable_redis_is_a_storage_error(prefix: str) -> None:
    from redis.asyncio import Redis

    dead = Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=1)
    try:
        with pytest.raises(StorageError, match="cannot take the turn lock"):
            async with RedisTurnLocks(dead, prefix, lease_s=1, wait_s=1).hold(KEY):
                pass
    finally:
        await dead.aclose()
