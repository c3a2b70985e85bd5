"""The flows an import produces, with what the story checker needs to know of them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

#: Rasa actions that have a Helpline counterpart of the same name.
KEPT_DEFAULT_ACTIONS = frozenset({"action_restart"})


@dataclass
class FormPlan:
    """A form turned into a flow: what it asks for and what it runs around that."""

    name: str
    slots: list[str]
    asks: dict[str, str]
    pre: list[str] = field(default_factory=list)
    submit: list[str] = field(default_factory=list)
    text_slots: set[str] = field(default_factory=set)

    def next_slot(self, filled: set[str]) -> str | None:
        """Return the first required slot not in ``filled``."""
        return next((s for s in self.slots if s not in filled), None)


@dataclass
class FlowPlan:
    """One generated flow.

    Attributes:
        flow_id: The flow's id in ``flows.yml``.
        spec: The flow as it is written to ``flows.yml``.
        intents: The intents that trigger it.
        actions: What a simple (rule or story) flow runs, in order.
        form: The form, for a flow made from one.
        guarded: Whether the flow only starts under a slot condition.
    """

    flow_id: str
    spec: dict[str, Any]
    intents: list[str]
    actions: list[str] = field(default_factory=list)
    form: FormPlan | None = None
    guarded: bool = False


def flow_spec(
    name: str, description: str, intents: list[str], steps: list[dict[str, Any]]
) -> dict[str, Any]:
    """Return a flow mapping in Rasa CALM's format."""
    spec: dict[str, Any] = {"name": name, "description": description}
    if intents:
        spec["nlu_trigger"] = [{"intent": i} for i in intents]
    spec["steps"] = steps or [{"noop": True}]
    return spec


def action_steps(actions: list[str]) -> list[dict[str, Any]]:
    """Return one ``action`` step per action name."""
    return [{"action": a} for a in actions]


def unique_id(base: str, taken: set[str]) -> str:
    """Return ``base``, or ``base_2``, ``base_3``... whichever is not in ``taken``; take it."""
    candidate, number = base, 1
    while candidate in taken or candidate.startswith("pattern_"):
        number += 1
        candidate = f"{base.removeprefix('pattern_')}_{number}"
    taken.add(candidate)
    return candidate
