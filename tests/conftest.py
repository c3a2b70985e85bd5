"""Shared fixtures: a database URL per backend and a started, upgraded store.

``db_url`` runs a test once on SQLite (a file under ``tmp_path``) and once on
PostgreSQL (a fresh database created through the ``test`` database and
dropped afterwards). Set ``HELPLINE_TEST_PG_URL`` to point at another server;
when PostgreSQL cannot be reached the PostgreSQL variant is skipped, unless
``HELPLINE_TEST_REQUIRE_PG=1`` makes that a failure.
"""

from __future__ import annotations

import contextlib
import logging
import os
import uuid
from typing import TYPE_CHECKING

import asyncpg
import pytest
from blockbuster import blockbuster_ctx
from sqlalchemy.engine import make_url

from bot.storage import Store

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator
    from pathlib import Path

DEFAULT_PG_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"


def _asyncpg_dsn(url: str) -> str:
    """Turn a SQLAlchemy ``postgresql+asyncpg://`` URL into an asyncpg DSN."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


async def _admin_connection(base_url: str) -> asyncpg.Connection:
    try:
        return await asyncpg.connect(_asyncpg_dsn(base_url), timeout=10)
    except (OSError, asyncpg.PostgresError) as exc:
        if os.environ.get("HELPLINE_TEST_REQUIRE_PG") == "1":
            raise
        pytest.skip(f"PostgreSQL at {make_url(base_url)!r} is not reachable: {exc}")


@contextlib.asynccontextmanager
async def _postgres_database(base_url: str) -> AsyncIterator[str]:
    name = f"helpline_test_{uuid.uuid4().hex[:16]}"
    admin = await _admin_connection(base_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        yield make_url(base_url).set(database=name).render_as_string(hide_password=False)
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


@pytest.fixture(params=["sqlite", "postgresql"])
async def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """A URL of an empty database, once per backend (ids ``sqlite`` and ``postgresql``)."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'helpline.db'}"
        return
    base_url = os.environ.get("HELPLINE_TEST_PG_URL", DEFAULT_PG_URL)
    async with _postgres_database(base_url) as url:
        yield url


@pytest.fixture
async def store(db_url: str) -> AsyncIterator[Store]:
    """A started store over ``db_url`` with the migrations applied."""
    async with Store(db_url) as started:
        await started.upgrade()
        yield started


@pytest.fixture(autouse=True)
def _root_logging() -> Iterator[None]:
    """Restore the root logger after tests that run ``main()``, which sets up logging.

    Otherwise its handler keeps writing to a captured stream pytest has closed.
    """
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in list(root.handlers):
        if handler not in handlers:
            root.removeHandler(handler)
    for handler in handlers:
        if handler not in root.handlers:
            root.addHandler(handler)
    root.setLevel(level)


@pytest.fixture
def no_blocking() -> Iterator[None]:
    """Fail the test if anything blocks the event loop, as aiohttp does with blockbuster.

    Allowed: asyncpg reading ``~/.pgpass`` when it connects, and Alembic
    reading its migration scripts, which happens once at startup.
    """
    with blockbuster_ctx() as guard:
        for function in guard.functions.values():
            function.can_block_in(
                "asyncpg/connect_utils.py",
                ["_read_password_file", "_parse_connect_dsn_and_args", "_parse_hostlist"],
            )
            function.can_block_in("bot/storage/migrate.py", "upgrade")
        yield
