"""SIGTERM drains a real ``helpline run``: running turns finish and deliver, then sockets close.

The turn is really slow: the test holds an exclusive lock on the ``orders``
table of a fresh PostgreSQL database, so the order lookup of the turn waits
in the database until the test lets it go, after the SIGTERM.
"""

from __future__ import annotations

import asyncio
import os
import signal
from typing import TYPE_CHECKING, Any

import aiohttp
import asyncpg
import pytest

from tests.bot.replicas import cluster
from tests.conftest import DEFAULT_PG_URL, _asyncpg_dsn, _postgres_database
from tests.processes import free_port

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.timeout(300)
VISITOR = "visitor-drain-1"


async def _next(ws: aiohttp.ClientWebSocketResponse, kind: str) -> dict[str, Any]:
    """The next frame of type ``kind`` (others are skipped)."""
    async for msg in ws:
        frame = msg.json()
        if frame.get("type") == kind:
            return dict(frame)
    raise AssertionError(f"the socket closed before a {kind!r} frame")


async def _reply(ws: aiohttp.ClientWebSocketResponse) -> dict[str, Any]:
    """The next reply of the bot."""
    while True:
        frame = await _next(ws, "message")
        if frame["direction"] == "out":
            return frame


async def _blocked(conn: asyncpg.Connection) -> bool:
    """Whether a query of the server waits for the test's lock on ``orders``.

    (The statement text is not shown yet while asyncpg prepares it, so only
    the wait is checked; nothing else takes table locks in this database.)
    """
    waiting = await conn.fetchval(
        "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
        " AND wait_event = 'relation' AND datname = current_database()"
    )
    return bool(waiting)


async def test_sigterm_finishes_the_running_turn_then_closes_with_a_reconnect_hint(
    tmp_path: Path,
) -> None:
    async with _postgres_database(DEFAULT_PG_URL) as db_url:
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        path = _slow_config(tmp_path, db_url, port)
        log = tmp_path / "server.log"
        with cluster.replica(path, port, log) as proc:
            async with aiohttp.ClientSession() as session:
                ws = await session.ws_connect(f"{base}/widget/ws", headers=cluster.ORIGIN)
                await ws.send_json({"type": "hello", "visitor": VISITOR, "last_id": 0})
                await _next(ws, "synced")
                await ws.send_json(
                    {"type": "message", "client_id": "drain-0001", "text": "/check_order_status"}
                )
                await _reply(ws)  # the bot asks for the order number
                locker = await asyncpg.connect(_asyncpg_dsn(db_url))
                try:
                    tx = locker.transaction()
                    await tx.start()
                    await locker.execute("LOCK TABLE orders IN ACCESS EXCLUSIVE MODE")
                    text = '/inform{"order_id": "HL-10001"}'
                    await ws.send_json({"type": "message", "client_id": "drain-0002", "text": text})
                    inbound = (await _next(ws, "ack"))["id"]
                    await cluster.until(lambda: _blocked(locker))  # the turn is running
                    os.kill(proc.pid, signal.SIGTERM)
                    await cluster.until(lambda: asyncio.to_thread(_said, log, "Draining:"))
                    with pytest.raises(aiohttp.ClientConnectionError):
                        await session.get(f"{base}/healthz")  # no new connections
                    late = {"type": "message", "client_id": "drain-0003", "text": "/thank"}
                    await ws.send_json(late)
                    refused = await _next(ws, "error")
                    assert refused["reason"] == "unavailable", refused
                    assert refused["client_id"] == "drain-0003", refused
                    assert refused["retry"], refused
                    await tx.commit()  # the turn goes on
                finally:
                    await locker.close()
                rest: list[dict[str, Any]] = []
                await asyncio.wait_for(cluster.frames(ws, rest), 120)  # a hang guard
                close_code = ws.close_code
            code = await asyncio.to_thread(proc.wait, 120)  # a hang guard
        assert code == 0, log.read_text()[-3000:]
        replies = await cluster.rows(
            db_url,
            "SELECT id, status FROM messages WHERE in_reply_to = $1 ORDER BY id",
            inbound,
        )
        late_rows = await cluster.rows(
            db_url, "SELECT id FROM messages WHERE external_id LIKE '%drain-0003'"
        )
    assert replies, "the running turn stored no reply"
    assert all(r["status"] == "delivered" for r in replies), replies
    pushed = [f["id"] for f in rest if f.get("type") == "message" and f["direction"] == "out"]
    assert pushed == [r["id"] for r in replies]  # delivered live before the close
    assert rest[-1] == {"type": "reconnect", "after_ms": 1000}, rest
    assert close_code == aiohttp.WSCloseCode.SERVICE_RESTART
    assert not late_rows  # refused while draining, so never stored
    assert _said(log, "Drained (all done)")


def _slow_config(tmp_path: Path, db_url: str, port: int) -> Path:
    """A lone replica whose turns and drain may take two minutes (the lock holds them)."""
    return cluster.config(
        tmp_path,
        db_url,
        "",
        port,
        redis=None,
        server={"port": port, "drain_timeout_s": 120},
        dialogue={"action_timeout_s": 120, "turn_timeout_s": 120},
    )


def _said(log: Path, line: str) -> bool:
    return line in log.read_text(errors="replace")


async def test_sigterm_waits_for_a_running_rest_turn_and_refuses_new_rest_messages(
    tmp_path: Path,
) -> None:
    async with _postgres_database(DEFAULT_PG_URL) as db_url:
        port = free_port()
        url = f"http://127.0.0.1:{port}/webhooks/rest/webhook"
        path = _slow_config(tmp_path, db_url, port)
        log = tmp_path / "server.log"
        with cluster.replica(path, port, log) as proc:
            async with aiohttp.ClientSession() as session:

                async def send(sender: str, text: str) -> tuple[int, Any]:
                    async with session.post(url, json={"sender": sender, "message": text}) as r:
                        return r.status, await r.json()

                # Two kept-alive connections: one carries the slow turn, the
                # other a message sent after the SIGTERM (the listener is closed).
                await asyncio.gather(send("warm-a", "/greet"), send("warm-b", "/greet"))
                assert (await send("rest-drain", "/check_order_status"))[0] == 200
                locker = await asyncpg.connect(_asyncpg_dsn(db_url))
                try:
                    tx = locker.transaction()
                    await tx.start()
                    await locker.execute("LOCK TABLE orders IN ACCESS EXCLUSIVE MODE")
                    slow = asyncio.create_task(
                        send("rest-drain", '/inform{"order_id": "HL-10001"}')
                    )
                    await cluster.until(lambda: _blocked(locker))  # the turn is running
                    os.kill(proc.pid, signal.SIGTERM)
                    await cluster.until(lambda: asyncio.to_thread(_said, log, "Draining:"))
                    late_status, late = await send("rest-late", "/thank")
                    assert not _said(log, "Drained ("), "the drain did not wait for the turn"
                    await tx.commit()  # the turn goes on
                finally:
                    await locker.close()
                status, replies = await asyncio.wait_for(slow, 120)  # a hang guard
            code = await asyncio.to_thread(proc.wait, 120)  # a hang guard
        assert code == 0, log.read_text()[-3000:]
        late_rows = await cluster.rows(
            db_url, "SELECT id FROM conversations WHERE external_id = 'rest-late'"
        )
    assert (late_status, late["error"]) == (503, "unavailable"), late
    assert status == 200, replies
    assert replies
    assert "HL-10001" in " ".join(r["text"] for r in replies)
    assert not late_rows  # refused while draining, so never stored
    assert _said(log, "Drained (all done)")
