"""The contract between the flow engine and custom actions.

The engine calls an :class:`ActionRunner`; how an action runs (in process or
over the rasa-sdk webhook protocol) is decided outside the pure core.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from bot.dialogue.events import Event


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
    name) and optionally ``buttons`` (list of ``{title, payload}``).
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
