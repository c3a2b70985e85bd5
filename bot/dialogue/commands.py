"""Turning the NLU's reading of a message into one dialogue command.

This is the rule-based counterpart of CALM's command generator: given the
dialogue state and the parse result, it decides whether the message fills the
slot being collected, corrects an earlier answer, starts (or digresses to) a
flow, cancels, asks for a human, is small talk, or is open-ended.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from bot.dialogue.domain import coerce_bool

if TYPE_CHECKING:
    from bot.dialogue.flows import Flow, Step
    from bot.dialogue.nlu import ParseResult
    from bot.dialogue.project import Project
    from bot.dialogue.state import DialogueState

CANCEL_INTENT = "cancel"
HANDOFF_INTENT = "human_handoff"
CHITCHAT_INTENT = "chitchat"
#: An informational question: it goes to the knowledge base, never to a flow
#: (CALM's SearchAndReply). Its examples are the bot's own NLU data.
SEARCH_INTENT = "knowledge_question"
#: A message whose :data:`SEARCH_INTENT` confidence reaches this goes to the
#: knowledge base even when a task intent ranks first: "my account is locked,
#: how long does the lock last?" asks about the lock, not for a reset. Measured
#: on the default bot (tests/data/kb/routing.yml and dev.yml): task requests
#: reached at most 0.33, informational questions that a task intent won
#: reached 0.37 to 0.45.
SEARCH_THRESHOLD = 0.35
_ANSWER_INTENTS = frozenset({"affirm", "deny", "inform"})


@dataclass(frozen=True)
class Command:
    """What to do with a message.

    ``kind`` is one of ``fill``, ``correct``, ``start``, ``cancel``,
    ``handoff``, ``chitchat`` and ``open_ended`` (the knowledge base answers).
    """

    kind: str
    flow_id: str | None = None
    slots: dict[str, Any] = field(default_factory=dict)


def waiting_step(project: Project, state: DialogueState) -> tuple[Flow, Step] | None:
    """Return the collect step the conversation is waiting on, if any."""
    top = state.top()
    if top is None or not top.waiting or top.step_id is None:
        return None
    flow = project.flows[top.flow_id]
    return flow, flow.steps[top.step_id]


def triggered_flow(project: Project, state: DialogueState, parse: ParseResult) -> str | None:
    """Return the user flow the message's intent triggers, if any."""
    if parse.intent is None or parse.out_of_scope:
        return None
    namespace = {"slots": state.slots, "context": {}}
    for flow in project.flows.values():
        for intent, threshold in flow.triggers:
            if intent != parse.intent.name or parse.intent.confidence < threshold:
                continue
            if flow.guard is None or flow.guard.evaluate(namespace):
                return flow.id
    return None


def search_confidence(parse: ParseResult) -> float:
    """Return how sure the NLU is that the message is an informational question."""
    return max((i.confidence for i in parse.ranking if i.name == SEARCH_INTENT), default=0.0)


def entity_slots(project: Project, parse: ParseResult) -> dict[str, Any]:
    """Return entity values whose entity name is a slot, coerced to its type."""
    values: dict[str, Any] = {}
    for entity in parse.entities:
        slot = project.domain.slots.get(entity.entity)
        if slot is not None and entity.entity not in values:
            coerced = slot.coerce(entity.value)
            if coerced is not None:
                values[entity.entity] = coerced
    return values


def decide(project: Project, state: DialogueState, parse: ParseResult) -> Command:
    """Choose the command for one user message."""
    intent = parse.intent.name if parse.intent and not parse.out_of_scope else None
    user_frame = state.top_user_frame()
    if intent == CANCEL_INTENT and user_frame is not None:
        return Command("cancel", user_frame.flow_id)
    if intent == HANDOFF_INTENT:
        return Command("handoff")
    entities = entity_slots(project, parse)
    waiting = waiting_step(project, state)
    if waiting is not None:
        return _while_collecting(project, state, parse, entities, waiting)
    if intent is not None and search_confidence(parse) >= SEARCH_THRESHOLD:
        return Command("open_ended")
    flow_id = triggered_flow(project, state, parse)
    if flow_id is not None:
        return Command("start", flow_id, entities)
    if intent == CHITCHAT_INTENT:
        return Command("chitchat")
    return Command("open_ended")


def _while_collecting(
    project: Project,
    state: DialogueState,
    parse: ParseResult,
    entities: dict[str, Any],
    waiting: tuple[Flow, Step],
) -> Command:
    flow, step = waiting
    slot_name = step.value
    user_frame = state.top_user_frame()
    active = project.flows[user_frame.flow_id] if user_frame else flow
    corrections = {
        name: value
        for name, value in entities.items()
        if name != slot_name
        and name in active.collected_slots()
        and state.slots.get(name) is not None
        and state.slots.get(name) != value
    }
    if slot_name in entities:
        return Command("fill", flow.id, {**entities})
    if corrections:
        return Command("correct", active.id, corrections)
    intent = parse.intent.name if parse.intent and not parse.out_of_scope else None
    value = _coerce(project, slot_name, parse)
    target = triggered_flow(project, state, parse)
    if target is not None and target != active.id and intent not in _ANSWER_INTENTS:
        slot_type = project.domain.slots[slot_name].type
        if value is None or slot_type in ("text", "any"):
            return Command("start", target, entities)
    if intent == CHITCHAT_INTENT and value is None:
        return Command("chitchat")
    return Command("fill", flow.id, {**entities, slot_name: value})


def _coerce(project: Project, slot_name: str, parse: ParseResult) -> Any:
    slot = project.domain.slots[slot_name]
    if slot.type == "bool" and parse.intent is not None:
        if parse.intent.name == "affirm":
            return True
        if parse.intent.name == "deny":
            return False
        return coerce_bool(parse.text)
    return slot.coerce(parse.text)
