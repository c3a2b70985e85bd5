"""A real ``helpline run`` keeps going while its PostgreSQL or Redis restarts.

Each test starts a private PostgreSQL and a private Redis (the shared ones
serve other tests), two replicas on them (or one without Redis), and widget
sockets on them; then it stops one server for a while as clients keep
sending, and starts it again on the same port. Every message that got an ack must end processed and
answered, the others get a retryable error, and nothing exits.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import aiohttp
import asyncpg
import pytest

from tests.conftest import _asyncpg_dsn
from tests.processes import clean_env, free_port, serve
from tests.services import PrivatePostgres, PrivateRedis

if TYPE_CHECKING:
    import subprocess
    from collections.abc import AsyncIterator, Iterator

pytestmark = pytest.mark.timeout(400)
ROOT = Path(__file__).parents[3]
HEADERS = {"Origin": "http://127.0.0.1"}
_S = TypeVar("_S", PrivatePostgres, PrivateRedis)


def _started(server: _S) -> Iterator[_S]:
    """Start ``server`` for the fixture's test; remove it afterwards."""
    try:
        server.start()
        yield server
    finally:
        server.close()


@pytest.fixture
def postgres() -> Iterator[PrivatePostgres]:
    """A private PostgreSQL, started."""
    yield from _started(PrivatePostgres())


@pytest.fixture
def redis_server() -> Iterator[PrivateRedis]:
    """A private Redis, started."""
    yield from _started(PrivateRedis())


def _config(folder: Path, db_url: str, redis_url: str | None, port: int) -> Path:
    settings = {
        "bot": {"path": str(ROOT / "flows")},
        "storage": {"url": db_url},
        "models": {"cache_dir": str(ROOT / "var" / "models")},
        "server": {"port": port},
        "redis": {
            "url": redis_url or "",
            "key_prefix": "restarts",
            "recovery_interval_s": 1,
            "lock_lease_s": 3,
            "lock_wait_s": 30,
        },
        "connectors": {"rest": {}, "widget": {"allowed_origins": ["*"]}},
        "llm": {"enabled": False},
        "logging": {"json": False},
    }
    path = folder / f"helpline-{port}.yml"
    path.write_text(json.dumps(settings))
    return path


@pytest.fixture
def replicas(
    tmp_path: Path, postgres: PrivatePostgres, redis_server: PrivateRedis
) -> Iterator[list[tuple[str, subprocess.Popen[bytes]]]]:
    """Two ``helpline run`` replicas on the private servers: (base URL, process)."""
    with contextlib.ExitStack() as stack:
        running = []
        for name in ("a", "b"):
            port = free_port()
            config = _config(tmp_path, postgres.url, redis_server.url, port)
            proc = stack.enter_context(
                serve(
                    [sys.executable, "-m", "bot", "--config", str(config), "run"],
                    cwd=tmp_path,
                    env=clean_env(),
                    health_url=f"http://127.0.0.1:{port}/healthz",
                    log_path=tmp_path / f"{name}.log",
                    limit_s=180,
                )
            )
            running.append((f"http://127.0.0.1:{port}", proc))
        yield running


class Widget:
    """One widget socket and every frame it received."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.frames: list[dict[str, Any]] = []
        self.reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for msg in self.ws:
            if msg.type is aiohttp.WSMsgType.TEXT:
                self.frames.append(json.loads(msg.data))

    def answer(self, client_id: str) -> dict[str, Any] | None:
        """The ack or error frame that answered ``client_id``, if any yet."""
        for frame in self.frames:
            if frame.get("client_id") == client_id and frame.get("type") in ("ack", "error"):
                return frame
        return None

    def message_ids(self) -> set[int]:
        """The ids of the message frames received."""
        return {int(f["id"]) for f in self.frames if f.get("type") == "message"}

    async def send(self, client_id: str, text: str) -> dict[str, Any]:
        """Send a message and wait for its ack or error frame."""
        await self.ws.send_json({"type": "message", "client_id": client_id, "text": text})
        return await _until(lambda: _now(self.answer(client_id)))

    async def close(self) -> None:
        """Close the socket and wait for the reader."""
        await self.ws.close()
        await self.reader


@contextlib.asynccontextmanager
async def _widgets(
    session: aiohttp.ClientSession, bases: list[str], visitor: str
) -> AsyncIterator[list[Widget]]:
    widgets = [Widget(await session.ws_connect(f"{b}/widget/ws", headers=HEADERS)) for b in bases]
    try:
        for widget in widgets:
            await widget.ws.send_json({"type": "hello", "visitor": visitor, "last_id": 0})
        for widget in widgets:
            await _until(lambda w=widget: _now(any(f["type"] == "synced" for f in w.frames)))
        yield widgets
    finally:
        for widget in widgets:
            await widget.close()


async def _now(value: Any) -> Any:
    return value


async def _until(check: Any) -> Any:
    async with asyncio.timeout(90):  # a hang guard, not a threshold
        while True:
            result = await check()
            if result:
                return result
            await asyncio.sleep(0.1)  # polling other processes and a database


async def _health(session: aiohttp.ClientSession, base: str) -> int:
    async with session.get(f"{base}/healthz") as resp:
        return resp.status


async def _rows(db_url: str, visitor: str) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(_asyncpg_dsn(db_url))
    try:
        query = (
            "SELECT m.id, m.direction, m.status FROM messages m JOIN conversations c"
            " ON c.id = m.conversation_id WHERE c.external_id = $1 ORDER BY m.id"
        )
        return list(await conn.fetch(query, visitor))
    finally:
        await conn.close()


async def _settled(db_url: str, visitor: str, acked: set[int], widgets: list[Widget]) -> bool:
    """Every acked message is processed and answered, and every socket saw all of it."""
    rows = await _rows(db_url, visitor)
    inbound = {r["id"] for r in rows if r["direction"] == "in"}
    if not acked <= inbound or any(r["status"] == "pending" for r in rows):
        return False
    if sum(r["direction"] == "out" for r in rows) < len(inbound):
        return False
    ids = {r["id"] for r in rows}
    return all(w.message_ids() == ids for w in widgets)


async def _send_until_acked(widget: Widget, client_id: str, text: str) -> int:
    """Send like the widget's client does: again after each retryable error."""
    while True:
        frame = await widget.send(client_id, text)
        if frame["type"] == "ack":
            return int(frame["id"])
        assert frame["retry"] is True, frame
        widget.frames.remove(frame)
        await asyncio.sleep(0.5)  # the client's retry backoff


def _alive(replicas: list[tuple[str, subprocess.Popen[bytes]]]) -> None:
    for base, proc in replicas:
        assert proc.poll() is None, f"{base} exited with {proc.returncode}"


async def test_postgres_restart_mid_run_gives_retries_and_loses_no_acked_message(
    replicas: list[tuple[str, subprocess.Popen[bytes]]], postgres: PrivatePostgres
) -> None:
    bases = [base for base, _ in replicas]
    visitor = "visitor-pg-restart"
    async with aiohttp.ClientSession() as session, _widgets(session, bases, visitor) as widgets:
        acked = {await _send_until_acked(widgets[0], "client-0000", "hello")}
        await _until(lambda: _settled(postgres.url, visitor, acked, widgets))

        # Acked just before the outage: its turn may meet the outage midway.
        acked.add(await _send_until_acked(widgets[1], "client-0009", "where is my order?"))
        await asyncio.to_thread(postgres.stop)
        for base in bases:
            assert await _until(lambda b=base: _now_status(session, b, 503))
        await asyncio.sleep(3)  # the outage outlasts the store's own retries
        during = [
            await widgets[i % 2].send(f"client-{i:04d}", "where is my order?") for i in (1, 2)
        ]
        assert all(f["type"] == "error" and f["retry"] is True for f in during), during
        body = {"sender": "rest-pg-restart", "message": "hello", "message_id": "r-1"}
        async with session.post(f"{bases[0]}/webhooks/rest/webhook", json=body) as resp:
            assert resp.status == 503, await resp.text()
            assert resp.headers["Retry-After"]
        _alive(replicas)

        await asyncio.to_thread(postgres.start)
        for base in bases:
            assert await _until(lambda b=base: _now_status(session, b, 200))
        for i, frame in zip((1, 2), during, strict=True):
            widgets[i % 2].frames.remove(frame)
            acked.add(
                await _send_until_acked(widgets[i % 2], f"client-{i:04d}", "where is my order?")
            )
        acked.add(await _send_until_acked(widgets[1], "client-0003", "hello again"))
        await _until(lambda: _settled(postgres.url, visitor, acked, widgets))
        async with session.post(f"{bases[0]}/webhooks/rest/webhook", json=body) as resp:
            assert resp.status == 200, await resp.text()
            assert await resp.json()
    _alive(replicas)


async def _post(session: aiohttp.ClientSession, base: str, body: dict[str, Any]) -> tuple[int, Any]:
    async with session.post(f"{base}/webhooks/rest/webhook", json=body) as resp:
        return resp.status, await resp.json()


async def _now_status(session: aiohttp.ClientSession, base: str, want: int) -> bool:
    try:
        return await _health(session, base) == want
    except aiohttp.ClientError:
        return False


async def test_redis_restart_mid_run_reconnects_the_bus_and_runs_every_acked_turn(
    replicas: list[tuple[str, subprocess.Popen[bytes]]],
    postgres: PrivatePostgres,
    redis_server: PrivateRedis,
) -> None:
    bases = [base for base, _ in replicas]
    visitor = "visitor-redis-restart"
    async with aiohttp.ClientSession() as session, _widgets(session, bases, visitor) as widgets:
        acked = {await _send_until_acked(widgets[0], "client-0000", "hello")}
        await _until(lambda: _settled(postgres.url, visitor, acked, widgets))

        await asyncio.to_thread(redis_server.stop)
        # Messages are stored (PostgreSQL is up) and acked; their turns wait for the lock.
        for i in (1, 2):
            acked.add(
                await _send_until_acked(widgets[i % 2], f"client-{i:04d}", "where is my order?")
            )
        # A REST turn takes the lock before storing: it waits for Redis, then answers.
        body = {"sender": "rest-redis-restart", "message": "hello", "message_id": "r-1"}
        rest = asyncio.create_task(_post(session, bases[0], body))
        for base in bases:
            assert await _health(session, base) == 200
        await asyncio.sleep(3)  # the outage lasts a few recovery rounds
        assert not rest.done()
        _alive(replicas)

        await asyncio.to_thread(redis_server.start)
        status, replies = await rest
        assert status == 200, replies
        assert replies
        # The turns accepted during the outage run, and both sockets see every message.
        await _until(lambda: _settled(postgres.url, visitor, acked, widgets))
        # The bus is back: a new message on one replica reaches the other's socket live.
        acked.add(await _send_until_acked(widgets[1], "client-0003", "hello again"))
        await _until(lambda: _settled(postgres.url, visitor, acked, widgets))
    _alive(replicas)


@pytest.fixture
def lone(tmp_path: Path, postgres: PrivatePostgres) -> Iterator[tuple[str, Path]]:
    """One ``helpline run`` without Redis on the private PostgreSQL: (base URL, its log)."""
    port = free_port()
    config = _config(tmp_path, postgres.url, None, port)
    log = tmp_path / "lone.log"
    command = [sys.executable, "-m", "bot", "--config", str(config), "run"]
    health = f"http://127.0.0.1:{port}/healthz"
    with serve(
        command, cwd=tmp_path, env=clean_env(), health_url=health, log_path=log, limit_s=180
    ):
        yield f"http://127.0.0.1:{port}", log


async def _hold_turns(db_url: str) -> asyncpg.Connection:
    """A session that locks the turns table: a turn's commit waits for it."""
    holder = await asyncpg.connect(_asyncpg_dsn(db_url))
    await holder.execute("BEGIN; LOCK TABLE turns IN ACCESS EXCLUSIVE MODE")
    return holder


async def _commit_waiting(db_url: str) -> bool:
    conn = await asyncpg.connect(_asyncpg_dsn(db_url))
    try:
        query = "SELECT count(*) FROM pg_locks WHERE NOT granted AND relation = 'turns'::regclass"
        return bool(await conn.fetchval(query))
    finally:
        await conn.close()


async def test_a_lone_replica_runs_a_turn_the_outage_broke_once_postgres_is_back(
    lone: tuple[str, Path], postgres: PrivatePostgres
) -> None:
    base, log = lone
    visitor = "visitor-lone"
    async with aiohttp.ClientSession() as session, _widgets(session, [base], visitor) as widgets:
        acked = {await _send_until_acked(widgets[0], "client-0000", "hello")}
        await _until(lambda: _settled(postgres.url, visitor, acked, widgets))
        holder = await _hold_turns(postgres.url)
        # Stored and acknowledged; its turn then waits to commit.
        acked.add(await _send_until_acked(widgets[0], "client-0001", "where is my order?"))
        await _until(lambda: _commit_waiting(postgres.url))
        # Crash it: a fast shutdown may end the lock's holder first and let
        # the waiting turn commit before its own session ends (seen once in CI).
        await asyncio.to_thread(functools.partial(postgres.stop, immediate=True))
        with contextlib.suppress(OSError, asyncpg.PostgresError):
            await holder.close(timeout=1)
        try:
            await _until(lambda: _now("stays pending" in log.read_text()))  # the turn failed
        except TimeoutError:
            pytest.fail(f"the turn did not fail with the database gone:\n{log.read_text()[-4000:]}")
        await asyncio.to_thread(postgres.start)
        # No restart, no other replica: its own recovery loop runs the turn.
        await _until(lambda: _settled(postgres.url, visitor, acked, widgets))
    assert "Recovered message" in log.read_text()
