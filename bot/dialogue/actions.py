"""The contract between the flow engine and custom actions.

The engine calls an :class:`ActionRunner`; how an action runs (in process or
over the rasa-sdk webhook protocol) is decided outside the pure core. What an
action returns is applied to the turn by :func:`apply_result`: its events in
order, then its messages, so a message renders the slots the action set (Rasa
renders them before; Helpline has always done it this way round).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from bot.dialogue.domain import ResponseVariation, render
from bot.dialogue.events import (
    AllSlotsReset,
    BotUttered,
    Event,
    FlowCancelled,
    FollowupAction,
    Restarted,
    SlotSet,
)

if TYPE_CHECKING:
    from collections.abc import Mapping

    from bot.dialogue.engine import Turn

_LOGGER = logging.getLogger(__name__)

#: Keys of a response dict that are the message itself, not template variables.
MESSAGE_KEYS = frozenset(
    {
        "text",
        "buttons",
        "response",
        "template",
        "image",
        "elements",
        "custom",
        "attachment",
        "json_message",
        "quick_replies",
    }
)


@dataclass(frozen=True)
class ActionContext:
    """What an action may read about the conversation.

    Attributes:
        sender_id: The conversation's id.
        slots: Slot values at the time the action runs.
        latest_message: The last user message in Rasa tracker form
            (``text``, ``intent``, ``entities``).
        events: The conversation's events so far, as Rasa tracker dicts.
        active_flow: The id of the flow that runs the action, if any.
        metadata: Channel metadata of the latest message.
    """

    sender_id: str
    slots: dict[str, Any]
    latest_message: dict[str, Any] = field(default_factory=dict)
    events: tuple[dict[str, Any], ...] = ()
    active_flow: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ActionResult:
    """What an action returns: events to apply and messages to send.

    ``responses`` items hold ``text`` and/or ``response`` (a domain response
    name, rendered with the item's other keys as template variables, as
    rasa-sdk's ``dispatcher.utter_message(response=..., **kwargs)`` means
    it) and optionally ``buttons`` (list of ``{title, payload}``).
    ``events`` may hold :class:`SlotSet`, :class:`AllSlotsReset`,
    :class:`Restarted` and :class:`FollowupAction` besides events that are
    only recorded.
    """

    events: tuple[Event, ...] = ()
    responses: tuple[dict[str, Any], ...] = ()


class ActionRunner(Protocol):
    """Runs a named custom action."""

    def has(self, name: str) -> bool:
        """Return whether an action of this name is known."""
        ...

    async def run(self, name: str, context: ActionContext) -> ActionResult:
        """Run the action; raise :class:`bot.errors.ActionError` on failure or timeout."""
        ...


def apply_result(turn: Turn, result: ActionResult) -> tuple[str, ...]:
    """Apply a custom action's events, then its responses, to the turn.

    Returns:
        The names of the follow-up actions the result asked for, in order;
        the engine runs them next.
    """
    frame = turn.state.top()
    context = frame.context if frame else None
    followups: list[str] = []
    for event in result.events:
        if isinstance(event, SlotSet):
            turn.set_slot(event.name, event.value)
        elif isinstance(event, AllSlotsReset):
            turn.emit(event)
            reset_slots(turn)
        elif isinstance(event, Restarted):
            restart(turn)
        elif isinstance(event, FollowupAction):
            turn.emit(event)
            followups.append(event.name)
        else:
            turn.emit(event)
    for response in result.responses:
        utter_response(turn, response, context)
    return tuple(followups)


def pick_response(
    turn: Turn,
    name: str,
    variables: Mapping[str, Any],
    context: dict[str, Any] | None,
) -> ResponseVariation | None:
    """Choose a variation of domain response ``name`` and render it.

    Conditions of variations are checked against the slots; the text and
    buttons are filled from the slots and ``variables``, which win on a clash
    (as in Rasa's templated NLG).
    """
    slots = turn.state.slots
    variations = [
        v
        for v in turn.project.domain.responses.get(name, ())
        if all(slots.get(slot) == value for slot, value in v.condition)
    ]
    if not variations:
        return None
    chosen = turn.engine.rng.choice(variations)
    values = {**slots, **variables}
    buttons = tuple(
        {
            "title": render(b["title"], values, context),
            "payload": render(b["payload"], values, context),
        }
        for b in chosen.buttons
    )
    return ResponseVariation(render(chosen.text, values, context), buttons)


def utter_response(
    turn: Turn, response: Mapping[str, Any], context: dict[str, Any] | None = None
) -> None:
    """Send one message of an action: a domain response, free text, or both.

    A named response is rendered with the message's extra keys as template
    variables; the message's own ``text`` replaces the response's text and its
    ``buttons`` are added after the response's, as Rasa does.
    """
    name = response.get("response") or response.get("template")
    text = response.get("text")
    buttons = tuple(response.get("buttons") or ())
    if name:
        variables = {k: v for k, v in response.items() if k not in MESSAGE_KEYS}
        variation = pick_response(turn, str(name), variables, context)
        if variation is not None:
            turn.emit(
                BotUttered(str(text or variation.text), variation.buttons + buttons, str(name))
            )
            return
        _LOGGER.warning("Response %s asked for by an action is not in the domain.", name)
    if text:
        turn.say(str(text), buttons)
    else:
        shown = sorted(k for k, v in response.items() if v and k not in ("response", "template"))
        _LOGGER.info("Dropping an action message with nothing to show as text: %s.", shown)


def reset_slots(turn: Turn) -> None:
    """Put every slot back to its initial value; slots not in the domain become ``None``."""
    initial = turn.project.domain.initial_slots()
    for name in list(turn.state.slots):
        turn.set_slot(name, initial.get(name))
    for name, value in initial.items():
        turn.set_slot(name, value)


def restart(turn: Turn) -> None:
    """Reset the conversation: cancel every frame on the stack and reset every slot."""
    turn.emit(Restarted())
    for frame in reversed(list(turn.state.stack)):
        turn.pop(frame, completed=False)
        turn.emit(FlowCancelled(frame.flow_id))
    reset_slots(turn)
