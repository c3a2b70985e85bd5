"""Rules and stories as typed steps, checked against the domain.

A step is an ``intent`` (with its entities and optional ``user`` text), an
``action``, an ``active_loop``, a ``slot_was_set``, a ``checkpoint`` or an
``or`` of alternatives. A reference to a response, action or intent the
domain does not declare is an error at its ``file:line``, as ``rasa data
validate`` would report it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from bot.errors import SourceError
from bot.rasa_import.reader import Where, where

if TYPE_CHECKING:
    from bot.rasa_import.reader import RasaProject

#: Rasa's default actions, which every domain has.
DEFAULT_ACTIONS = frozenset(
    {
        "action_listen",
        "action_restart",
        "action_session_start",
        "action_default_fallback",
        "action_deactivate_loop",
        "action_revert_fallback_events",
        "action_default_ask_affirmation",
        "action_default_ask_rephrase",
        "action_two_stage_fallback",
        "action_unlikely_intent",
        "action_back",
        "action_extract_slots",
    }
)
#: Rasa's default intents, which every domain has.
DEFAULT_INTENTS = frozenset({"restart", "back", "out_of_scope", "session_start", "nlu_fallback"})
_KINDS = ("intent", "action", "active_loop", "slot_was_set", "checkpoint", "or", "bot")


@dataclass(frozen=True)
class Step:
    """One step of a rule or story."""

    kind: str
    value: Any
    where: Where
    entities: dict[str, Any] = field(default_factory=dict)
    user: str | None = None


@dataclass
class Block:
    """A rule or a story."""

    kind: str
    name: str
    where: Where
    steps: list[Step]
    condition: list[Step] = field(default_factory=list)
    wait_for_user_input: bool = True
    conversation_start: bool = False


class _Checker:
    """Parses steps and checks their names against the domain."""

    def __init__(self, project: RasaProject) -> None:
        self.responses = set(project.section("responses"))
        self.actions = set(project.section("actions")) | DEFAULT_ACTIONS
        self.forms = set(project.section("forms"))
        self.intents = set(project.section("intents")) | DEFAULT_INTENTS

    def entities(self, value: Any, path: str) -> dict[str, Any]:
        found: dict[str, Any] = {}
        for item in value or []:
            if isinstance(item, str):
                found[item] = None
            elif isinstance(item, dict) and "entity" in item:
                found[str(item["entity"])] = item.get("value")
            elif isinstance(item, dict):
                found.update({str(k): v for k, v in item.items()})
            else:
                raise SourceError(path, where(path, value).line, "malformed entities")
        return found

    def step(self, item: Any, path: str, block: str) -> Step:
        place = where(path, item)
        if not isinstance(item, dict):
            raise SourceError(path, place.line, f"{block}: a step must be a mapping")
        kinds = [k for k in _KINDS if k in item]
        if not kinds and "user" in item:
            kinds = ["intent"]
        if len(kinds) != 1:
            raise SourceError(path, place.line, f"{block}: unknown step {sorted(item)}")
        kind = kinds[0]
        value = item.get(kind)
        if kind == "or":
            if not isinstance(value, list) or not value:
                raise SourceError(path, place.line, f"{block}: 'or' needs a list of steps")
            value = [self.step(alt, path, block) for alt in value]
        elif kind == "intent":
            self.check_intent(value, path, place, block)
        elif kind == "action":
            self.check_action(value, path, place, block)
        user = item.get("user")
        entities = self.entities(item.get("entities"), path) if kind == "intent" else {}
        return Step(kind, value, place, entities, str(user) if user is not None else None)

    def check_intent(self, value: Any, path: str, place: Where, block: str) -> None:
        if not isinstance(value, str) or not value:
            raise SourceError(path, place.line, f"{block}: 'intent' needs a name")
        if value not in self.intents:
            raise SourceError(path, place.line, f"{block}: unknown intent '{value}'")

    def check_action(self, value: Any, path: str, place: Where, block: str) -> None:
        if not isinstance(value, str) or not value:
            raise SourceError(path, place.line, f"{block}: 'action' needs a name")
        if value.startswith("utter_"):
            if value not in self.responses:
                raise SourceError(path, place.line, f"{block}: unknown response '{value}'")
        elif value not in self.actions and value not in self.forms:
            raise SourceError(
                path, place.line, f"{block}: unknown action '{value}' (not in the domain)"
            )


def _block(checker: _Checker, kind: str, path: str, item: Any) -> Block:
    place = where(path, item)
    if not isinstance(item, dict) or not isinstance(item.get(kind), str):
        raise SourceError(path, place.line, f"each '{kind}s' item needs '{kind}: NAME'")
    label = f"{kind} '{item[kind]}'"
    raw_steps = item.get("steps")
    if not isinstance(raw_steps, list):
        raise SourceError(path, place.line, f"{label}: 'steps' must be a list")
    steps = [checker.step(s, path, label) for s in raw_steps]
    condition = [checker.step(s, path, label) for s in item.get("condition") or []]
    return Block(
        kind,
        item[kind],
        place,
        steps,
        condition,
        bool(item.get("wait_for_user_input", True)),
        bool(item.get("conversation_start", False)),
    )


def read_blocks(project: RasaProject, kind: str) -> list[Block]:
    """Return every rule (``kind="rule"``) or story (``kind="story"``) of the project.

    Raises:
        SourceError: A step is malformed or names what the domain lacks.
    """
    checker = _Checker(project)
    section = {"rule": "rules", "story": "stories"}[kind]
    return [_block(checker, kind, path, item) for path, item in project.items(section)]
