from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import threading
from typing import TYPE_CHECKING

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError, OperationalError

from bot.errors import StorageError
from bot.storage import Store
from bot.storage.engine import is_transient

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path

    from sqlalchemy.ext.asyncio import AsyncConnection


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_postgres_down_at_start_names_url_without_password() -> None:
    port = _closed_port()
    store = Store(
        f"postgresql+asyncpg://helpline:s3cret@127.0.0.1:{port}/helpline", retry_delay=0.01
    )
    with pytest.raises(StorageError) as caught:
        await store.start()
    message = str(caught.value)
    assert f"127.0.0.1:{port}/helpline" in message
    assert "s3cret" not in message
    assert "\n" not in message
    assert message.startswith(
        "Cannot connect to the database at postgresql+asyncpg://helpline:***@"
    )


async def _join_aiosqlite_workers() -> None:
    # After a failed connect, aiosqlite stops its worker thread without awaiting
    # it; the thread then reports to the loop. Join it while the loop still runs.
    for thread in threading.enumerate():
        if "_connection_worker_thread" in thread.name:
            await asyncio.to_thread(thread.join, 10)


async def test_sqlite_unopenable_at_start(tmp_path: Path) -> None:
    # The database path is a directory, so SQLite cannot open it.
    with pytest.raises(StorageError, match=f"failed on sqlite\\+aiosqlite:///{tmp_path}"):
        async with Store(f"sqlite+aiosqlite:///{tmp_path}"):
            pass
    await _join_aiosqlite_workers()


async def test_sqlite_parent_folder_that_is_a_file(tmp_path: Path) -> None:
    (tmp_path / "var").write_text("not a folder")
    with pytest.raises(StorageError, match="Cannot connect to the database"):
        await Store(f"sqlite+aiosqlite:///{tmp_path / 'var' / 'helpline.db'}").start()


@pytest.mark.parametrize("url", ["nonsense", "mysql+aiomysql://u@h/db"])
def test_bad_urls_are_rejected(url: str) -> None:
    with pytest.raises(StorageError, match="database"):
        Store(url)


async def test_sqlite_file_is_created_with_wal_and_foreign_keys(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "var" / "helpline.db"
    async with Store(f"sqlite+aiosqlite:///{path}") as store:

        async def pragmas(conn: AsyncConnection) -> tuple[str, int, int]:
            journal = (await conn.execute(text("PRAGMA journal_mode"))).scalar_one()
            fks = (await conn.execute(text("PRAGMA foreign_keys"))).scalar_one()
            busy = (await conn.execute(text("PRAGMA busy_timeout"))).scalar_one()
            return journal, fks, busy

        assert await store._run("test", pragmas) == ("wal", 1, 5000)
    assert path.exists()


async def test_foreign_keys_are_enforced(store: Store) -> None:
    with pytest.raises(StorageError, match="record_inbound"):
        await store.record_inbound(9999, "rest", "m-1", "orphan", {})


def test_transient_classification() -> None:
    assert is_transient(ConnectionRefusedError("refused"))
    locked = OperationalError("INSERT", {}, Exception("database is locked"))
    assert is_transient(locked)
    shutting_down = OperationalError("SELECT 1", {}, Exception("terminating"))
    shutting_down.orig.sqlstate = "57P01"  # type: ignore[union-attr]
    assert is_transient(shutting_down)
    unique = IntegrityError("INSERT", {}, Exception("duplicate key"))
    unique.orig.sqlstate = "23505"  # type: ignore[union-attr]
    assert not is_transient(unique)
    assert not is_transient(OperationalError("SELECT", {}, Exception("no such table: x")))
    assert not is_transient(ValueError("bug"))


@contextlib.asynccontextmanager
async def _flaky_proxy(target_host: str, target_port: int, drop_first: int) -> AsyncIterator[int]:
    """Forward TCP to the target, but hang up on the first ``drop_first`` connections."""
    dropped = 0
    tasks: set[asyncio.Task[None]] = set()

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except OSError:
            pass
        finally:
            writer.close()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal dropped
        if dropped < drop_first:
            dropped += 1
            writer.close()
            return
        up_reader, up_writer = await asyncio.open_connection(target_host, target_port)
        for coro in (pipe(reader, up_writer), pipe(up_reader, writer)):
            task = asyncio.create_task(coro)
            tasks.add(task)
            task.add_done_callback(tasks.discard)

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        yield int(server.sockets[0].getsockname()[1])
    finally:
        server.close()
        for task in list(tasks):
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await server.wait_closed()


async def test_transient_connection_failures_are_retried(
    db_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    url = make_url(db_url)
    if url.get_backend_name() != "postgresql":
        pytest.skip("needs a networked database")
    async with _flaky_proxy(url.host or "127.0.0.1", url.port or 5432, drop_first=2) as port:
        proxied = url.set(host="127.0.0.1", port=port).render_as_string(hide_password=False)
        with caplog.at_level(logging.WARNING, logger="bot.storage.store"):
            async with Store(proxied, retries=3, retry_delay=0.01) as store:
                await store.upgrade()
                assert await store.route_counts() == {}
        assert len([r for r in caplog.records if "retry" in r.getMessage()]) == 2
    async with _flaky_proxy(url.host or "127.0.0.1", url.port or 5432, drop_first=5) as port:
        proxied = url.set(host="127.0.0.1", port=port).render_as_string(hide_password=False)
        with pytest.raises(StorageError, match="Cannot connect to the database"):
            await Store(proxied, retries=1, retry_delay=0.01).start()


def test_no_password_in_repr_of_url() -> None:
    store = Store("postgresql+asyncpg://u:pw@db.internal:5432/helpline")
    assert store.url == "postgresql+asyncpg://u:***@db.internal:5432/helpline"
    assert store.dialect == "postgresql"
