"""The ``init`` verb: scaffold a new bot project."""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path
from typing import Any

from bot.errors import ConfigError

STARTER = Path(__file__).with_name("starter")
ACTIONS = '''"""Custom actions of this bot, run in process."""

from bot.actions.registry import ActionDeps, action
from bot.dialogue.actions import ActionContext, ActionResult


@action("action_hello_world")
async def hello_world(ctx: ActionContext, deps: ActionDeps) -> ActionResult:
    """Say hello from Python; list it under `actions:` in domain.yml to use it."""
    return ActionResult(responses=({"text": "Hello from an action!"},))
'''


def register(subparsers: Any) -> None:
    """Add ``init DIR``."""
    init = subparsers.add_parser("init", help="scaffold a bot project")
    init.add_argument("path", type=Path, help="folder to create")
    init.set_defaults(handler=_init)


def scaffold(target: Path) -> None:
    """Copy the starter bot into ``target``, which must be new or empty.

    Raises:
        ConfigError: ``target`` exists and is not empty.
    """
    if target.exists() and any(target.iterdir()):
        raise ConfigError(f"{target} exists and is not empty")
    shutil.copytree(STARTER, target, dirs_exist_ok=True)
    (target / "actions.py").write_text(ACTIONS)


def _init(args: argparse.Namespace) -> int:
    scaffold(args.path)
    print(f"Created a bot in {args.path}. Try: helpline shell --bot {args.path}")
    return 0
