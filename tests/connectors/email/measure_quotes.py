"""Measure quote and signature stripping on the real-client-shaped samples.

Run from the repository root::

    .venv/bin/python -m tests.connectors.email.measure_quotes [--json]

Each ``samples/*.eml`` is parsed as the connector parses mail, and the text
left after stripping is compared with the sample's expected new text
(``samples/expected.json``). The same is measured for mail-parser-reply on its
own (default options, the same languages), to show what the connector's
pre/post-processing adds. Samples marked ``held_out`` were written after that
processing was settled.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from mailparser_reply import EmailReplyParser

from connectors.email.quotes import LANGUAGES
from connectors.email.translate import parse_email

SAMPLES = Path(__file__).with_name("samples")


def expected() -> dict[str, dict[str, Any]]:
    """The samples' metadata and expected new text, by file name."""
    data: dict[str, dict[str, Any]] = json.loads((SAMPLES / "expected.json").read_text("utf-8"))
    return data


def stripped(name: str) -> tuple[str, str]:
    """The connector's text of a sample, and the library's alone."""
    mail = parse_email((SAMPLES / name).read_bytes(), 10 * 1024 * 1024)
    replies = EmailReplyParser(languages=list(LANGUAGES)).read(mail.full_text).replies
    return mail.text, (replies[0].body if replies else mail.full_text).strip()


def measure() -> dict[str, Any]:
    """Count the samples stripped exactly right, overall and by group."""
    rows = []
    for name, meta in expected().items():
        ours, library = stripped(name)
        rows.append({"sample": name, **meta, "ok": ours == meta["expected"],
                     "library_ok": library == meta["expected"], "got": ours})  # fmt: skip

    def count(key: str, subset: list[dict[str, Any]]) -> str:
        return f"{sum(r[key] for r in subset)}/{len(subset)}"

    tuned = [r for r in rows if not r["held_out"]]
    held = [r for r in rows if r["held_out"]]
    return {
        "samples": len(rows),
        "stripped_correctly": count("ok", rows),
        "library_alone": count("library_ok", rows),
        "tuned_on": count("ok", tuned),
        "held_out": count("ok", held),
        "languages": sorted({r["language"] for r in rows}),
        "clients": sorted({r["client"] for r in rows}),
        "misses": [{"sample": r["sample"], "got": r["got"]} for r in rows if not r["ok"]],
    }


def main() -> None:
    """Print the measurement (``--json`` for machines)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print JSON")
    args = parser.parse_args()
    result = measure()
    if args.json:
        print(json.dumps(result, indent=2, ensure_ascii=False))
        return
    print(f"{result['stripped_correctly']} samples stripped correctly "
          f"(mail-parser-reply alone: {result['library_alone']}; "
          f"held-out: {result['held_out']})")  # fmt: skip
    for miss in result["misses"]:
        print(f"  miss: {miss['sample']}: {miss['got']!r}")


if __name__ == "__main__":
    main()
