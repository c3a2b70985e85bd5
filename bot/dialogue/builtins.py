"""Built-in actions of the repair patterns, and custom-action plumbing."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any

from bot.dialogue import desk
from bot.dialogue.actions import ActionContext
from bot.dialogue.events import FlowCancelled, HandoffRequested

if TYPE_CHECKING:
    from bot.dialogue.engine import Turn
    from bot.dialogue.state import Frame


def cancel_top_user_flow(turn: Turn) -> str | None:
    """Cancel the topmost user flow and every frame it called; return its id."""
    stack = turn.state.stack
    index = next((i for i in range(len(stack) - 1, -1, -1) if not stack[i].is_pattern), None)
    if index is None:
        return None
    # Frames the flow called sit right above it; patterns above are kept.
    doomed = [stack[index]]
    for frame in stack[index + 1 :]:
        if frame.called and not frame.is_pattern:
            doomed.append(frame)
    for frame in reversed(doomed):
        turn.pop(frame, completed=False)
        turn.emit(FlowCancelled(frame.flow_id))
    return doomed[0].flow_id


async def _cancel_flow(turn: Turn, frame: Frame) -> None:
    cancel_top_user_flow(turn)


async def _human_handoff(turn: Turn, frame: Frame) -> None:
    while cancel_top_user_flow(turn) is not None:
        pass
    reason = str(frame.context.get("reason") or "user_request")
    turn.emit(HandoffRequested(reason))
    turn.result.route = "human"
    turn.result.handoff_reason = reason
    # The pattern then says whether a person can take it (context.available).
    await desk.handoff(turn, frame.context)


async def _handoff_email(turn: Turn, frame: Frame) -> None:
    await desk.record_email(turn)


async def _correct_slot(turn: Turn, frame: Frame) -> None:
    corrections = dict(frame.context.get("corrections") or {})
    target = next(
        (f for f in reversed(turn.state.stack) if f.flow_id == frame.context.get("target_flow")),
        None,
    )
    for name, value in corrections.items():
        turn.set_slot(name, value)
    if target is None:
        return
    flow = turn.project.flows[target.flow_id]
    steps = [flow.collect_step(name) for name in corrections]
    first = next((s for s in flow.steps.values() if s in steps), None)
    if first is not None:
        target.step_id = turn.next_of(first, target)
        target.waiting = False


async def _chitchat(turn: Turn, frame: Frame) -> None:
    # Small talk gets the bot's own response: the answerer is grounded in the
    # knowledge base and would escalate "how are you?" to a person.
    turn.utter("utter_free_chitchat_response", frame.context)


async def _clean_stack(turn: Turn, frame: Frame) -> None:
    while cancel_top_user_flow(turn) is not None:
        pass


async def _restart(turn: Turn, frame: Frame) -> None:
    await _clean_stack(turn, frame)
    for name, value in turn.project.domain.initial_slots().items():
        turn.set_slot(name, value)


async def _listen(turn: Turn, frame: Frame) -> None:
    return None


BUILTINS: dict[str, Callable[[Turn, Frame], Awaitable[None]]] = {
    "action_cancel_flow": _cancel_flow,
    "action_human_handoff": _human_handoff,
    "action_handoff_email": _handoff_email,
    "action_correct_flow_slot": _correct_slot,
    "action_trigger_chitchat": _chitchat,
    "action_clean_stack": _clean_stack,
    "action_restart": _restart,
    "action_listen": _listen,
}


def action_context(turn: Turn, name: str, history: Sequence[dict[str, Any]]) -> ActionContext:
    """Build what a custom action may read about the conversation."""
    parse = turn.parse
    latest = {
        "text": parse.text,
        "intent": {
            "name": parse.intent.name if parse.intent else None,
            "confidence": parse.intent.confidence if parse.intent else 0.0,
        },
        "entities": [e.to_dict() for e in parse.entities],
    }
    events = tuple(history) + tuple(e.to_dict() for e in turn.result.events)
    user = turn.state.top_user_frame()
    return ActionContext(
        sender_id=turn.sender_id,
        slots=dict(turn.state.slots),
        latest_message=latest,
        events=events,
        active_flow=user.flow_id if user else None,
        metadata=dict(turn.metadata),
    )
