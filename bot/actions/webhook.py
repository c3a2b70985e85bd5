"""The rasa-sdk webhook protocol: build an action call, read its answer.

An action server (``python -m rasa_sdk``) answers ``POST /webhook`` with
``{"events": [...], "responses": [...]}``. This module turns an
:class:`~bot.dialogue.actions.ActionContext` into the request body Rasa sends
and the answer back into an :class:`~bot.dialogue.actions.ActionResult`, and
names what an error status means. It does no I/O: the HTTP exchange lives in
:mod:`bot.actions.client`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Mapping
from typing import Any

from bot.dialogue.actions import ActionContext, ActionResult
from bot.dialogue.events import AllSlotsReset, Event, FollowupAction, Restarted, SlotSet
from bot.errors import ActionError

_LOGGER = logging.getLogger(__name__)

#: The Rasa version announced to action servers.
RASA_VERSION = "3.6.2"

#: Keys every domain sent to an action server has, with their empty values.
_DOMAIN_DEFAULTS: dict[str, Any] = {
    "slots": {},
    "responses": {},
    "actions": [],
    "intents": [],
    "entities": [],
    "forms": {},
}

#: The longest piece of an error body quoted in an ActionError.
_MAX_ERROR_TEXT = 500

#: Status codes of rasa-sdk's webhook: unknown action, rejected, domain missing.
NOT_FOUND, REJECTED, DOMAIN_MISSING = 404, 400, 449

#: Events of rasa-sdk that Helpline cannot carry out; they are dropped with a warning.
_UNSUPPORTED = {
    "reminder": "reminders (ReminderScheduled) are not supported",
    "cancel_reminder": "reminders (ReminderCancelled) are not supported",
    "pause": "pausing the conversation (ConversationPaused) is not supported",
    "resume": "ConversationResumed is not supported",
    "undo": "undoing the last action (ActionReverted) is not supported",
    "rewind": "rewinding the last user message (UserUtteranceReverted) is not supported",
}


def complete_domain(domain: Mapping[str, Any] | None) -> dict[str, Any]:
    """Return a copy of ``domain`` with every key an action server expects."""
    result = dict(domain or {})
    for key, empty in _DOMAIN_DEFAULTS.items():
        result.setdefault(key, type(empty)())
    return result


def _latest_message(context: ActionContext) -> dict[str, Any]:
    """Return the tracker's ``latest_message`` with Rasa's parse-data keys filled in."""
    message = dict(context.latest_message)
    message.setdefault("text", None)
    message.setdefault("intent", {})
    message.setdefault("entities", [])
    # rasa-sdk's Tracker.get_intent_of_latest_message reads the ranking only.
    intent = message["intent"]
    if "intent_ranking" not in message:
        has_name = isinstance(intent, dict) and intent.get("name")
        message["intent_ranking"] = [dict(intent)] if has_name else []
    if context.metadata:
        message.setdefault("metadata", dict(context.metadata))
    return message


def _last(events: list[dict[str, Any]], kind: str, key: str) -> Any:
    """Return ``key`` of the last event of ``kind``, or ``None``."""
    for event in reversed(events):
        if event.get("event") == kind and key in event:
            return event[key]
    return None


def _rasa_event(event: Mapping[str, Any]) -> dict[str, Any]:
    """Return a Helpline event dict in the shape Rasa's tracker gives it.

    ``user`` events get Rasa's ``parse_data`` and ``bot`` events its ``data``
    (buttons) and ``metadata`` (the response name), next to Helpline's own
    keys; other events pass unchanged.
    """
    result = dict(event)
    if result.get("event") == "user" and "parse_data" not in result:
        intent = result.get("intent")
        name = intent.get("name") if isinstance(intent, dict) else intent
        result["parse_data"] = {
            "text": result.get("text"),
            "intent": {"name": name, "confidence": result.get("confidence", 0.0)},
            "entities": list(result.get("entities") or ()),
        }
    elif result.get("event") == "bot":
        result.setdefault("data", {"buttons": list(result.get("buttons") or ())})
        result.setdefault("metadata", {"utter_action": result.get("response")})
    return result


def build_tracker(context: ActionContext) -> dict[str, Any]:
    """Return the Rasa tracker state an action server reads.

    The keys are those of Rasa 3.6's ``DialogueStateTracker.current_state``
    plus ``stack`` (read by rasa-sdk 3.7 and later); rasa-sdk 3.6 and 3.21's
    ``Tracker.from_dict`` both read it.
    """
    events = [_rasa_event(event) for event in context.events]
    latest_time = events[-1].get("timestamp") if events else None
    return {
        "sender_id": context.sender_id,
        "slots": dict(context.slots),
        "latest_message": _latest_message(context),
        "events": events,
        "paused": False,
        "followup_action": None,
        "active_loop": {},
        "latest_action_name": _last(events, "action", "name"),
        "latest_input_channel": _last(events, "user", "input_channel"),
        "latest_event_time": latest_time if latest_time is not None else time.time(),
        "stack": [],
    }


def domain_digest(domain: Mapping[str, Any]) -> str:
    """Return a digest of ``domain``; rasa-sdk 3.8+ keeps the domain under it."""
    canonical = json.dumps(domain, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def build_action_call(
    name: str,
    context: ActionContext,
    domain: Mapping[str, Any],
    version: str = RASA_VERSION,
    *,
    include_domain: bool = True,
    digest: str | None = None,
) -> dict[str, Any]:
    """Return the JSON body of ``POST /webhook`` that runs action ``name``.

    The body always carries ``domain_digest``; it carries the domain itself
    only with ``include_domain``. rasa-sdk 3.8 and later keep the last domain
    they were sent and answer 449 when the digest is not theirs and no domain
    came; rasa-sdk 3.6 reads the domain from every call and uses ``{}``
    without one. ``digest`` is :func:`domain_digest` of ``domain``, when the
    caller has it already.
    """
    tracker = build_tracker(context)
    events = tracker["events"]
    # Rasa records an action after it ran; the engine has recorded it already.
    if events and events[-1].get("event") == "action" and events[-1].get("name") == name:
        del events[-1]
        tracker["latest_action_name"] = _last(events, "action", "name")
    call: dict[str, Any] = {
        "next_action": name,
        "sender_id": context.sender_id,
        "tracker": tracker,
        "domain_digest": digest or domain_digest(domain),
        "version": version,
    }
    if include_domain:
        call["domain"] = dict(domain)
    return call


def _bot_event_response(event: Mapping[str, Any]) -> dict[str, Any]:
    """Turn a rasa-sdk ``bot`` event into a response dict."""
    data = event.get("data") or {}
    return {"text": event.get("text"), **(data if isinstance(data, dict) else {})}


def _normalise_response(raw: Mapping[str, Any]) -> dict[str, Any] | None:
    """Return a response dict without empty values, or ``None`` if it says nothing.

    rasa-sdk sends every key of ``utter_message`` (``text``, ``buttons``,
    ``elements``, ``custom``, ``template``, ``response``, ``image``,
    ``attachment``) plus any keyword arguments, mostly empty. ``template`` is
    the old name of ``response``.
    """
    result = {key: value for key, value in raw.items() if value not in (None, "", [], {})}
    template = result.pop("template", None)
    if template is not None:
        result.setdefault("response", template)
    return result or None


def _event(name: str, item: Mapping[str, Any]) -> Event | None:
    """Turn one rasa-sdk event into a Helpline event, or ``None`` to drop it.

    Raises:
        ActionError: A ``slot`` or ``followup`` event has no name.
    """
    kind = item.get("event")
    if kind in ("slot", "followup") and not isinstance(item.get("name"), str):
        raise ActionError(f"action {name!r} returned a {kind!r} event without a name")
    if kind == "slot":
        return SlotSet(name=item["name"], value=item.get("value"))
    if kind == "followup":
        return FollowupAction(item["name"])
    if kind == "restart":
        return Restarted()
    if kind == "reset_slots":
        return AllSlotsReset()
    if kind in _UNSUPPORTED:
        _LOGGER.warning("Ignoring an event of action %s: %s.", name, _UNSUPPORTED[str(kind)])
    else:
        _LOGGER.debug("Ignoring event %r returned by action %s.", kind, name)
    return None


def parse_action_response(name: str, body: Any) -> ActionResult:
    """Turn an action server's answer into an :class:`ActionResult`.

    ``slot``, ``reset_slots``, ``restart`` and ``followup`` events become
    :class:`SlotSet`, :class:`AllSlotsReset`, :class:`Restarted` and
    :class:`FollowupAction`; ``bot`` events and ``responses`` become response
    dicts. Reminders and the other events Helpline cannot carry out are
    dropped with a warning; the rest (``action``, ``user``...) are dropped.

    Raises:
        ActionError: The answer is not an object of events and responses.
    """
    if body is None:
        return ActionResult()
    if not isinstance(body, dict):
        raise ActionError(f"action server answered {name!r} with {type(body).__name__}")
    events: list[Event] = []
    # Rasa sends the dispatcher's messages before the events the action returned.
    raw_responses: list[Mapping[str, Any]] = [
        r for r in body.get("responses") or [] if isinstance(r, dict)
    ]
    for item in body.get("events") or []:
        if not isinstance(item, dict):
            continue
        if item.get("event") == "bot":
            raw_responses.append(_bot_event_response(item))
        elif (event := _event(name, item)) is not None:
            events.append(event)
    responses = tuple(r for r in map(_normalise_response, raw_responses) if r is not None)
    return ActionResult(events=tuple(events), responses=responses)


def _error_text(status: int, text: str) -> str:
    """Return the ``error`` of a rasa-sdk error body, or the body itself."""
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    if isinstance(data, dict) and data.get("error"):
        return str(data["error"])
    return text.strip()[:_MAX_ERROR_TEXT] or f"HTTP {status}"


def error_message(url: str, name: str, status: int, text: str) -> str:
    """Say why the action server at ``url`` answered ``name`` with ``status``."""
    reason = _error_text(status, text)
    if status == NOT_FOUND:
        what = f"has no action {name!r}"
    elif status == REJECTED:
        what = f"rejected action {name!r}"
    elif status == DOMAIN_MISSING:
        what = f"asked again for the domain of action {name!r} after it was sent"
    elif status >= 500:
        what = f"failed to run action {name!r}"
    else:
        what = f"refused action {name!r}"
    return f"action server at {url} {what} (HTTP {status}): {reason}"
