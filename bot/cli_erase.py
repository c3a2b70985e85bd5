"""The ``erase`` verb: delete one customer's data on request.

``helpline erase --customer ID`` deletes every conversation the customer
started (matched on the channel's id for them: the widget visitor id, the
Slack user id, the email address, the REST sender) with everything hanging
off it. The report helpers here are shared with ``helpline db prune``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bot.errors import ConfigError, StorageError

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from sqlalchemy.ext.asyncio import AsyncConnection

    from bot.storage.lifecycle import Erasure, Lifecycle
    from bot.storage.store import Store


def register(subparsers: Any) -> None:
    """Add ``erase --customer ID [--channel NAME] [--dry-run] [--json]``."""
    erase = subparsers.add_parser("erase", help="delete one customer's data on request")
    erase.add_argument("--customer", required=True, help="the customer's id on the channel")
    erase.add_argument("--channel", default=None, help="only this channel (e.g. widget, slack)")
    add_common(erase)
    erase.set_defaults(handler=_erase)


def add_common(parser: argparse.ArgumentParser) -> None:
    """Add the options ``erase`` and ``db prune`` share."""
    parser.add_argument("--dry-run", action="store_true", help="count, change nothing")
    parser.add_argument("--json", action="store_true", help="print the counts as JSON")
    parser.add_argument("--url", default=None, help="database URL (default from config)")


def _erase(args: argparse.Namespace) -> int:
    customer = args.customer.strip()
    if not customer:
        raise ConfigError("--customer must name a customer id")
    channel = args.channel.strip() if args.channel is not None else None
    if channel == "":
        raise ConfigError("--channel must name a channel")

    async def op(lifecycle: Lifecycle) -> Erasure:
        return await lifecycle.erase(customer, channel, dry_run=args.dry_run)

    result = with_lifecycle(args, op)
    where = f" on {channel}" if channel else ""
    if result.conversations == 0 and not args.json:
        print(f"No data found for customer {customer!r}{where}; nothing to erase.")
        return 0
    report(result, f"of customer {customer!r}{where}", args.json)
    return 0


def with_lifecycle(
    args: argparse.Namespace, op: Callable[[Lifecycle], Awaitable[Erasure]]
) -> Erasure:
    """Open the configured (or ``--url``) store, check its schema and run ``op``.

    Raises:
        StorageError: There is no database there, or its schema is not the
            current one (``helpline db upgrade`` fixes that); nothing is created.
    """
    from bot.cli_run import configured

    url = args.url or configured(args).storage.url
    _check_file(url)
    return asyncio.run(_run(url, op))


def _check_file(url: str) -> None:
    """Refuse a SQLite file that does not exist, rather than create an empty one."""
    from bot.storage.engine import parse_url, safe_url

    parsed = parse_url(url)
    database = parsed.database or ""
    if parsed.get_backend_name() != "sqlite" or database.startswith((":memory:", "file:")):
        return
    if not database or not Path(database).is_file():
        raise StorageError(f"There is no database at {safe_url(parsed)}: {database!r} is missing.")


async def _run(url: str, op: Callable[[Lifecycle], Awaitable[Erasure]]) -> Erasure:
    from bot.storage.lifecycle import Lifecycle
    from bot.storage.store import Store

    async with Store(url) as store:
        await _check_schema(store)
        return await op(Lifecycle(store))


async def _check_schema(store: Store) -> None:
    from bot.storage import migrate

    async def op(conn: AsyncConnection) -> str | None:
        return await conn.run_sync(migrate.current_revision)

    current, head = await store.run("schema", op), migrate.head_revision()
    if current != head:
        raise StorageError(
            f"The database at {store.url} is at schema revision {current or 'none'}, not "
            f"{head}: run `helpline db upgrade` first."
        )


def report(result: Erasure, subject: str, as_json: bool) -> None:
    """Print the counts per table, as text or as JSON."""
    if as_json:
        print(json.dumps(result.as_dict(), sort_keys=True))
        return
    verb = "Would delete (dry run)" if result.dry_run else "Deleted"
    print(f"{verb} {result.conversations} conversation(s) {subject}:")
    width = max(len(name) for name in (*result.deleted, *result.unlinked))
    for name, count in result.deleted.items():
        print(f"  {name:<{width}}  {count}")
    for name, count in result.unlinked.items():
        print(f"  {name:<{width}}  {count} (kept for the budget, conversation link cleared)")
