"""Two real ``helpline run`` replicas on one fresh PostgreSQL database and the live Redis."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import aiohttp
import asyncpg
import pytest

from tests.bot.replicas import cluster
from tests.conftest import DEFAULT_PG_URL, _postgres_database
from tests.processes import free_port

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path

pytestmark = pytest.mark.timeout(300)
VISITOR = "visitor-replicas-1"


@pytest.fixture
async def replicas(
    tmp_path: Path, redis_client: Any, prefix: str
) -> AsyncIterator[tuple[str, str, str]]:
    """Start replicas A and B; yield their base URLs and the database URL."""
    async with _postgres_database(DEFAULT_PG_URL) as db_url:
        with contextlib.ExitStack() as stack:
            bases = []
            for name in ("a", "b"):
                port = free_port()
                path = cluster.config(tmp_path, db_url, prefix, port)
                stack.enter_context(cluster.replica(path, port, tmp_path / f"{name}.log"))
                bases.append(f"http://127.0.0.1:{port}")
            yield bases[0], bases[1], db_url


async def test_widget_sockets_on_two_replicas_see_each_other_and_replies_come_once(
    replicas: tuple[str, str, str],
) -> None:
    base_a, base_b, db_url = replicas
    frames: dict[str, list[dict[str, Any]]] = {"a": [], "b": []}
    headers = {"Origin": "http://127.0.0.1"}
    async with aiohttp.ClientSession() as session:
        sockets = {
            name: await session.ws_connect(f"{base}/widget/ws", headers=headers)
            for name, base in (("a", base_a), ("b", base_b))
        }
        readers = [asyncio.create_task(cluster.frames(ws, frames[n])) for n, ws in sockets.items()]
        for ws in sockets.values():
            await ws.send_json({"type": "hello", "visitor": VISITOR, "last_id": 0})
        await cluster.until(lambda: _ready(frames))
        await sockets["a"].send_json(
            {"type": "message", "client_id": "client-0001", "text": "hello"}
        )
        await sockets["b"].send_json(
            {"type": "message", "client_id": "client-0002", "text": "where is my order?"}
        )

        async def settled() -> list[asyncpg.Record] | None:
            rows = await cluster.rows(
                db_url,
                "SELECT m.id, m.direction, m.status FROM messages m JOIN conversations c"
                " ON c.id = m.conversation_id WHERE c.external_id = $1 ORDER BY m.id",
                VISITOR,
            )
            done = [r for r in rows if r["status"] in ("processed", "delivered")]
            outs = [r for r in rows if r["direction"] == "out"]
            if len(done) != len(rows) or len(rows) < 4 or not outs:
                return None
            ids = {r["id"] for r in rows}
            seen = [{f["id"] for f in frames[n] if f.get("type") == "message"} for n in "ab"]
            return rows if all(s == ids for s in seen) else None

        rows = await cluster.until(settled)
        total = await cluster.until(
            lambda: _sum_if(session, (base_a, base_b), sum(r["direction"] == "out" for r in rows))
        )
        for ws in sockets.values():
            await ws.close()
        for task in readers:
            await task
    outs = [r["id"] for r in rows if r["direction"] == "out"]
    assert total == len(outs)  # every reply delivered by exactly one replica
    for name in "ab":
        ids = [f["id"] for f in frames[name] if f.get("type") == "message"]
        assert sorted(ids) == sorted({r["id"] for r in rows}), name  # each message once, live


def _ready(frames: dict[str, list[dict[str, Any]]]) -> Any:
    async def check() -> bool:
        return all(any(f.get("type") == "synced" for f in frames[n]) for n in "ab")

    return check()


async def _sum_if(session: aiohttp.ClientSession, bases: tuple[str, ...], want: int) -> float:
    total = sum([await cluster.delivered_ok(session, base) for base in bases])
    await asyncio.sleep(0.5)  # a late duplicate would show in a second reading
    again = sum([await cluster.delivered_ok(session, base) for base in bases])
    return again if total == again >= want else 0.0


async def test_one_conversations_turns_on_two_replicas_never_overlap(
    replicas: tuple[str, str, str],
) -> None:
    base_a, base_b, db_url = replicas
    sender = "rest-replicas-1"
    async with aiohttp.ClientSession() as session:

        async def post(base: str, i: int) -> list[Any]:
            body = {
                "sender": sender,
                "message": f"where is my order HL-{1000 + i}?",
                "message_id": f"m-{i}",
            }
            async with session.post(f"{base}/webhooks/rest/webhook", json=body) as resp:
                assert resp.status == 200, await resp.text()
                return list(await resp.json())

        answers = await asyncio.gather(*(post(base_a if i % 2 else base_b, i) for i in range(16)))
    assert all(answers)
    turns = await cluster.rows(
        db_url,
        "SELECT t.created_at, t.latency_ms FROM turns t JOIN conversations c"
        " ON c.id = t.conversation_id WHERE c.external_id = $1 ORDER BY t.created_at",
        sender,
    )
    assert len(turns) == 16
    spans = [
        (t["created_at"] - timedelta(milliseconds=t["latency_ms"]), t["created_at"]) for t in turns
    ]
    for (_, end), (start, _) in itertools.pairwise(spans):
        assert start >= end  # the next turn began after the previous one was committed
