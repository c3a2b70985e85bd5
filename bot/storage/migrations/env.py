"""Alembic environment: runs migrations on the connection that the store hands in.

Helpline has no ``alembic.ini``; ``bot.storage.migrate`` builds the Alembic
config in code and passes an open synchronous connection (from
``AsyncConnection.run_sync``) in ``config.attributes["connection"]``.
"""

from __future__ import annotations

from alembic import context

from bot.storage.models import Base


def run_migrations() -> None:
    """Run the migrations on the connection from the config attributes."""
    connection = context.config.attributes.get("connection")
    if connection is None:
        raise RuntimeError("Run Helpline migrations with Store.upgrade() or `helpline db upgrade`.")
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


# Alembic executes this file itself (as module ``env_py``). Importing it as
# ``bot.storage.migrations.env``, e.g. from a test that imports every module,
# must not try to run migrations.
if __name__ != "bot.storage.migrations.env":
    run_migrations()
