"""Engine creation and the one place where database errors are translated.

SQLite (the default, for one machine) gets WAL journaling, a busy timeout and
foreign keys on every connection. PostgreSQL is used through asyncpg.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import create_engine as create_sync_engine
from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, SQLAlchemyError
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import StaticPool

from bot.errors import InvalidInput, StorageError
from bot.storage.runner import AsyncEngineRunner, ThreadRunner

if TYPE_CHECKING:
    from sqlalchemy.engine import URL

    from bot.storage.runner import Runner

_LOGGER = logging.getLogger(__name__)

DEFAULT_URL = "sqlite+aiosqlite:///var/helpline.db"
SQLITE_BUSY_TIMEOUT_MS = 5000

# PostgreSQL SQLSTATEs worth a retry: connection exceptions (class 08), the
# server shutting down or starting up (57P01-57P03), serialization failures
# and deadlocks (40001, 40P01).
_TRANSIENT_SQLSTATE_PREFIXES = ("08", "57P01", "57P02", "57P03", "40001", "40P01")
# SQLite reports lock contention beyond the busy timeout with these words.
_TRANSIENT_SQLITE_WORDS = ("database is locked", "database table is locked", "disk i/o error")


def parse_url(url: str) -> URL:
    """Parse a database URL, raising :class:`StorageError` when it is invalid.

    Args:
        url: A SQLAlchemy URL such as ``sqlite+aiosqlite:///var/helpline.db``.

    Returns:
        The parsed URL.

    Raises:
        StorageError: The URL cannot be parsed or names an unsupported backend.
    """
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise StorageError(f"Invalid database URL {url!r}: {exc}") from exc
    if parsed.get_backend_name() not in ("sqlite", "postgresql"):
        raise StorageError(
            f"Unsupported database {safe_url(parsed)}: use sqlite+aiosqlite:// or "
            "postgresql+asyncpg://"
        )
    return parsed


def safe_url(url: URL) -> str:
    """Render a URL for messages and logs, with the password masked."""
    return url.render_as_string(hide_password=True)


def create_runner(url: URL) -> Runner:
    """Create what runs the store's transactions for ``url``.

    PostgreSQL gets an async engine; SQLite a synchronous engine whose
    transactions run whole in one thread (see :mod:`bot.storage.runner`). For
    a SQLite file the parent folder is created first.

    Args:
        url: A URL that :func:`parse_url` accepted.

    Returns:
        The runner; it has not connected yet.
    """
    if url.get_backend_name() != "sqlite":
        # No pre-ping: it costs a round trip per transaction, and the store
        # retries transient failures (a dropped connection) itself.
        return AsyncEngineRunner(create_async_engine(url, pool_size=20, max_overflow=10))
    database = url.database or ""
    if database and database != ":memory:" and not database.startswith("file:"):
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    # One connection, used only by the runner's thread.
    engine = create_sync_engine(
        url.set(drivername="sqlite"),
        poolclass=StaticPool,
        connect_args={"check_same_thread": False},
    )
    event.listen(engine, "connect", _configure_sqlite)
    return ThreadRunner(engine)


def _configure_sqlite(dbapi_connection: Any, connection_record: Any) -> None:
    """Turn on WAL, a busy timeout and foreign keys for a new SQLite connection."""
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
    finally:
        cursor.close()


def is_transient(exc: BaseException) -> bool:
    """Tell whether an error is likely to pass if the call is tried again.

    Network errors, dropped connections, a server that is restarting, lock
    contention, serialization failures and deadlocks are transient; constraint
    violations and SQL errors are not.
    """
    if isinstance(exc, OSError):
        return True
    if not isinstance(exc, DBAPIError):
        return False
    if exc.connection_invalidated:
        return True
    orig = exc.orig
    sqlstate = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
    if isinstance(sqlstate, str):
        return sqlstate.startswith(_TRANSIENT_SQLSTATE_PREFIXES)
    message = str(orig).lower()
    if any(word in message for word in _TRANSIENT_SQLITE_WORDS):
        return True
    # A connection that broke before the server said anything.
    return isinstance(orig, OSError) or "connection is closed" in message


def translate(exc: SQLAlchemyError | OSError, what: str, url: URL) -> StorageError | InvalidInput:
    """Turn a third-party database error into a one-line :class:`StorageError`.

    A data exception (SQLSTATE class 22: a value too long, a NUL in text, a
    number out of range) is the input's fault and permanent: it becomes
    :class:`InvalidInput`, which channels answer with a 4xx, not a 503.

    Args:
        exc: The error SQLAlchemy or the driver raised.
        what: The store call that failed, e.g. ``commit_turn``.
        url: The database URL, named in the message without its password.

    Returns:
        The error to raise (``from exc``).
    """
    if isinstance(exc, OSError):
        detail = str(exc) or type(exc).__name__
        return StorageError(f"Cannot connect to the database at {safe_url(url)}: {detail}")
    orig = getattr(exc, "orig", None)
    lines = str(orig if orig is not None else exc).strip().splitlines()
    first = lines[0] if lines else type(exc).__name__
    sqlstate = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
    if isinstance(sqlstate, str) and sqlstate.startswith("22"):
        return InvalidInput(f"the database refused the data: {first}")
    return StorageError(f"Storage call {what} failed on {safe_url(url)}: {first}")
