"""A replica SIGKILLed in the middle of turns under load loses nothing and repeats nothing.

Replicas A and B share a fresh PostgreSQL database and the live Redis. Widget
visitors on A run the bench script while A's whole process group is killed;
B's periodic recovery runs the turns A had accepted, and its outbox sweep
delivers the replies A stored but never delivered. Then A is restarted, and
every conversation goes on on either replica with each reply seen once.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections import Counter
from typing import TYPE_CHECKING, Any

import aiohttp
import pytest

from bot.bench_widget import SCRIPT
from tests.bot.replicas import cluster
from tests.conftest import DEFAULT_PG_URL, _postgres_database
from tests.processes import free_port

if TYPE_CHECKING:
    from pathlib import Path

    from redis.asyncio import Redis

pytestmark = pytest.mark.timeout(400)
VISITORS = 24
KILL_AFTER_ACKS = VISITORS  # well inside the 3 * VISITORS messages of the load


async def _visitor(
    ws: aiohttp.ClientWebSocketResponse, name: str, acked: dict[str, int], secrets: dict[str, str]
) -> None:
    """Send the script without waiting for replies; record each ack until the socket dies.

    The visitor secret of the server's hello goes into ``secrets``: it resumes the conversation.
    """
    got: list[dict[str, Any]] = []
    reader = asyncio.create_task(cluster.frames(ws, got))
    await ws.send_json({"type": "hello", "visitor": name, "last_id": 0})
    with contextlib.suppress(ConnectionError, RuntimeError, aiohttp.ClientError):
        for turn, text in enumerate(SCRIPT):
            client_id = f"{name}-turn-{turn}"
            await ws.send_json({"type": "message", "client_id": client_id, "text": text})
    await reader  # ends when replica A dies
    for frame in got:
        if frame.get("type") == "ack":
            acked[frame["client_id"]] = frame["id"]
        elif frame.get("type") == "hello":
            secrets[name] = frame["secret"]


async def _history(
    session: aiohttp.ClientSession, base: str, name: str, secret: str
) -> list[dict[str, Any]]:
    """Reconnect ``name`` to ``base`` with ``resume`` and return the frames up to ``synced``."""
    got: list[dict[str, Any]] = []
    async with session.ws_connect(f"{base}/widget/ws", headers=cluster.ORIGIN) as ws:
        hello = {"type": "hello", "visitor": name, "secret": secret, "last_id": 0, "resume": True}
        await ws.send_json(hello)
        async for msg in ws:
            frame = msg.json()
            got.append(frame)
            if frame.get("type") == "synced":
                break
    return got


async def _one_more_turn(session: aiohttp.ClientSession, base: str, name: str, secret: str) -> int:
    """Send one more message in ``name``'s conversation; return the id of its first reply."""
    async with session.ws_connect(f"{base}/widget/ws", headers=cluster.ORIGIN) as ws:
        await ws.send_json({"type": "hello", "visitor": name, "secret": secret, "last_id": 0})
        await ws.send_json({"type": "message", "client_id": f"{name}-after", "text": "/thank"})
        ack = None
        async for msg in ws:
            frame = msg.json()
            if frame.get("type") == "ack":
                ack = frame["id"]
            elif frame.get("type") == "message" and frame.get("direction") == "out" and ack:
                return int(frame["id"])
    raise AssertionError(f"{name}: the socket closed before the reply")


async def test_sigkill_mid_turn_loses_and_repeats_nothing(
    tmp_path: Path, redis_client: Redis, prefix: str
) -> None:
    async with _postgres_database(DEFAULT_PG_URL) as db_url:
        with contextlib.ExitStack() as stack:
            procs, bases, ports, paths = {}, {}, {}, {}
            for name in ("a", "b"):
                ports[name] = free_port()
                paths[name] = cluster.config(tmp_path, db_url, prefix, ports[name])
                procs[name] = stack.enter_context(
                    cluster.replica(paths[name], ports[name], tmp_path / f"{name}.log")
                )
                bases[name] = f"http://127.0.0.1:{ports[name]}"
            async with aiohttp.ClientSession() as session:
                secrets = await _crash_and_check(session, bases, procs["a"].pid, db_url, tmp_path)
                await _no_lock_left(redis_client, prefix)
                # A is restarted (as an orchestrator would) next to B.
                restarted = tmp_path / "a-restarted.log"
                stack.enter_context(cluster.replica(paths["a"], ports["a"], restarted))
                names = [f"crash-visitor-{i:02d}" for i in range(VISITORS)]
                firsts = await asyncio.gather(
                    *(
                        _one_more_turn(session, bases["ab"[i % 2]], n, secrets[n])
                        for i, n in enumerate(names)
                    )
                )
                assert all(firsts)  # every conversation takes a new turn after the crash
                # From the restarted replica too, every reply is there once.
                await _each_reply_once(session, bases["a"], secrets, db_url)


async def _crash_and_check(
    session: aiohttp.ClientSession, bases: dict[str, str], pid: int, db_url: str, tmp_path: Path
) -> dict[str, str]:
    """Kill A under load and check B finishes its turns; return each visitor's secret."""
    names = [f"crash-visitor-{i:02d}" for i in range(VISITORS)]
    acked: dict[str, int] = {}
    secrets: dict[str, str] = {}
    sockets = [
        await session.ws_connect(f"{bases['a']}/widget/ws", headers=cluster.ORIGIN) for _ in names
    ]
    live = asyncio.gather(
        *(_visitor(ws, n, acked, secrets) for ws, n in zip(sockets, names, strict=True))
    )
    await cluster.until(lambda: _stored(db_url))
    os.killpg(pid, signal.SIGKILL)
    at_kill = await cluster.rows(
        db_url,
        "SELECT count(*) AS n FROM messages WHERE direction = 'in' AND status = 'pending'",
    )
    await asyncio.wait_for(live, 60)  # hang guard: the sockets end with the process
    assert acked, "no message was acknowledged before the kill"
    assert sorted(secrets) == names  # each hello issued the visitor's secret

    async def settled() -> bool:
        left = await cluster.rows(
            db_url,
            "SELECT count(*) AS n FROM messages WHERE status != 'delivered' AND direction = 'out'"
            " OR status = 'pending' AND direction = 'in'",
        )
        return int(left[0]["n"]) == 0

    await cluster.until(settled, 120)
    stored = await cluster.rows(
        db_url,
        "SELECT m.id, m.external_id, m.status,"
        " (SELECT count(*) FROM messages r WHERE r.in_reply_to = m.id) AS replies"
        " FROM messages m WHERE m.direction = 'in'",
    )
    by_key = Counter(r["external_id"] for r in stored)
    for client_id, inbound_id in acked.items():
        key = f"{client_id.rsplit('-turn-', 1)[0]}:{client_id}"
        assert by_key[key] == 1, key  # stored exactly once
        row = next(r for r in stored if r["id"] == inbound_id)
        assert row["status"] == "processed", row
        assert row["replies"] >= 1, row  # its turn ran and its replies are stored
    log_b = (tmp_path / "b.log").read_text()
    # The kill landed mid-turn: accepted turns were still pending, and B ran them.
    assert int(at_kill[0]["n"]) > 0
    assert "Recovered message" in log_b
    await _each_reply_once(session, bases["b"], secrets, db_url)
    return secrets


async def _each_reply_once(
    session: aiohttp.ClientSession, base: str, secrets: dict[str, str], db_url: str
) -> None:
    """Each visitor's replayed history on ``base`` holds each of its stored replies once."""
    outs = await cluster.rows(
        db_url,
        "SELECT m.id, c.external_id AS visitor FROM messages m JOIN conversations c"
        " ON c.id = m.conversation_id WHERE m.direction = 'out'",
    )
    for name, secret in secrets.items():
        frames = await _history(session, base, name, secret)
        seen = Counter(f["id"] for f in frames if f.get("direction") == "out")
        want = {r["id"] for r in outs if r["visitor"] == name}
        assert set(seen) == want, name  # every reply is there after the crash
        assert all(n == 1 for n in seen.values()), seen  # and once


async def _stored(db_url: str) -> bool:
    """Whether enough messages are stored to kill A in the middle of their turns."""
    got = await cluster.rows(db_url, "SELECT count(*) AS n FROM messages WHERE direction = 'in'")
    return int(got[0]["n"]) >= KILL_AFTER_ACKS


async def _no_lock_left(redis: Redis, prefix: str) -> None:
    """The dead replica's lock leases expire: no conversation stays locked."""

    async def free() -> bool:
        return not [key async for key in redis.scan_iter(match=f"{prefix}:lock:*")]

    await cluster.until(free, 30)
