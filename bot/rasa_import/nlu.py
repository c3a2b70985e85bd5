"""Converting NLU data: intents with examples, synonyms, regexes and lookup tables.

Helpline's NLU extracts entities with regexes and lookup tables only, so an
entity that Rasa learned from annotated examples gets a lookup table of its
annotated values (synonyms then map them to their canonical value).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from bot.errors import FlowError, SourceError
from bot.nlu.data import parse_example
from bot.rasa_import.reader import Where, where

if TYPE_CHECKING:
    from bot.rasa_import.reader import RasaProject
    from bot.rasa_import.report import Report

_KINDS = ("intent", "synonym", "regex", "lookup")


@dataclass
class NLUResult:
    """The converted NLU file and the raw examples of each intent."""

    items: list[dict[str, Any]] = field(default_factory=list)
    examples: dict[str, list[str]] = field(default_factory=dict)
    roles: list[Where] = field(default_factory=list)
    annotated: dict[str, list[str]] = field(default_factory=dict)
    extracted: set[str] = field(default_factory=set)

    def document(self) -> dict[str, Any]:
        """Return the ``nlu.yml`` mapping."""
        return {"version": "3.1", "nlu": self.items}


def _lines(item: dict[str, Any], path: str, place: Where) -> list[str]:
    block = item.get("examples")
    if isinstance(block, list):  # Rasa also allows a list of {text, metadata}
        return [str(e.get("text", "")) if isinstance(e, dict) else str(e) for e in block]
    if not isinstance(block, str):
        raise SourceError(path, place.line, "item needs an 'examples' block of '- text' lines")
    lines = []
    for raw in block.splitlines():
        text = raw.strip()
        if text:
            lines.append(text[1:].strip() if text.startswith("-") else text)
    return lines


def _block(lines: list[str]) -> str:
    return "".join(f"- {line}\n" for line in lines)


def _annotations(result: NLUResult, raw: str, path: str, place: Where, report: Report) -> None:
    try:
        text, entities = parse_example(raw, path, place.line or 0)
    except FlowError as exc:
        raise SourceError(exc.path, exc.line, exc.reason) from exc
    for entity in entities:
        result.annotated.setdefault(entity.entity, []).append(text[entity.start : entity.end])
    if '"role"' in raw or '"group"' in raw:
        result.roles.append(place)


def _item(result: NLUResult, item: Any, path: str, report: Report) -> None:
    place = where(path, item)
    if not isinstance(item, dict):
        raise SourceError(path, place.line, "each 'nlu' item must be a mapping")
    kinds = [k for k in _KINDS if k in item]
    if len(kinds) != 1:
        raise SourceError(path, place.line, "item needs one of intent, synonym, regex, lookup")
    kind = kinds[0]
    name = str(item[kind])
    lines = _lines(item, path, place)
    if kind == "intent" and "/" in name:
        report.add("intent", name, "unsupported", place, "retrieval intent examples are dropped")
        return
    if kind == "intent":
        for raw in lines:
            _annotations(result, raw, path, place, report)
        result.examples.setdefault(name, []).extend(lines)
    elif kind in ("regex", "lookup"):
        result.extracted.add(name)
    result.items.append({kind: name, "examples": _block(lines)})
    if kind != "intent":
        report.add(kind, name, "converted", place, f"{len(lines)} line(s)")


def _generated_lookups(result: NLUResult, entities: list[str], report: Report) -> None:
    """Report roles; add lookup tables for entities learned from annotations only."""
    if result.roles:
        report.add(
            "nlu",
            "roles",
            "unsupported",
            result.roles[0],
            f"{len(result.roles)} example(s) annotate entity roles or groups; they are dropped",
        )
    for entity in entities:
        values = sorted(set(result.annotated.get(entity, [])), key=str.lower)
        if entity in result.extracted or not values:
            continue
        result.items.append({"lookup": entity, "examples": _block(values)})
        result.extracted.add(entity)
        report.add(
            "lookup",
            entity,
            "note",
            None,
            f"generated from {len(values)} annotated value(s): Helpline extracts entities "
            "with regexes and lookup tables only",
        )
    for entity in entities:
        if entity not in result.extracted:
            report.add(
                "entity",
                entity,
                "needs_human",
                None,
                "no regex, lookup table or annotated example: Helpline cannot extract it",
            )


def convert_nlu(project: RasaProject, entities: list[str], report: Report) -> NLUResult:
    """Convert every ``nlu:`` item, adding lookup tables for learned entities.

    Raises:
        SourceError: An item or an entity annotation is malformed.
    """
    result = NLUResult()
    for path, item in project.items("nlu"):
        _item(result, item, path, report)
    _generated_lookups(result, entities, report)
    return result
