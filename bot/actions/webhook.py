"""The rasa-sdk webhook protocol: build an action call, read its answer.

An action server (``python -m rasa_sdk``) answers ``POST /webhook`` with
``{"events": [...], "responses": [...]}``. This module turns an
:class:`~bot.dialogue.actions.ActionContext` into the request body Rasa sends
and the answer back into an :class:`~bot.dialogue.actions.ActionResult`. The
HTTP call itself lives in :func:`call_action_server`, the one place where
aiohttp errors become :class:`~bot.errors.ActionError`.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping
from typing import Any

import aiohttp

from bot.dialogue.actions import ActionContext, ActionResult
from bot.dialogue.events import Event, SlotSet
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


def _last(events: tuple[dict[str, Any], ...], kind: str, key: str) -> Any:
    """Return ``key`` of the last event of ``kind``, or ``None``."""
    for event in reversed(events):
        if event.get("event") == kind and key in event:
            return event[key]
    return None


def build_tracker(context: ActionContext) -> dict[str, Any]:
    """Return the Rasa tracker state an action server reads."""
    events = context.events
    latest_time = events[-1].get("timestamp") if events else None
    return {
        "sender_id": context.sender_id,
        "slots": dict(context.slots),
        "latest_message": _latest_message(context),
        "events": [dict(event) for event in events],
        "paused": False,
        "followup_action": None,
        "active_loop": {},
        "latest_action_name": _last(events, "action", "name"),
        "latest_input_channel": _last(events, "user", "input_channel"),
        "latest_event_time": latest_time if latest_time is not None else time.time(),
        "stack": [],
    }


def build_action_call(
    name: str,
    context: ActionContext,
    domain: Mapping[str, Any],
    version: str = RASA_VERSION,
) -> dict[str, Any]:
    """Return the JSON body of ``POST /webhook`` that runs action ``name``."""
    return {
        "next_action": name,
        "sender_id": context.sender_id,
        "tracker": build_tracker(context),
        "domain": dict(domain),
        "version": version,
    }


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


def parse_action_response(name: str, body: Any) -> ActionResult:
    """Turn an action server's answer into an :class:`ActionResult`.

    ``slot`` events become :class:`SlotSet`, ``bot`` events and ``responses``
    become response dicts; other events are ignored.

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
        kind = item.get("event") if isinstance(item, dict) else None
        if kind == "slot":
            events.append(SlotSet(name=str(item["name"]), value=item.get("value")))
        elif kind == "bot":
            raw_responses.append(_bot_event_response(item))
        else:
            _LOGGER.debug("Ignoring event %r returned by action %s.", kind, name)
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


async def call_action_server(
    session: aiohttp.ClientSession,
    url: str,
    payload: dict[str, Any],
    time_limit: float,
) -> Any:
    """POST ``payload`` to the action server and return its decoded JSON answer.

    ``time_limit`` bounds the whole exchange, in seconds.

    Raises:
        ActionError: The server is unreachable, timed out, answered with an
            error status or with a body that is not JSON.
    """
    name = payload["next_action"]
    try:
        data = json.dumps(payload)
    except (TypeError, ValueError) as exc:
        raise ActionError(f"cannot send action {name!r}: the tracker is not JSON: {exc}") from exc
    headers = {"Content-Type": "application/json"}
    try:
        async with session.post(
            url, data=data, headers=headers, timeout=aiohttp.ClientTimeout(total=time_limit)
        ) as resp:
            text = await resp.text()
            status = resp.status
    except TimeoutError as exc:
        raise ActionError(
            f"action {name!r} timed out after {time_limit:g} s at action server {url}"
        ) from exc
    except aiohttp.ClientConnectorError as exc:
        raise ActionError(f"action server at {url} is unreachable: {exc}") from exc
    except aiohttp.ClientError as exc:
        raise ActionError(f"action server at {url} failed on {name!r}: {exc}") from exc
    if status != 200:
        reason = _error_text(status, text)
        raise ActionError(f"action server at {url} refused {name!r} (HTTP {status}): {reason}")
    try:
        return json.loads(text)
    except ValueError as exc:
        raise ActionError(f"action server at {url} answered {name!r} with invalid JSON") from exc
