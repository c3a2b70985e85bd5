"""The ``agents`` verb: console accounts (``add``, ``list``, ``disable``).

Passwords are read with ``getpass`` (or one line of stdin with
``--password-stdin``, for scripts) and stored as argon2id hashes.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys
from typing import TYPE_CHECKING, Any

from bot.errors import ConfigError

if TYPE_CHECKING:
    from bot.storage.console_store import ConsoleStore


def register(subparsers: Any) -> None:
    """Add ``agents add|list|disable``."""
    agents = subparsers.add_parser("agents", help="manage agent console accounts")
    sub = agents.add_subparsers(dest="agents_verb", metavar="SUBVERB", required=True)
    add = sub.add_parser("add", help="create an agent account")
    add.add_argument("--email", required=True)
    add.add_argument("--name", required=True)
    add.add_argument("--role", choices=("agent", "admin"), default="agent")
    add.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    add.set_defaults(handler=_add)
    listing = sub.add_parser("list", help="list the agent accounts")
    listing.set_defaults(handler=_list)
    disable = sub.add_parser("disable", help="disable an account and end its sessions")
    disable.add_argument("--email", required=True)
    disable.set_defaults(handler=_disable)


def _password(args: argparse.Namespace) -> str:
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass("Password: ")
    if first != getpass.getpass("Password again: "):
        raise ConfigError("the passwords do not match")
    return first


def _add(args: argparse.Namespace) -> int:
    from connectors.console.passwords import hash_password

    if "@" not in args.email:
        raise ConfigError(f"{args.email!r} is not an email address")
    hashed = hash_password(_password(args))

    async def run(db: ConsoleStore) -> None:
        if await db.login_record(args.email) is not None:
            raise ConfigError(f"an agent with the email {args.email} exists")
        row = await db.create_agent(args.email, args.name, args.role, hashed)
        print(f"Created {row['role']} {row['name']} <{row['email']}> (id {row['id']}).")

    asyncio.run(_with_store(args, run))
    return 0


def _list(args: argparse.Namespace) -> int:
    async def run(db: ConsoleStore) -> None:
        for row in await db.agents():
            state = "disabled" if row["disabled"] else row["presence"]
            print(f"{row['id']}\t{row['email']}\t{row['name']}\t{row['role']}\t{state}")

    asyncio.run(_with_store(args, run))
    return 0


def _disable(args: argparse.Namespace) -> int:
    async def run(db: ConsoleStore) -> None:
        if not await db.disable_agent(args.email):
            raise ConfigError(f"there is no agent with the email {args.email}")
        print(f"Disabled {args.email.lower()}.")

    asyncio.run(_with_store(args, run))
    return 0


async def _with_store(args: argparse.Namespace, run: Any) -> None:
    from bot.cli_run import configured
    from bot.storage.console_store import ConsoleStore
    from bot.storage.store import Store

    config = configured(args)
    async with Store(config.storage.url) as store:
        await store.upgrade()
        await run(ConsoleStore(store))
