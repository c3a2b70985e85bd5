"""Typed conversation events, serialisable to Rasa-tracker-style dicts."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, ClassVar


@dataclass(frozen=True)
class Event:
    """Base of every event; ``kind`` is the serialised ``event`` name."""

    kind: ClassVar[str] = "event"

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict with an ``event`` key."""
        return {"event": self.kind, **asdict(self)}


@dataclass(frozen=True)
class UserUttered(Event):
    """The customer said something."""

    kind: ClassVar[str] = "user"
    text: str
    intent: str | None = None
    confidence: float = 0.0
    entities: tuple[dict[str, Any], ...] = ()


@dataclass(frozen=True)
class BotUttered(Event):
    """The bot said something; ``response`` names the domain response used."""

    kind: ClassVar[str] = "bot"
    text: str
    buttons: tuple[dict[str, str], ...] = ()
    response: str | None = None


@dataclass(frozen=True)
class SlotSet(Event):
    """A slot got a value (``None`` resets it)."""

    kind: ClassVar[str] = "slot"
    name: str
    value: Any = None


@dataclass(frozen=True)
class ActionExecuted(Event):
    """An action ran (``utter_*`` responses included)."""

    kind: ClassVar[str] = "action"
    name: str


@dataclass(frozen=True)
class FollowupAction(Event):
    """An action asked for action ``name`` to run right after it (Rasa's ``followup``)."""

    kind: ClassVar[str] = "followup"
    name: str


@dataclass(frozen=True)
class Restarted(Event):
    """The conversation was reset: every flow ended and every slot is initial again."""

    kind: ClassVar[str] = "restart"


@dataclass(frozen=True)
class AllSlotsReset(Event):
    """Every slot went back to its initial value (Rasa's ``reset_slots``)."""

    kind: ClassVar[str] = "reset_slots"


@dataclass(frozen=True)
class FlowStarted(Event):
    """A flow or pattern was pushed on the dialogue stack."""

    kind: ClassVar[str] = "flow_started"
    flow_id: str


@dataclass(frozen=True)
class FlowCompleted(Event):
    """A flow reached its end."""

    kind: ClassVar[str] = "flow_completed"
    flow_id: str


@dataclass(frozen=True)
class FlowCancelled(Event):
    """A flow was cancelled before its end."""

    kind: ClassVar[str] = "flow_cancelled"
    flow_id: str


@dataclass(frozen=True)
class FlowInterrupted(Event):
    """A flow was paused because another one started on top of it."""

    kind: ClassVar[str] = "flow_interrupted"
    flow_id: str


@dataclass(frozen=True)
class FlowResumed(Event):
    """An interrupted flow continued."""

    kind: ClassVar[str] = "flow_resumed"
    flow_id: str


@dataclass(frozen=True)
class HandoffRequested(Event):
    """The conversation goes to a human; ``reason`` says why."""

    kind: ClassVar[str] = "handoff"
    reason: str = "user_request"


@dataclass(frozen=True)
class HandoffWithdrawn(Event):
    """The customer left the queue for a person and goes on with the bot."""

    kind: ClassVar[str] = "handoff_withdrawn"


_KINDS: dict[str, type[Event]] = {
    cls.kind: cls
    for cls in (
        UserUttered,
        BotUttered,
        SlotSet,
        ActionExecuted,
        FollowupAction,
        Restarted,
        AllSlotsReset,
        FlowStarted,
        FlowCompleted,
        FlowCancelled,
        FlowInterrupted,
        FlowResumed,
        HandoffRequested,
        HandoffWithdrawn,
    )
}


def event_from_dict(data: dict[str, Any]) -> Event:
    """Rebuild an event from :meth:`Event.to_dict` output.

    Raises:
        ValueError: The ``event`` key names no known event.
    """
    body = dict(data)
    kind = body.pop("event", None)
    cls = _KINDS.get(str(kind))
    if cls is None:
        raise ValueError(f"unknown event {kind!r}")
    for key in ("entities", "buttons"):
        if key in body and isinstance(body[key], list):
            body[key] = tuple(body[key])
    return cls(**body)
