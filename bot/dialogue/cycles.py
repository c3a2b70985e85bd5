"""Loops of steps that never wait for the customer, within a flow or across flows.

Steps form a graph: a step leads to its ``next`` targets, a ``link`` or
``call`` leads to the first step of its flow, and a ``call`` leads on to its
own ``next`` once the called flow returns. A cycle in that graph that
passes through no ``collect`` runs until the turn's step limit, uttering
on each round, and fails the turn (see :mod:`bot.manager` for what happens
then); such a cycle is rejected when the bot loads. A ``call``'s way back
counts as passing a ``collect`` when the called flow (or a flow it links
to or calls) has one, since it may wait for the customer there.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from bot.dialogue.flows import END, Flow, Step
from bot.errors import FlowError

Node = tuple[str, str]
"""A step of the bot: ``(flow id, step id)``."""


def _may_wait(flows: Mapping[str, Flow]) -> set[str]:
    """Return the ids of the flows that have a ``collect``, directly or through others."""
    waiting = {f.id for f in flows.values() if any(s.kind == "collect" for s in f.steps.values())}
    changed = True
    while changed:
        changed = False
        for flow in flows.values():
            if flow.id in waiting:
                continue
            if any(s.kind in ("link", "call") and s.value in waiting for s in flow.steps.values()):
                waiting.add(flow.id)
                changed = True
    return waiting


def _successors(
    flows: Mapping[str, Flow], flow: Flow, step: Step, waiting: set[str]
) -> Iterator[Node]:
    """Yield the steps ``step`` can lead to without waiting for the customer."""
    if step.kind == "collect":
        return
    if step.kind in ("link", "call"):
        target = flows.get(step.value)
        if target is not None and target.first in target.steps:
            yield (target.id, target.first)
        if step.kind == "call" and step.value in waiting:
            return  # back from the call only after the customer answered
    for branch in step.next:
        if branch.target != END and branch.target in flow.steps:
            yield (flow.id, branch.target)


def _describe(loop: list[Node]) -> str:
    """Name the steps of a loop: bare step ids within one flow, ``flow.step`` across."""
    if len({flow_id for flow_id, _ in loop}) == 1:
        return " -> ".join(step_id for _, step_id in loop)
    return " -> ".join(f"{flow_id}.{step_id}" for flow_id, step_id in loop)


def _error(flows: Mapping[str, Flow], loop: list[Node]) -> FlowError:
    """The error for ``loop`` (its first node repeated at the end), at the step to change.

    That is the first ``link`` or ``call`` of the loop when it has one, else
    the step the loop returns to.
    """
    crossing = [n for n in loop[:-1] if flows[n[0]].steps[n[1]].kind in ("link", "call")]
    flow_id, step_id = crossing[0] if crossing else loop[-1]
    flow, step = flows[flow_id], flows[flow_id].steps[step_id]
    several = len({flow_id for flow_id, _ in loop}) > 1
    what = "flows that link or call each other" if several else "steps"
    return FlowError(
        flow.path,
        step.line or flow.line,
        f"flow '{flow.id}', step '{step.id}': {what} {_describe(loop)} "
        "form a cycle without a 'collect'",
    )


def check_cycles(flows: Mapping[str, Flow]) -> None:
    """Reject a cycle of steps, within a flow or across flows, that never waits.

    The search is iterative, so a long chain of steps cannot exhaust the
    interpreter's stack.

    Args:
        flows: Every flow of the bot, patterns included, whose references
            were checked already.

    Raises:
        FlowError: A cycle passes through no ``collect`` (with file:line).
    """
    waiting = _may_wait(flows)
    state: dict[Node, int] = {}  # 1: on the current path, 2: done
    for flow in flows.values():
        for step_id in flow.steps:
            start = (flow.id, step_id)
            if start in state:
                continue
            path: list[Node] = [start]
            todo = [_successors(flows, flow, flow.steps[step_id], waiting)]
            state[start] = 1
            while todo:
                node = next(todo[-1], None)
                if node is None:
                    state[path.pop()] = 2
                    todo.pop()
                elif state.get(node) == 1:
                    raise _error(flows, [*path[path.index(node) :], node])
                elif node not in state:
                    state[node] = 1
                    path.append(node)
                    target = flows[node[0]]
                    todo.append(_successors(flows, target, target.steps[node[1]], waiting))
