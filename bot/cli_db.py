"""The ``db`` verb: database migrations and the retention prune."""

from __future__ import annotations

import argparse
import asyncio
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from bot.errors import ConfigError

if TYPE_CHECKING:
    from bot.storage.lifecycle import Erasure, Lifecycle


def register(subparsers: Any) -> None:
    """Add ``db upgrade`` and ``db prune``."""
    from bot.cli_erase import add_common

    db = subparsers.add_parser("db", help="manage the database")
    sub = db.add_subparsers(dest="db_verb", metavar="SUBVERB", required=True)
    upgrade = sub.add_parser("upgrade", help="apply every pending migration")
    upgrade.add_argument("--url", default=None, help="database URL (default from config)")
    upgrade.set_defaults(handler=_upgrade)
    prune = sub.add_parser("prune", help="delete conversations inactive for N days")
    prune.add_argument(
        "--older-than-days",
        type=int,
        default=None,
        metavar="N",
        help="days without activity (default: storage.retention_days)",
    )
    add_common(prune)
    prune.set_defaults(handler=_prune)


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


def _prune(args: argparse.Namespace) -> int:
    from bot.cli_erase import report, with_lifecycle
    from bot.cli_run import configured

    days = args.older_than_days
    if days is None:
        days = configured(args).storage.retention_days
        if days is None:
            raise ConfigError(
                "no retention is configured: pass --older-than-days N or set storage.retention_days"
            )
    if days < 1:
        raise ConfigError(f"--older-than-days must be 1 or more, not {days}")
    before = datetime.now(UTC) - timedelta(days=days)

    async def op(lifecycle: Lifecycle) -> Erasure:
        return await lifecycle.prune(before, dry_run=args.dry_run)

    result = with_lifecycle(args, op)
    report(result, f"inactive for {days} day(s)", args.json)
    return 0
