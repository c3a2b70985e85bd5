"""The ``helpline`` console script.

Each verb lives in its own module that exposes ``register(subparsers)``; a
verb's handler takes the parsed arguments and returns an exit code. Only this
module calls ``sys.exit``.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from bot.errors import ConfigError, HelplineError, SourceError

# Modules that add verbs, in the order they appear in --help.
_VERB_MODULES = (
    "bot.cli_run",
    "bot.cli_db",
    "bot.cli_erase",
    "bot.cli_agents",
    "bot.cli_init",
    "bot.nlu.cli",
    "bot.nlu.rasa.cli",
    "bot.e2e_run",
    "bot.cli_kb",
    "bot.rasa_import.cli",
    "bot.bench",
    "llm.cli",
)


def build_parser() -> argparse.ArgumentParser:
    """Return the parser with every verb registered."""
    parser = argparse.ArgumentParser(
        prog="helpline", description="Helpline: the customer-support bot platform."
    )
    parser.add_argument("--config", "-c", default=None, help="path to helpline.yml")
    sub = parser.add_subparsers(dest="verb", metavar="VERB")
    for name in _VERB_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
            continue
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    """Run the console script and exit with the verb's status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        sys.exit(2)
    try:
        code = int(handler(args))
    except (SourceError, ConfigError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        code = 2
    except HelplineError as exc:
        print(f"error: {exc}", file=sys.stderr)
        code = 1
    except KeyboardInterrupt:
        code = 130
    sys.exit(code)
