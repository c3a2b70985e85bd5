"""Cross-checks of flows against each other and against the domain.

Unknown slots and responses, dangling step ids, unknown flows in
``link``/``call``, and cycles of steps without a ``collect`` (within a flow
or across flows that link or call each other, see :mod:`bot.dialogue.cycles`)
are all errors that name the file, the flow, the step and the line.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from bot.dialogue.cycles import check_cycles
from bot.dialogue.domain import Domain
from bot.dialogue.flows import END, Flow, Step
from bot.errors import FlowError

BUILTIN_ACTIONS = frozenset(
    {
        "action_listen",
        "action_cancel_flow",
        "action_correct_flow_slot",
        "action_human_handoff",
        "action_handoff_email",
        "action_trigger_chitchat",
        "action_clean_stack",
        "action_restart",
    }
)


def _fail(flow: Flow, step: Step | None, reason: str) -> FlowError:
    where = f"flow '{flow.id}'" + (f", step '{step.id}'" if step else "")
    line = step.line if step and step.line else flow.line
    return FlowError(flow.path, line, f"{where}: {reason}")


def validate(flows: dict[str, Flow], domain: Domain, has_action: Callable[[str], bool]) -> None:
    """Check every flow; raise the first problem found.

    Args:
        flows: Every flow of the bot, patterns included, by id.
        domain: The merged domain.
        has_action: Whether a custom action name can be run.

    Raises:
        FlowError: Something refers to what does not exist, or a cycle
            cannot stop for input.
    """
    for flow in flows.values():
        _check_refs(flow, flow.guard.references if flow.guard else (), domain, None)
        for step in flow.steps.values():
            _check_step(flow, step, flows, domain, has_action)
    check_cycles(flows)


def _check_refs(flow: Flow, refs: Iterable[str], domain: Domain, step: Step | None) -> None:
    for ref in refs:
        if ref.startswith("slots.") and ref[len("slots.") :] not in domain.slots:
            raise _fail(flow, step, f"unknown slot '{ref[len('slots.') :]}' in a condition")


def _check_response(flow: Flow, step: Step, domain: Domain, name: str) -> None:
    if name not in domain.responses:
        raise _fail(flow, step, f"unknown response '{name}'")


def _check_step(
    flow: Flow,
    step: Step,
    flows: dict[str, Flow],
    domain: Domain,
    has_action: Callable[[str], bool],
) -> None:
    for branch in step.next:
        if branch.target != END and branch.target not in flow.steps:
            raise _fail(flow, step, f"'next' points to unknown step '{branch.target}'")
        if branch.condition is not None:
            _check_refs(flow, branch.condition.references, domain, step)
    if step.kind == "collect":
        if step.value not in domain.slots:
            raise _fail(flow, step, f"collect of unknown slot '{step.value}'")
        _check_response(flow, step, domain, step.utter or f"utter_ask_{step.value}")
        for rejection in step.rejections:
            _check_refs(flow, rejection.condition.references, domain, step)
            _check_response(flow, step, domain, rejection.utter)
    elif step.kind == "set_slots":
        for slot in step.value:
            if slot not in domain.slots:
                raise _fail(flow, step, f"set_slots of unknown slot '{slot}'")
    elif step.kind in ("link", "call"):
        if step.value not in flows:
            raise _fail(flow, step, f"'{step.kind}' to unknown flow '{step.value}'")
    elif step.kind == "action":
        name = step.value
        if name.startswith("utter_"):
            _check_response(flow, step, domain, name)
        elif name not in BUILTIN_ACTIONS and not has_action(name):
            raise _fail(flow, step, f"unknown action '{name}'")
