"""End-to-end conversation tests in Rasa's e2e format.

A test file holds ``test_cases`` and optionally ``fixtures`` (slot values a
case starts with), ``metadata`` (message metadata) and ``stub_custom_actions``
(canned action results). Steps are either step style (``user``, ``bot``,
``utter``, ``slot_was_set``, ``slot_was_not_set``) or assertion style
(``user`` with ``assertions``). Each case runs in a fresh conversation through
the real NLU and flow engine.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bot import yamlio
from bot.actions.webhook import parse_action_response
from bot.dialogue.events import (
    ActionExecuted,
    BotUttered,
    Event,
    FlowCancelled,
    FlowCompleted,
    FlowStarted,
    SlotSet,
)
from bot.errors import FlowError

if TYPE_CHECKING:
    from bot.dialogue.actions import ActionContext, ActionResult, ActionRunner

_STEP_KEYS = ("user", "bot", "utter", "slot_was_set", "slot_was_not_set")


@dataclass
class TestCase:
    """One parsed test case."""

    name: str
    path: str
    line: int | None
    steps: list[dict[str, Any]]
    slots: dict[str, Any] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)
    stubs: dict[str, Any] = field(default_factory=dict)


@dataclass
class CaseResult:
    """The outcome of one case: ``error`` is ``None`` when it passed."""

    case: TestCase
    error: str | None = None


def _named(items: Any, path: str, what: str) -> dict[str, Any]:
    """Read Rasa's ``- name: value`` lists (fixtures, metadata) into a dict."""
    result: dict[str, Any] = {}
    if items is None:
        return result
    if not isinstance(items, list):
        raise FlowError(path, yamlio.line_of(items), f"'{what}' must be a list")
    for item in items:
        if not isinstance(item, dict) or len(item) != 1:
            raise FlowError(path, yamlio.line_of(item), f"each '{what}' item is '- name: ...'")
        name, value = next(iter(item.items()))
        result[name] = value
    return result


def _fixture_slots(value: Any) -> dict[str, Any]:
    slots: dict[str, Any] = {}
    for entry in value or []:
        if isinstance(entry, dict):
            slots.update(entry)
    return slots


def load_cases(path: Path) -> list[TestCase]:
    """Read the test cases of one file.

    Raises:
        FlowError: The file is malformed (with file:line).
    """
    data = yamlio.load(path)
    name = str(path)
    if not isinstance(data, dict) or not isinstance(data.get("test_cases"), list):
        raise FlowError(name, yamlio.line_of(data), "the file needs a 'test_cases' list")
    fixtures = _named(data.get("fixtures"), name, "fixtures")
    metadata = _named(data.get("metadata"), name, "metadata")
    stubs = data.get("stub_custom_actions") or {}
    cases: list[TestCase] = []
    for raw in data["test_cases"]:
        if not isinstance(raw, dict) or not isinstance(raw.get("steps"), list):
            raise FlowError(name, yamlio.line_of(raw), "a test case needs 'test_case' and 'steps'")
        case_name = str(raw.get("test_case", f"case_{len(cases) + 1}"))
        slots: dict[str, Any] = {}
        for fixture in raw.get("fixtures") or []:
            if fixture not in fixtures:
                raise FlowError(name, yamlio.line_of(raw), f"unknown fixture '{fixture}'")
            slots.update(_fixture_slots(fixtures[fixture]))
        meta = metadata.get(raw["metadata"], {}) if raw.get("metadata") else {}
        case_stubs = {
            key.split("::", 1)[1] if "::" in key else key: value
            for key, value in stubs.items()
            if "::" not in key or key.split("::", 1)[0] == case_name
        }
        steps = list(raw["steps"])
        for step in steps:
            if not isinstance(step, dict) or not any(k in step for k in _STEP_KEYS):
                raise FlowError(name, yamlio.line_of(step), f"unknown step in '{case_name}'")
        cases.append(TestCase(case_name, name, yamlio.line_of(raw), steps, slots, meta, case_stubs))
    return cases


class StubRunner:
    """Answers stubbed actions from the test file; others go to the real runner."""

    def __init__(self, stubs: dict[str, Any], fallback: ActionRunner | None) -> None:
        self.stubs = stubs
        self.fallback = fallback

    def has(self, name: str) -> bool:
        """Return whether the action is stubbed or known to the real runner."""
        return name in self.stubs or (self.fallback is not None and self.fallback.has(name))

    async def run(self, name: str, context: ActionContext) -> ActionResult:
        """Return the stub's result, or run the real action."""
        if name in self.stubs:
            return parse_action_response(name, self.stubs[name])
        assert self.fallback is not None
        return await self.fallback.run(name, context)


def _slot_items(value: Any) -> list[tuple[str, Any, bool]]:
    """Normalise slot lists: ``- slot: value``, ``- slot`` or ``- name: x / value: y``."""
    items: list[tuple[str, Any, bool]] = []
    for entry in value or []:
        if isinstance(entry, str):
            items.append((entry, None, False))
        elif isinstance(entry, dict) and "name" in entry:
            items.append((str(entry["name"]), entry.get("value"), "value" in entry))
        elif isinstance(entry, dict):
            items.extend((str(k), v, True) for k, v in entry.items())
    return items


def _set_slots(events: list[Event]) -> dict[str, Any]:
    return {e.name: e.value for e in events if isinstance(e, SlotSet)}


def check_slots(events: list[Event], expected: Any, negate: bool) -> str | None:
    """Check ``slot_was_set`` (or, with ``negate``, ``slot_was_not_set``)."""
    was_set = _set_slots(events)
    for name, value, has_value in _slot_items(expected):
        hit = name in was_set and (not has_value or was_set[name] == value)
        if hit == negate:
            verb = "was" if negate else "was not"
            shown = f"{name}={value!r}" if has_value else name
            return f"slot {shown} {verb} set (set: {was_set})"
    return None


def _uttered(event: BotUttered, spec: Any) -> bool:
    if not isinstance(spec, dict):
        return event.response == spec
    if "utter_name" in spec and event.response != spec["utter_name"]:
        return False
    if "text_matches" in spec and not re.search(str(spec["text_matches"]), event.text):
        return False
    if "buttons" in spec:
        titles = [(b["title"], b["payload"]) for b in event.buttons]
        wanted = [(b.get("title"), b.get("payload")) for b in spec["buttons"] or []]
        return titles == wanted
    return True


def check_assertion(events: list[Event], assertion: dict[str, Any]) -> str | None:
    """Check one assertion-style item against a turn's events."""
    kind, spec = next(iter(assertion.items()))
    flow_id = spec.get("flow_id") if isinstance(spec, dict) else spec
    by_kind: dict[str, type[Event]] = {
        "flow_started": FlowStarted,
        "flow_completed": FlowCompleted,
        "flow_cancelled": FlowCancelled,
    }
    if kind in by_kind:
        found = any(isinstance(e, by_kind[kind]) and e.flow_id == flow_id for e in events)  # type: ignore[attr-defined]
        return None if found else f"{kind} {flow_id} did not happen"
    if kind == "action_executed":
        found = any(isinstance(e, ActionExecuted) and e.name == spec for e in events)
        return None if found else f"action {spec} was not executed"
    if kind in ("slot_was_set", "slot_was_not_set"):
        return check_slots(events, spec, negate=kind == "slot_was_not_set")
    if kind in ("bot_uttered", "bot_did_not_utter"):
        found = any(isinstance(e, BotUttered) and _uttered(e, spec) for e in events)
        if found == (kind == "bot_uttered"):
            return None
        return f"{kind} {spec} failed"
    return f"unknown assertion '{kind}'"
