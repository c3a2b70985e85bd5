"""The flow model and the parser for Rasa CALM's ``flows.yml`` format.

Nested ``then`` step lists are flattened at load time, so a flow is a flat
mapping of step ids to steps whose ``next`` is always a tuple of branches.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from bot.dialogue.conditions import Condition, ConditionError, condition_from_value
from bot.errors import FlowError
from bot.yamlio import line_of

END = "END"
STEP_KINDS = ("collect", "action", "set_slots", "link", "call", "noop")
_STEP_KEYS = {
    "collect": {
        "utter",
        "ask_before_filling",
        "reset_after_flow_ends",
        "rejections",
        "description",
    },
    "action": set(),
    "set_slots": set(),
    "link": set(),
    "call": set(),
    "noop": set(),
}


@dataclass(frozen=True)
class Branch:
    """One way out of a step: taken when ``condition`` holds (``None``: always)."""

    condition: Condition | None
    target: str


@dataclass(frozen=True)
class Rejection:
    """A collect rejection: when ``condition`` holds, utter and ask again."""

    condition: Condition
    utter: str


@dataclass(frozen=True)
class Step:
    """One flattened step of a flow."""

    id: str
    kind: str
    value: Any
    next: tuple[Branch, ...]
    line: int | None = None
    utter: str | None = None
    ask_before_filling: bool = False
    reset_after_flow_ends: bool = True
    rejections: tuple[Rejection, ...] = ()
    description: str = ""
    explicit_next: bool = False


@dataclass
class Flow:
    """A parsed flow: metadata plus its flattened steps."""

    id: str
    description: str
    path: str
    line: int | None
    name: str = ""
    guard: Condition | None = None
    triggers: tuple[tuple[str, float], ...] = ()
    trigger_lines: tuple[int | None, ...] = ()
    persisted_slots: tuple[str, ...] = ()
    steps: dict[str, Step] = field(default_factory=dict)
    first: str = END

    @property
    def title(self) -> str:
        """Human-readable name: ``name`` or the id with spaces."""
        return self.name or self.id.replace("_", " ")

    @property
    def is_pattern(self) -> bool:
        """Whether this flow is a conversation-repair pattern."""
        return self.id.startswith("pattern_")

    def collect_step(self, slot: str) -> Step | None:
        """Return the first collect step of ``slot``, if any."""
        return next(
            (s for s in self.steps.values() if s.kind == "collect" and s.value == slot), None
        )

    def collected_slots(self) -> set[str]:
        """Return the slots this flow collects or sets."""
        names: set[str] = set()
        for step in self.steps.values():
            if step.kind == "collect":
                names.add(step.value)
            elif step.kind == "set_slots":
                names.update(step.value)
        return names

    def resettable_slots(self) -> list[str]:
        """Slots the flow collected or set that do not outlive it."""
        keep = set(self.persisted_slots)
        names: list[str] = []
        for step in self.steps.values():
            if step.kind == "collect" and step.reset_after_flow_ends:
                names.append(step.value)
            elif step.kind == "set_slots":
                names.extend(step.value)
        return [n for n in dict.fromkeys(names) if n not in keep]


class _FlowParser:
    """Parses one flow's YAML mapping into a :class:`Flow`."""

    def __init__(self, flow_id: str, spec: dict[str, Any], path: str, line: int | None) -> None:
        self.flow_id = flow_id
        self.spec = spec
        self.path = path
        self.counter = 0
        self.flow = Flow(flow_id, "", path, line)

    def error(self, node: Any, reason: str, step: str | None = None) -> FlowError:
        where = f"flow '{self.flow_id}'" + (f", step '{step}'" if step else "")
        line = self.flow.line if node is self.spec else line_of(node)
        return FlowError(self.path, line or self.flow.line, f"{where}: {reason}")

    def condition(self, value: Any, node: Any, step: str | None = None) -> Condition:
        try:
            return condition_from_value(value)
        except ConditionError as exc:
            raise self.error(node, f"invalid condition: {exc}", step) from exc

    def parse(self) -> Flow:
        spec = self.spec
        known = {
            "description",
            "name",
            "if",
            "nlu_trigger",
            "persisted_slots",
            "steps",
            "always_include_in_prompt",
        }
        unknown = set(spec) - known
        if unknown:
            raise self.error(spec, f"unknown field(s) {', '.join(sorted(unknown))}")
        description = spec.get("description")
        if not isinstance(description, str) or not description.strip():
            raise self.error(spec, "a 'description' is required")
        self.flow.description = description.strip()
        self.flow.name = str(spec.get("name") or "")
        if "if" in spec:
            self.flow.guard = self.condition(spec["if"], spec)
        self.flow.triggers = self._triggers(spec.get("nlu_trigger"))
        items = spec.get("nlu_trigger") or ()
        self.flow.trigger_lines = tuple(line_of(item) or line_of(items) for item in items)
        persisted = spec.get("persisted_slots") or []
        if not isinstance(persisted, list):
            raise self.error(spec, "'persisted_slots' must be a list")
        self.flow.persisted_slots = tuple(str(s) for s in persisted)
        steps = spec.get("steps")
        if not isinstance(steps, list) or not steps:
            raise self.error(spec, "'steps' must be a non-empty list")
        self.flow.first = self._steps(steps, END)
        return self.flow

    def _triggers(self, value: Any) -> tuple[tuple[str, float], ...]:
        if value is None:
            return ()
        if not isinstance(value, list):
            raise self.error(self.spec, "'nlu_trigger' must be a list")
        triggers = []
        for item in value:
            intent = item.get("intent") if isinstance(item, dict) else None
            if isinstance(intent, str):
                triggers.append((intent, 0.0))
            elif isinstance(intent, dict) and isinstance(intent.get("name"), str):
                triggers.append((intent["name"], float(intent.get("confidence_threshold", 0.0))))
            else:
                raise self.error(item, "each 'nlu_trigger' item needs 'intent: NAME'")
        return tuple(triggers)

    def _steps(self, items: list[Any], after: str) -> str:
        """Parse a step list whose last step continues to ``after``; return the first id."""
        ids = [self._step_id(item) for item in items]
        for index, item in enumerate(items):
            follow = ids[index + 1] if index + 1 < len(items) else after
            self._step(ids[index], item, follow)
        return ids[0]

    def _step_id(self, item: Any) -> str:
        if not isinstance(item, dict):
            raise self.error(item, "a step must be a mapping")
        kinds = [k for k in STEP_KINDS if k in item]
        if len(kinds) != 1:
            raise self.error(item, f"a step needs exactly one of {', '.join(STEP_KINDS)}")
        self.counter += 1
        step_id = item.get("id") or f"{self.counter}_{kinds[0]}_{item[kinds[0]]}"
        step_id = str(step_id)
        if step_id in self.flow.steps or step_id == END:
            raise self.error(item, f"duplicate step id '{step_id}'", step_id)
        self.flow.steps[step_id] = Step(step_id, kinds[0], None, ())
        return step_id

    def _step(self, step_id: str, item: dict[str, Any], follow: str) -> None:
        kind = next(k for k in STEP_KINDS if k in item)
        allowed = _STEP_KEYS[kind] | {kind, "id", "next", "description"}
        unknown = set(item) - allowed
        if unknown:
            raise self.error(item, f"unknown field(s) {', '.join(sorted(unknown))}", step_id)
        if kind == "link" and "next" in item:
            raise self.error(item, "a 'link' step ends the flow and cannot have 'next'", step_id)
        value = self._value(kind, item, step_id)
        branches = self._next(item["next"], item, step_id, follow) if "next" in item else ()
        if not branches:
            branches = (Branch(None, END if kind == "link" else follow),)
        self.flow.steps[step_id] = Step(
            step_id,
            kind,
            value,
            branches,
            line_of(item),
            utter=item.get("utter"),
            ask_before_filling=bool(item.get("ask_before_filling", False)),
            reset_after_flow_ends=bool(item.get("reset_after_flow_ends", True)),
            rejections=self._rejections(item.get("rejections"), step_id),
            description=str(item.get("description") or ""),
            explicit_next="next" in item,
        )

    def _value(self, kind: str, item: dict[str, Any], step_id: str) -> Any:
        raw = item[kind]
        if kind == "set_slots":
            if not isinstance(raw, list) or not all(isinstance(x, dict) for x in raw):
                raise self.error(item, "'set_slots' must be a list of {slot: value}", step_id)
            return {str(k): v for entry in raw for k, v in entry.items()}
        if kind == "noop":
            return True
        if not isinstance(raw, str) or not raw:
            raise self.error(item, f"'{kind}' needs a name", step_id)
        return raw

    def _rejections(self, value: Any, step_id: str) -> tuple[Rejection, ...]:
        if value is None:
            return ()
        if not isinstance(value, list):
            raise self.error(value, "'rejections' must be a list", step_id)
        result = []
        for item in value:
            if not isinstance(item, dict) or "if" not in item or "utter" not in item:
                raise self.error(item, "each rejection needs 'if' and 'utter'", step_id)
            result.append(Rejection(self.condition(item["if"], item, step_id), str(item["utter"])))
        return tuple(result)

    def _next(self, value: Any, item: Any, step_id: str, follow: str) -> tuple[Branch, ...]:
        if isinstance(value, str):
            return (Branch(None, value),)
        if not isinstance(value, list) or not value:
            raise self.error(
                item, "'next' must be a step id, END or a list of if/then/else", step_id
            )
        branches = []
        for index, option in enumerate(value):
            if not isinstance(option, dict):
                raise self.error(option, "each 'next' item needs 'if'/'then' or 'else'", step_id)
            if "else" in option:
                if index != len(value) - 1:
                    raise self.error(option, "'else' must be the last 'next' item", step_id)
                branches.append(Branch(None, self._target(option["else"], step_id)))
            elif "if" in option and "then" in option:
                cond = self.condition(option["if"], option, step_id)
                branches.append(Branch(cond, self._target(option["then"], step_id)))
            else:
                raise self.error(
                    option, "each 'next' item needs 'if' and 'then', or 'else'", step_id
                )
        if branches[-1].condition is not None:
            raise self.error(item, "a conditional 'next' needs a final 'else'", step_id)
        return tuple(branches)

    def _target(self, value: Any, step_id: str) -> str:
        if isinstance(value, str):
            return value
        if isinstance(value, list) and value:
            return self._steps(value, END)
        raise self.error(value, "'then'/'else' must be a step id, END or a list of steps", step_id)


def parse_flows(data: dict[str, Any], path: str) -> list[Flow]:
    """Parse the ``flows:`` mapping of one file.

    Raises:
        FlowError: The structure is invalid (with file, flow, step and line).
    """
    flows = data.get("flows")
    if not isinstance(flows, dict):
        raise FlowError(path, line_of(data, "flows"), "'flows' must be a mapping of flow ids")
    result = []
    for flow_id, spec in flows.items():
        if not isinstance(spec, dict):
            raise FlowError(path, line_of(flows, flow_id), f"flow '{flow_id}' must be a mapping")
        line = line_of(flows, flow_id)
        result.append(_FlowParser(str(flow_id), spec, path, line).parse())
    return result
