"""Converting NLU data: intents with examples, synonyms, regexes and lookup tables.

Helpline's NLU extracts entities with regexes and lookup tables only (then
maps synonyms to their canonical value), where Rasa's pipeline also learned
them from annotated examples. So an entity without a regex gets a lookup table
of its annotated values, and an existing lookup table also gets the annotated
values and the synonyms of its values that it lacks.
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
    regexes: dict[str, list[str]] = field(default_factory=dict)
    lookups: dict[str, list[str]] = field(default_factory=dict)
    synonyms: dict[str, list[str]] = field(default_factory=dict)

    def document(self) -> dict[str, Any]:
        """Return the ``nlu.yml`` mapping; lookup tables come last."""
        lookups = [{"lookup": k, "examples": _block(v)} for k, v in self.lookups.items()]
        return {"version": "3.1", "nlu": [*self.items, *lookups]}


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
        surface = text[entity.start : entity.end]
        result.annotated.setdefault(entity.entity, []).append(surface)
        if entity.value != surface:
            result.synonyms.setdefault(entity.value.lower(), []).append(surface)
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
    elif kind == "regex":
        result.regexes.setdefault(name, []).extend(lines)
    elif kind == "synonym":
        result.synonyms.setdefault(name.lower(), []).extend(lines)
    if kind == "lookup":
        result.lookups.setdefault(name, []).extend(lines)
    else:
        result.items.append({kind: name, "examples": _block(lines)})
    if kind != "intent":
        report.add(kind, name, "converted", place, f"{len(lines)} line(s)")


def _unique(values: list[str]) -> list[str]:
    """Return ``values`` without case-insensitive repeats, in order."""
    seen: dict[str, str] = {}
    for value in values:
        seen.setdefault(value.lower(), value)
    return list(seen.values())


def _lookup_values(result: NLUResult, entity: str) -> list[str]:
    """Return the given lookup values plus annotated values and their synonyms."""
    values = _unique([*result.lookups.get(entity, []), *result.annotated.get(entity, [])])
    for value in list(values):
        values += result.synonyms.get(value.lower(), [])
    return _unique(values)


def _complete_lookups(result: NLUResult, entities: list[str], report: Report) -> None:
    """Add or extend lookup tables so that Helpline extracts what Rasa learned."""
    for entity in dict.fromkeys([*entities, *result.lookups]):
        given = result.lookups.get(entity, [])
        if entity in result.regexes and not given:
            continue
        values = _lookup_values(result, entity)
        added = len(values) - len(_unique(given))
        if values:
            result.lookups[entity] = values
        if given and added:
            reason = f"{added} value(s) added from annotated examples and synonyms"
            report.add("lookup", entity, "note", None, reason)
        elif values and not given:
            reason = (
                f"generated from {len(values)} annotated value(s): Helpline extracts "
                "entities with regexes and lookup tables only"
            )
            report.add("lookup", entity, "note", None, reason)
        elif not values and entity not in result.regexes:
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
    if result.roles:
        report.add(
            "nlu",
            "roles",
            "unsupported",
            result.roles[0],
            f"{len(result.roles)} example(s) annotate entity roles or groups; they are dropped",
        )
    _complete_lookups(result, entities, report)
    return result
