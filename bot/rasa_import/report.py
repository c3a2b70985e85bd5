"""What an import converted and what needs a human, as text or JSON."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from bot.rasa_import.reader import Where

Status = Literal["converted", "covered", "needs_human", "unsupported", "note"]
STATUSES: tuple[Status, ...] = ("converted", "covered", "needs_human", "unsupported", "note")
_TITLES: dict[Status, str] = {
    "needs_human": "Needs a human",
    "unsupported": "Not supported (left out)",
    "note": "Notes",
}


@dataclass(frozen=True)
class Finding:
    """One item of the report.

    Attributes:
        kind: What it is about: ``story``, ``rule``, ``form``, ``slot``, ``config``...
        name: The item's name in the Rasa project.
        status: ``converted``, ``covered`` (already handled by another converted
            item), ``needs_human``, ``unsupported`` (dropped) or ``note``.
        where: ``file:line`` in the Rasa project, when known.
        reason: Why, for anything that is not plainly converted.
    """

    kind: str
    name: str
    status: Status
    where: str = ""
    reason: str = ""


@dataclass
class Report:
    """Every finding of one import, in the order they were made."""

    source: str = ""
    output: str = ""
    findings: list[Finding] = field(default_factory=list)

    def add(
        self,
        kind: str,
        name: str,
        status: Status,
        where: Where | None = None,
        reason: str = "",
    ) -> None:
        """Record one finding; the same finding twice is kept once."""
        finding = Finding(kind, name, status, str(where) if where else "", reason)
        if finding not in self.findings:
            self.findings.append(finding)

    def counts(self) -> dict[str, dict[str, int]]:
        """Return ``{kind: {status: n}}`` for every kind seen."""
        counter = Counter((f.kind, f.status) for f in self.findings)
        result: dict[str, dict[str, int]] = {}
        for (kind, status), number in counter.items():
            result.setdefault(kind, {})[status] = number
        return {kind: dict(sorted(by.items())) for kind, by in sorted(result.items())}

    def with_status(self, status: Status) -> list[Finding]:
        """Return the findings of one status."""
        return [f for f in self.findings if f.status == status]

    def to_dict(self) -> dict[str, Any]:
        """Return the report as plain data (what ``--json`` prints)."""
        return {
            "source": self.source,
            "output": self.output,
            "counts": self.counts(),
            "findings": [asdict(f) for f in self.findings],
        }

    def to_json(self) -> str:
        """Return the report as indented JSON."""
        return json.dumps(self.to_dict(), indent=2)

    def render(self) -> str:
        """Return the report as text for a terminal."""
        lines = [f"Imported the Rasa project {self.source} into {self.output}.", ""]
        lines.append(f"{'kind':<14}" + "".join(f"{s:>13}" for s in STATUSES))
        for kind, by in self.counts().items():
            lines.append(f"{kind:<14}" + "".join(f"{by.get(s, 0):>13}" for s in STATUSES))
        for status, title in _TITLES.items():
            found = self.with_status(status)
            if not found:
                continue
            lines += ["", f"{title} ({len(found)}):"]
            for item in found:
                place = f"{item.where}: " if item.where else ""
                lines.append(f"  {place}{item.kind} '{item.name}': {item.reason}")
        return "\n".join(lines)
