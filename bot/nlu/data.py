"""Reading NLU training data in the Rasa NLU YAML format.

A file holds ``version`` and an ``nlu:`` list whose items are ``intent:``,
``regex:``, ``lookup:`` or ``synonym:`` entries, each with an ``examples: |``
block of ``- text`` lines. Intent examples may annotate entities inline, as
``[value](entity)``, ``[text](entity:value)`` or
``[text]{"entity": "e", "value": "v"}``. Errors name ``file:line``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from bot import yamlio
from bot.dialogue.nlu import Entity
from bot.errors import FlowError

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence
    from pathlib import Path

_ANNOTATION = re.compile(r"\[(?P<text>[^\]]+)\](?:\((?P<short>[^)]*)\)|(?P<json>\{[^}]*\}))")
_KINDS = ("intent", "regex", "lookup", "synonym")


@dataclass(frozen=True)
class Example:
    """One training sentence with its intent and annotated entities."""

    text: str
    intent: str
    entities: tuple[Entity, ...] = ()
    source: str = ""
    line: int = 0


@dataclass
class NLUData:
    """Everything an NLU file set declares.

    Attributes:
        examples: Intent examples, annotations stripped from the text.
        regexes: Regex patterns by entity name.
        lookups: Lookup-table values by entity name.
        synonyms: Canonical value by lower-cased variant.
    """

    examples: list[Example] = field(default_factory=list)
    regexes: dict[str, list[str]] = field(default_factory=dict)
    lookups: dict[str, list[str]] = field(default_factory=dict)
    synonyms: dict[str, str] = field(default_factory=dict)

    @property
    def intents(self) -> list[str]:
        """Return the intent names in first-seen order."""
        return list(dict.fromkeys(e.intent for e in self.examples))


def _block_lines(item: Any, path: str) -> Iterator[tuple[int, str]]:
    """Yield ``(line, text)`` for each ``- text`` line of an item's examples block."""
    if "examples" not in item:
        raise FlowError(path, yamlio.line_of(item), "item has no 'examples'")
    block = item["examples"]
    line = yamlio.line_of(item, "examples") or 0
    if not isinstance(block, str):
        raise FlowError(path, line, "'examples' must be a block of '- text' lines")
    # A literal block starts on the line after its key; flow scalars on the key line.
    first = line + 1 if "\n" in block else line
    for offset, raw in enumerate(block.splitlines()):
        stripped = raw.strip()
        if not stripped:
            continue
        if not stripped.startswith("- ") and stripped != "-":
            raise FlowError(path, first + offset, f"example must start with '- ': {stripped!r}")
        text = stripped[1:].strip()
        if not text:
            raise FlowError(path, first + offset, "empty example")
        yield first + offset, text


def _annotation_value(match: re.Match[str], path: str, line: int) -> tuple[str, str]:
    """Return ``(entity, value)`` of one inline annotation."""
    text = match.group("text")
    if match.group("json") is not None:
        try:
            spec = json.loads(match.group("json"))
        except ValueError as exc:
            raise FlowError(path, line, f"invalid entity annotation JSON: {exc}") from exc
        if not isinstance(spec, dict) or not isinstance(spec.get("entity"), str):
            raise FlowError(path, line, "entity annotation needs an 'entity' string")
        return spec["entity"], str(spec.get("value", text))
    short = match.group("short").strip()
    entity, _, value = short.partition(":")
    if not entity.strip():
        raise FlowError(path, line, f"entity annotation without a name: {match.group(0)!r}")
    return entity.strip(), value.strip() or text


def parse_example(raw: str, path: str = "<string>", line: int = 0) -> tuple[str, list[Entity]]:
    """Strip inline annotations from ``raw`` and return the text and its entities.

    Raises:
        FlowError: An annotation is malformed.
    """
    parts: list[str] = []
    entities: list[Entity] = []
    cursor = 0
    length = 0
    for match in _ANNOTATION.finditer(raw):
        before = raw[cursor : match.start()]
        parts.append(before)
        length += len(before)
        entity, value = _annotation_value(match, path, line)
        text = match.group("text")
        entities.append(Entity(entity, value, length, length + len(text), "annotation"))
        parts.append(text)
        length += len(text)
        cursor = match.end()
    parts.append(raw[cursor:])
    text = "".join(parts)
    if "](" in text or "]{" in text:
        raise FlowError(path, line, f"malformed entity annotation in {raw!r}")
    return text, entities


def _name(item: Any, kind: str, path: str) -> str:
    name = item[kind]
    if not isinstance(name, str) or not name.strip():
        raise FlowError(path, yamlio.line_of(item, kind), f"'{kind}' needs a non-empty name")
    return name.strip()


def _add_item(data: NLUData, item: Any, path: str) -> None:
    """Add one ``nlu:`` item to ``data``."""
    if not isinstance(item, dict):
        raise FlowError(path, yamlio.line_of(item), "each 'nlu' item must be a mapping")
    kinds = [k for k in _KINDS if k in item]
    if len(kinds) != 1:
        raise FlowError(
            path, yamlio.line_of(item), "item needs exactly one of intent, regex, lookup, synonym"
        )
    kind = kinds[0]
    name = _name(item, kind, path)
    lines = list(_block_lines(item, path))
    if kind == "intent":
        for line, raw in lines:
            text, entities = parse_example(raw, path, line)
            data.examples.append(Example(text, name, tuple(entities), path, line))
            for ent in entities:
                if ent.value != text[ent.start : ent.end]:
                    data.synonyms[text[ent.start : ent.end].lower()] = ent.value
    elif kind == "regex":
        for line, pattern in lines:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise FlowError(path, line, f"invalid regex {pattern!r}: {exc}") from exc
            data.regexes.setdefault(name, []).append(pattern)
    elif kind == "lookup":
        data.lookups.setdefault(name, []).extend(text for _, text in lines)
    else:
        for _, variant in lines:
            data.synonyms[variant.lower()] = name


def load_nlu(paths: Sequence[Path]) -> NLUData:
    """Read and merge NLU files.

    Raises:
        FlowError: A file is malformed; the message names ``file:line``.
        SourceError: A file cannot be read or is not YAML.
    """
    data = NLUData()
    for path in paths:
        doc = yamlio.load(path)
        if doc is None:
            continue
        if not isinstance(doc, dict):
            raise FlowError(str(path), yamlio.line_of(doc) or 1, "an NLU file must be a mapping")
        items = doc.get("nlu", [])
        if not isinstance(items, list):
            raise FlowError(str(path), yamlio.line_of(doc, "nlu"), "'nlu' must be a list")
        for item in items:
            _add_item(data, item, str(path))
    return data


def require_examples(data: NLUData, minimum: int = 2) -> None:
    """Refuse an intent with fewer than ``minimum`` examples, where it is declared.

    The embedded NLU's classifier needs two examples per intent (Rasa's own
    backends train with one, so only that backend calls this).

    Raises:
        FlowError: Naming the file and line of the intent's first example.
    """
    seen: dict[str, list[Example]] = {}
    for example in data.examples:
        seen.setdefault(example.intent, []).append(example)
    for intent, examples in seen.items():
        if len(examples) < minimum:
            first = examples[0]
            raise FlowError(
                first.source,
                first.line,
                f"intent '{intent}' has {len(examples)} example; the embedded NLU needs "
                f"at least {minimum} per intent",
            )
