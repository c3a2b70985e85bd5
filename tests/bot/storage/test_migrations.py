from __future__ import annotations

from typing import TYPE_CHECKING, Any

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect
from sqlalchemy.ext.asyncio import create_async_engine

from bot.storage import Store
from bot.storage.migrate import current_revision, head_revision
from bot.storage.models import Base

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection


async def _on_connection(url: str, fn: Any) -> Any:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            return await conn.run_sync(fn)
    finally:
        await engine.dispose()


def _diff(conn: Connection) -> list[Any]:
    context = MigrationContext.configure(conn, opts={"compare_type": True})
    return list(compare_metadata(context, Base.metadata))


async def test_migrated_schema_matches_models(store: Store, db_url: str) -> None:
    assert await _on_connection(db_url, _diff) == []


async def test_upgrade_is_idempotent_and_reaches_head(db_url: str) -> None:
    async with Store(db_url) as store:
        await store.upgrade()
        await store.upgrade()
    async with Store(db_url) as store:
        await store.upgrade()
    revision = await _on_connection(db_url, current_revision)
    assert revision == head_revision() == "0007"


async def test_upgrade_creates_every_model_table(db_url: str) -> None:
    async with Store(db_url) as store:
        await store.upgrade()

    def tables(conn: Connection) -> set[str]:
        return set(inspect(conn).get_table_names())

    assert set(Base.metadata.tables) | {"alembic_version"} == await _on_connection(db_url, tables)


async def test_fresh_database_differs_from_models(db_url: str) -> None:
    # Guards the comparison itself: without migrations it must report the tables.
    diff = await _on_connection(db_url, _diff)
    added = {entry[1].name for entry in diff if entry[0] == "add_table"}
    assert added == set(Base.metadata.tables)
