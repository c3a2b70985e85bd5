"""The ``db`` verb: database migrations."""

from __future__ import annotations

import argparse
import asyncio
from typing import Any


def register(subparsers: Any) -> None:
    """Add ``db upgrade``."""
    db = subparsers.add_parser("db", help="manage the database")
    sub = db.add_subparsers(dest="db_verb", metavar="SUBVERB", required=True)
    upgrade = sub.add_parser("upgrade", help="apply every pending migration")
    upgrade.add_argument("--url", default=None, help="database URL (default from config)")
    upgrade.set_defaults(handler=_upgrade)


def _upgrade(args: argparse.Namespace) -> int:
    from bot.cli_run import configured

    config = configured(args)
    url = args.url or config.storage.url
    asyncio.run(_apply(url))
    print(f"Database is up to date: {url.split('@')[-1]}")
    return 0


async def _apply(url: str) -> None:
    from bot.storage.store import Store

    async with Store(url) as store:
        await store.upgrade()
