"""The ``import rasa`` verb: convert a Rasa project and print what needs a human."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from bot.rasa_import.convert import convert
from bot.rasa_import.writer import check_target, write_project


def register(subparsers: Any) -> None:
    """Add ``import rasa PATH [--out DIR] [--force] [--json]``."""
    verb = subparsers.add_parser("import", help="import a bot from another platform")
    sub = verb.add_subparsers(dest="import_verb", metavar="SOURCE", required=True)
    rasa = sub.add_parser("rasa", help="convert a Rasa Open Source 3.x project")
    rasa.add_argument("path", type=Path, help="the Rasa project folder")
    rasa.add_argument("--out", type=Path, default=None, help="folder to create (PATH-helpline)")
    rasa.add_argument("--force", action="store_true", help="replace a non-empty --out folder")
    rasa.add_argument("--json", action="store_true", help="print the report as JSON")
    rasa.set_defaults(handler=_import_rasa)


def default_out(path: Path) -> Path:
    """Return the default output folder for the Rasa project at ``path``."""
    return Path(f"{path.resolve().name}-helpline")


def _import_rasa(args: argparse.Namespace) -> int:
    out: Path = args.out or default_out(args.path)
    check_target(out, args.force)
    conversion = convert(args.path)
    write_project(conversion.files, out, args.force)
    conversion.report.output = str(out)
    report = conversion.report
    print(report.to_json() if args.json else report.render())
    return 0
