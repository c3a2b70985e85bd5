"""RedisBus against the live Redis: two buses stand for two replicas."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from bot.replicas.bus import RedisBus

from .conftest import REDIS_URL

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from redis.asyncio import Redis

import contextlib

import pytest

pytestmark = pytest.mark.timeout(60)


@contextlib.asynccontextmanager
async def _replica(client: Redis, prefix: str, **kwargs: int) -> AsyncIterator[RedisBus]:
    bus = RedisBus(client, prefix, **kwargs)
    await bus.start()
    try:
        async with asyncio.timeout(10):
            await bus.wait_listening()
        yield bus
    finally:
        await bus.stop()


async def _take(events: object, n: int) -> list[dict[str, object]]:
    got = []
    async with asyncio.timeout(10):  # a hang guard
        for _ in range(n):
            got.append(await events.get())  # type: ignore[attr-defined]
    return got


async def test_events_reach_the_other_replica_in_order(redis_client: Redis, prefix: str) -> None:
    async with _replica(redis_client, prefix) as a, _replica(redis_client, prefix) as b:
        with b.subscribe("conv:widget:v1") as on_b, a.subscribe("conv:widget:v1") as on_a:
            for i in range(200):
                a.publish("conv:widget:v1", {"type": "message", "id": i})
            remote = await _take(on_b, 200)
            local = await _take(on_a, 200)
    assert [e["id"] for e in remote] == list(range(200))
    assert [e["id"] for e in local] == list(range(200))  # once each: not echoed back
    assert on_a._queue.empty()
    assert {e["topic"] for e in remote} == {"conv:widget:v1"}


async def test_all_topic_and_other_topics(redis_client: Redis, prefix: str) -> None:
    async with _replica(redis_client, prefix) as a, _replica(redis_client, prefix) as b:
        with b.subscribe("*") as everything, b.subscribe("conv:rest:x") as only_x:
            a.publish("conv:rest:y", {"type": "typing"})
            a.publish("conv:rest:x", {"type": "message", "id": 1})
            seen = await _take(everything, 2)
            x = await _take(only_x, 1)
    assert [e["topic"] for e in seen] == ["conv:rest:y", "conv:rest:x"]
    assert x == [{"type": "message", "id": 1, "topic": "conv:rest:x"}]


async def test_other_deployments_are_not_heard(redis_client: Redis, prefix: str) -> None:
    async with _replica(redis_client, prefix) as a, _replica(redis_client, prefix + "x") as b:
        with b.subscribe("*") as events, a.subscribe("*") as mine:
            a.publish("t", {"n": 1})
            await _take(mine, 1)
            b.publish("t", {"n": 2})  # b hears itself: a's event would have come first
            assert [e["n"] for e in await _take(events, 1)] == [2]


async def test_a_slow_subscriber_overflows_as_on_the_local_bus(
    redis_client: Redis, prefix: str
) -> None:
    async with _replica(redis_client, prefix) as a, _replica(redis_client, prefix) as b:
        b.local = b.local.__class__(max_backlog=3)
        with b.subscribe("t") as slow, b.subscribe("u") as marker:
            for i in range(10):
                a.publish("t", {"n": i})
            a.publish("u", {"done": True})
            await _take(marker, 1)  # every event of t reached b before this one
            got = [slow._queue.get_nowait() for _ in range(slow._queue.qsize())]
    assert {"type": "overflow", "topic": "t"} in got
    assert [e["n"] for e in got if "n" in e] == [9]


async def test_unreachable_redis_never_blocks_publish(prefix: str) -> None:
    from redis.asyncio import Redis

    dead = Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=1)
    bus = RedisBus(dead, prefix, max_unsent=5, retry_base_s=0.05, retry_max_s=0.05)
    await bus.start()
    try:
        with bus.subscribe("t") as events:
            for i in range(20):
                bus.publish("t", {"n": i})  # returns at once; the backlog is bounded
            local = await _take(events, 20)
        assert [e["n"] for e in local] == list(range(20))
        assert bus.dropped == 15
    finally:
        await bus.stop()
        await dead.aclose()


async def _kill_connections(admin: Redis, name: str) -> int:
    killed = 0
    for client in await admin.client_list():
        if client.get("name") == name:
            killed += int(await admin.client_kill_filter(_id=client["id"]))
    return killed


async def test_a_dropped_redis_link_reconnects_and_resyncs(
    redis_client: Redis, prefix: str
) -> None:
    from redis.asyncio import Redis

    name = f"{prefix}-b"
    client_b = Redis.from_url(REDIS_URL, client_name=name)
    async with (
        _replica(redis_client, prefix) as a,
        _replica(client_b, prefix, retry_base_s=0, retry_max_s=0) as b,
    ):
        with b.subscribe("t") as events:
            assert await _kill_connections(redis_client, name) >= 1  # the reader's link
            b.publish("t", {"n": "during"})  # never raises
            seen = [await _take(events, 1)]
            while seen[-1][0].get("type") != "overflow":  # the resync after reconnecting
                seen.append(await _take(events, 1))
            async with asyncio.timeout(10):
                await b.wait_listening()
            a.publish("t", {"n": "after"})
            assert (await _take(events, 1))[0]["n"] == "after"
    await client_b.aclose()
