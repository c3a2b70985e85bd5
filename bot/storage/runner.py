"""How a store call's transaction runs: on an async engine, or whole in one thread.

PostgreSQL transactions run on SQLAlchemy's async engine (asyncpg). SQLite
allows one writer at a time, so a transaction that yields to the event loop
between its statements holds the database while other tasks run. There, each
transaction runs start to end in one dedicated thread on a synchronous
connection: the same query functions drive a :class:`SyncConnection`, whose
``execute`` never suspends, so the coroutine completes in a single step.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, cast

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection, Dialect, Engine
    from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

_T = TypeVar("_T")
Operation = Callable[["AsyncConnection"], Awaitable[_T]]


class Runner(Protocol):
    """Runs one operation inside one transaction."""

    async def run(self, op: Operation[_T], *, autocommit: bool = False) -> _T:
        """Run ``op`` in a new transaction that commits when it returns.

        ``autocommit`` says ``op`` needs no transaction around its
        statements: each is atomic on its own (one statement, or several
        where stopping between them leaves nothing inconsistent). A runner
        may then let each statement commit itself, sparing the ``BEGIN`` and
        ``COMMIT`` round trips.
        """
        ...

    async def dispose(self) -> None:
        """Close every connection."""
        ...


class AsyncEngineRunner:
    """Transactions on an async engine (PostgreSQL through asyncpg).

    An ``autocommit`` operation runs on an autocommit connection from the same
    pool: PostgreSQL makes each statement its own transaction, without the
    ``BEGIN`` and ``COMMIT`` round trips.
    """

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._autocommit = engine.execution_options(isolation_level="AUTOCOMMIT")

    async def run(self, op: Operation[_T], *, autocommit: bool = False) -> _T:
        """Run ``op`` in a transaction of the async engine (or autocommitting)."""
        if autocommit:
            async with self._autocommit.connect() as conn:
                return await op(conn)
        async with self.engine.begin() as conn:
            return await op(conn)

    async def dispose(self) -> None:
        """Close the pool."""
        await self.engine.dispose()


class SyncConnection:
    """The part of ``AsyncConnection`` the query functions use, over a sync one."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    @property
    def dialect(self) -> Dialect:
        """The connection's dialect."""
        return self._conn.dialect

    async def execute(self, statement: Any, parameters: Any = None) -> Any:
        """Execute at once; never suspends."""
        if parameters is None:
            return self._conn.execute(statement)
        return self._conn.execute(statement, parameters)

    async def run_sync(self, fn: Callable[..., _T], *args: Any, **kwargs: Any) -> _T:
        """Call ``fn`` with the sync connection, as ``AsyncConnection.run_sync`` does."""
        return fn(self._conn, *args, **kwargs)


def complete(awaitable: Awaitable[_T]) -> _T:
    """Finish a coroutine that never suspends, without an event loop.

    Raises:
        RuntimeError: The coroutine tried to wait for something.
    """
    coro = cast(Coroutine[Any, Any, _T], awaitable)
    try:
        coro.send(None)
    except StopIteration as stop:
        return cast(_T, stop.value)
    coro.close()
    raise RuntimeError("a storage operation tried to suspend inside a SQLite transaction")


class ThreadRunner:
    """Whole transactions on a synchronous engine, in one dedicated thread."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="helpline-sqlite")

    def _transaction(self, op: Operation[_T]) -> _T:
        with self.engine.begin() as conn:
            return complete(op(cast("AsyncConnection", SyncConnection(conn))))

    async def run(self, op: Operation[_T], *, autocommit: bool = False) -> _T:
        """Run ``op`` in a transaction in the SQLite thread (always one transaction)."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._transaction, op)

    async def dispose(self) -> None:
        """Close the connection and stop the thread."""
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._executor, self.engine.dispose)
        # The thread is idle now; it exits on its own without blocking the loop.
        self._executor.shutdown(wait=False)
