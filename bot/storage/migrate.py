"""Alembic, driven in code: no ``alembic.ini``, migrations ship in the package."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

_LOGGER = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
# An arbitrary constant: replicas that upgrade at once take turns on it.
_PG_MIGRATION_LOCK = 7_460_113


def alembic_config(connection: Connection | None = None) -> Config:
    """Build the Alembic config pointing at the packaged migrations.

    Args:
        connection: An open connection for ``env.py`` to run migrations on.

    Returns:
        A config usable with ``alembic.command``.
    """
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head_revision() -> str | None:
    """Return the newest revision that ships with this version of Helpline."""
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current_revision(connection: Connection) -> str | None:
    """Return the revision the database is at, or ``None`` before any migration."""
    return MigrationContext.configure(connection).get_current_revision()


def upgrade(connection: Connection) -> None:
    """Upgrade the database to the newest revision, if it is not there yet.

    On PostgreSQL a transaction-scoped advisory lock makes concurrent
    upgrades from several replicas take turns.

    Args:
        connection: A synchronous connection inside a transaction (from
            ``AsyncConnection.run_sync``).
    """
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_MIGRATION_LOCK})
    before = current_revision(connection)
    head = head_revision()
    if before == head:
        _LOGGER.debug("The database schema is at revision %s already.", head)
        return
    command.upgrade(alembic_config(connection), "head")
    _LOGGER.info("Upgraded the database schema from revision %s to %s.", before, head)
