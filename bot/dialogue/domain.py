"""The domain: slots with types, and responses with variations and buttons."""

from __future__ import annotations

import random
import re
import string
from dataclasses import dataclass, field
from typing import Any

from bot.errors import FlowError
from bot.yamlio import line_of

SLOT_TYPES = ("text", "bool", "float", "categorical", "any", "list")

_TRUE_WORDS = frozenset(
    "yes y yeah yep yup sure ok okay correct right true affirmative absolutely confirm".split()
)
_FALSE_WORDS = frozenset("no n nope nah false negative wrong incorrect never".split())
_NUMBER = re.compile(r"[-+]?\d+(?:[.,]\d+)?")


@dataclass(frozen=True)
class Slot:
    """A slot of the domain: its type, initial value and allowed values."""

    name: str
    type: str = "text"
    initial_value: Any = None
    values: tuple[str, ...] = ()

    def coerce(self, value: Any) -> Any:
        """Convert a raw value (usually user text) to this slot's type.

        Returns:
            The converted value, or ``None`` when it does not fit the type.
        """
        if value is None:
            return None
        if self.type == "bool":
            return coerce_bool(value)
        if self.type == "float":
            return coerce_float(value)
        if self.type == "categorical":
            return self._coerce_categorical(str(value))
        if self.type == "text":
            text = str(value).strip()
            return text or None
        return value

    def allows(self, value: Any) -> bool:
        """Whether ``value`` may be set as it is: any value but a categorical's unknown ones."""
        if self.type != "categorical" or value is None:
            return True
        return str(value).lower() in (v.lower() for v in self.values)

    def _coerce_categorical(self, text: str) -> str | None:
        lowered = text.strip().lower()
        for allowed in self.values:
            if lowered == allowed.lower():
                return allowed
        words = set(re.findall(r"[\w'-]+", lowered))
        for allowed in self.values:
            low = allowed.lower()
            if (" " in low and low in lowered) or low in words:
                return allowed
        return None


def coerce_bool(value: Any) -> bool | None:
    """Read yes/no style text (or a bool) as a bool; ``None`` if unclear."""
    if isinstance(value, bool):
        return value
    words = str(value).strip().lower().strip(string.punctuation + " ").split()
    if not words:
        return None
    if words[0] in _TRUE_WORDS or " ".join(words[:2]) in ("of course", "go ahead"):
        return True
    if words[0] in _FALSE_WORDS or " ".join(words[:2]) in ("don't", "do not"):
        return False
    return None


def coerce_float(value: Any) -> float | None:
    """Read the first number in ``value``; ``None`` when there is none."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    match = _NUMBER.search(str(value))
    return float(match.group().replace(",", ".")) if match else None


@dataclass(frozen=True)
class ResponseVariation:
    """One variation of a response: text and optional buttons."""

    text: str
    buttons: tuple[dict[str, str], ...] = ()
    condition: tuple[tuple[str, Any], ...] = ()
    path: str = field(default="", compare=False)
    line: int | None = field(default=None, compare=False)


class _SafeFormat(dict[str, Any]):
    """Format mapping that leaves unknown ``{names}`` as they are."""

    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def render(template: str, slots: dict[str, Any], context: dict[str, Any] | None = None) -> str:
    """Fill ``{slot}`` and ``{context.key}`` placeholders; unknown ones stay."""

    def repl(match: re.Match[str]) -> str:
        name = match.group(1)
        if name.startswith("context."):
            value = (context or {}).get(name[len("context.") :])
        elif name.startswith("slots."):
            value = slots.get(name[len("slots.") :])
        elif name in slots:
            value = slots[name]
        else:
            return match.group(0)
        if value is None:
            return ""
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, list | tuple):
            return ", ".join(str(v) for v in value)
        return str(value)

    return re.sub(r"\{([A-Za-z_][\w.]*)\}", repl, template)


@dataclass
class Domain:
    """Slots, responses, intents and action names of a bot."""

    slots: dict[str, Slot] = field(default_factory=dict)
    responses: dict[str, tuple[ResponseVariation, ...]] = field(default_factory=dict)
    intents: list[str] = field(default_factory=list)
    entities: list[str] = field(default_factory=list)
    actions: list[str] = field(default_factory=list)

    def merge(self, other: Domain) -> None:
        """Add ``other``'s content; its responses and slots win on a clash."""
        self.slots.update(other.slots)
        self.responses.update(other.responses)
        for mine, theirs in (
            (self.intents, other.intents),
            (self.entities, other.entities),
            (self.actions, other.actions),
        ):
            mine.extend(x for x in theirs if x not in mine)

    def initial_slots(self) -> dict[str, Any]:
        """Return every slot at its initial value."""
        return {name: slot.initial_value for name, slot in self.slots.items()}

    def pick(
        self,
        name: str,
        slots: dict[str, Any],
        context: dict[str, Any] | None = None,
        rng: random.Random | None = None,
    ) -> ResponseVariation | None:
        """Choose and render one variation of response ``name``."""
        variations = [v for v in self.responses.get(name, ()) if _matches(v, slots)]
        if not variations:
            return None
        chosen = (rng or random).choice(variations)
        buttons = tuple(
            {
                "title": render(b["title"], slots, context),
                "payload": render(b["payload"], slots, context),
            }
            for b in chosen.buttons
        )
        return ResponseVariation(render(chosen.text, slots, context), buttons)

    def to_rasa(self) -> dict[str, Any]:
        """Return the domain as a Rasa-style dict (for action servers)."""
        return {
            "version": "3.1",
            "intents": list(self.intents),
            "entities": list(self.entities),
            "slots": {
                n: {"type": s.type, "initial_value": s.initial_value, "mappings": []}
                for n, s in self.slots.items()
            },
            "responses": {
                n: [{"text": v.text, "buttons": list(v.buttons)} for v in vs]
                for n, vs in self.responses.items()
            },
            "actions": list(self.actions),
            "forms": {},
        }


def _matches(variation: ResponseVariation, slots: dict[str, Any]) -> bool:
    return all(slots.get(name) == value for name, value in variation.condition)


def parse_domain(data: dict[str, Any], path: str) -> Domain:
    """Build a :class:`Domain` from a loaded domain YAML mapping.

    Raises:
        FlowError: A slot or response is malformed (with file:line).
    """
    domain = Domain()
    for name, spec in (data.get("slots") or {}).items():
        domain.slots[name] = _parse_slot(name, spec, path, line_of(data.get("slots"), name))
    for name, spec in (data.get("responses") or {}).items():
        domain.responses[name] = _parse_response(name, spec, path)
    for key in ("intents", "entities", "actions"):
        items = data.get(key) or []
        if not isinstance(items, list):
            raise FlowError(path, line_of(data, key), f"'{key}' must be a list")
        names = [next(iter(i)) if isinstance(i, dict) else str(i) for i in items]
        getattr(domain, key).extend(names)
    return domain


def _parse_slot(name: str, spec: Any, path: str, line: int | None) -> Slot:
    if spec is None:
        spec = {}
    if not isinstance(spec, dict):
        raise FlowError(path, line, f"slot '{name}' must be a mapping")
    slot_type = str(spec.get("type", "text"))
    if slot_type not in SLOT_TYPES:
        raise FlowError(
            path,
            line,
            f"slot '{name}' has unknown type '{slot_type}' (use {', '.join(SLOT_TYPES)})",
        )
    values = tuple(str(v) for v in spec.get("values") or ())
    if slot_type == "categorical" and not values:
        raise FlowError(path, line, f"categorical slot '{name}' needs 'values'")
    slot = Slot(name, slot_type, spec.get("initial_value"), values)
    if not slot.allows(slot.initial_value):
        raise FlowError(
            path,
            line_of(spec, "initial_value") or line,
            f"initial_value {slot.initial_value!r} of slot '{name}' is not one of its values",
        )
    return slot


def _parse_response(name: str, spec: Any, path: str) -> tuple[ResponseVariation, ...]:
    if not isinstance(spec, list) or not spec:
        raise FlowError(path, line_of(spec), f"response '{name}' must be a non-empty list")
    variations = []
    for item in spec:
        if not isinstance(item, dict) or not isinstance(item.get("text", ""), str):
            raise FlowError(path, line_of(item), f"response '{name}' needs a 'text' string")
        buttons = []
        for button in item.get("buttons") or []:
            if not isinstance(button, dict) or "title" not in button:
                raise FlowError(path, line_of(button), f"button of '{name}' needs a 'title'")
            title = str(button["title"])
            buttons.append({"title": title, "payload": str(button.get("payload", title))})
        cond = tuple(
            (str(c.get("name")), c.get("value"))
            for c in item.get("condition") or []
            if isinstance(c, dict)
        )
        variations.append(
            ResponseVariation(str(item.get("text", "")), tuple(buttons), cond, path, line_of(item))
        )
    return tuple(variations)
