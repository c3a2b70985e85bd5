"""Translation between Slack payloads and Helpline messages.

Inbound: a direct message (``message`` with ``channel_type: im``) or an
``app_mention`` becomes an :class:`InboundMessage` whose ``message_id`` is the
event's ``event_id``, so a retried event is stored once. A ``block_actions``
click on one of our buttons becomes the user's choice: its text is the
button's value (a payload such as ``/affirm``).

Outbound: text goes out as Slack ``mrkdwn`` (``&``, ``<`` and ``>`` escaped);
buttons become a Block Kit ``actions`` block, with the plain ``text`` always
set as the notification and accessibility fallback.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from bot.messages import InboundMessage, OutboundMessage

CHANNEL = "slack"
BUTTONS_BLOCK_ID = "helpline_buttons"
MAX_SECTION_CHARS = 3000
MAX_BUTTON_TITLE_CHARS = 75
MAX_BUTTON_VALUE_CHARS = 2000
MAX_BUTTONS = 25
Granularity = Literal["per_user", "per_thread"]


def conversation_key(
    granularity: Granularity, team: str, channel: str, user: str, thread_ts: str
) -> str:
    """The external id of a conversation: one per user, or one per thread."""
    if granularity == "per_thread":
        return f"{team}:{channel}:{thread_ts}"
    return f"{team}:{user}"


def thread_of_key(key: str) -> tuple[str, str] | None:
    """The ``(channel, thread_ts)`` a ``per_thread`` key names, if it is one."""
    parts = key.split(":")
    if len(parts) != 3 or not parts[1] or not parts[2]:
        return None
    return parts[1], parts[2]


def escape(text: str) -> str:
    """Escape text for Slack ``mrkdwn``: only ``&``, ``<`` and ``>`` are special."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def unescape(text: str) -> str:
    """Undo Slack's escaping of ``&``, ``<`` and ``>`` in received text."""
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def clean_text(text: str, bot_user_id: str | None) -> str:
    """The user's words: the bot's own ``<@U…>`` mention removed, entities unescaped."""
    if bot_user_id:
        text = re.sub(rf"<@{re.escape(bot_user_id)}(?:\|[^>]*)?>", " ", text)
    return unescape(" ".join(text.split()))


def event_to_inbound(
    payload: dict[str, Any], granularity: Granularity, bot_user_id: str | None
) -> InboundMessage | None:
    """The inbound message of an ``event_callback``, or ``None`` if it is not for the bot.

    Only direct messages and ``app_mention`` events are; channel messages
    reach the bot as ``app_mention``.
    """
    event = payload.get("event")
    if not isinstance(event, dict):
        return None
    kind = event.get("type")
    if kind == "message" and event.get("channel_type") != "im":
        return None
    if kind not in ("message", "app_mention"):
        return None
    user, channel, ts = event.get("user"), event.get("channel"), event.get("ts")
    if not (isinstance(user, str) and isinstance(channel, str) and isinstance(ts, str)):
        return None
    team = str(event.get("team") or payload.get("team_id") or "")
    thread_ts = str(event.get("thread_ts") or ts)
    event_id = str(payload.get("event_id") or f"{channel}:{ts}")
    metadata = {
        "team": team,
        "channel": channel,
        "thread_ts": thread_ts,
        "user": user,
        "ts": ts,
        "event_id": event_id,
        "event_type": kind,
    }
    key = conversation_key(granularity, team, channel, user, thread_ts)
    text = clean_text(str(event.get("text") or ""), bot_user_id)
    return InboundMessage(CHANNEL, key, user, text, event_id, metadata)


def clicked_button(payload: dict[str, Any]) -> dict[str, Any] | None:
    """The button action of a ``block_actions`` payload, if it has one."""
    for action in payload.get("actions") or []:
        if isinstance(action, dict) and action.get("type") == "button":
            if isinstance(action.get("value"), str):
                return action
    return None


def action_to_inbound(payload: dict[str, Any], granularity: Granularity) -> InboundMessage | None:
    """The user's choice in a ``block_actions`` payload, or ``None`` if there is none.

    Its ``message_id`` is the click's own id (user and ``action_ts``), so the
    same click delivered twice is stored once.
    """
    action = clicked_button(payload)
    user = payload.get("user") or {}
    if action is None or not isinstance(user.get("id"), str):
        return None
    container = payload.get("container") or {}
    message = payload.get("message") or {}
    channel = container.get("channel_id") or (payload.get("channel") or {}).get("id")
    message_ts = container.get("message_ts") or message.get("ts")
    if not isinstance(channel, str) or not isinstance(message_ts, str):
        return None
    team = str((payload.get("team") or {}).get("id") or user.get("team_id") or "")
    thread_ts = str(container.get("thread_ts") or message.get("thread_ts") or message_ts)
    click = action.get("action_ts") or payload.get("trigger_id") or message_ts
    message_id = f"action:{user['id']}:{click}"
    metadata = {
        "team": team,
        "channel": channel,
        "thread_ts": thread_ts,
        "user": user["id"],
        "message_ts": message_ts,
        "action_id": action.get("action_id"),
        "button": _title(action),
    }
    key = conversation_key(granularity, team, channel, user["id"], thread_ts)
    return InboundMessage(CHANNEL, key, user["id"], action["value"], message_id, metadata)


def _title(action: dict[str, Any]) -> str:
    text = action.get("text")
    if isinstance(text, dict) and isinstance(text.get("text"), str):
        return str(text["text"])
    return str(action.get("value", ""))


def render(message: OutboundMessage) -> dict[str, Any]:
    """The ``chat.postMessage`` arguments for a reply: ``text``, and ``blocks`` for buttons."""
    text = escape(message.text)
    body: dict[str, Any] = {"text": text}
    if not message.buttons:
        return body
    blocks: list[dict[str, Any]] = []
    if text.strip():
        section = text if len(text) <= MAX_SECTION_CHARS else text[: MAX_SECTION_CHARS - 1] + "…"
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": section}})
    elements = [
        {
            "type": "button",
            "action_id": f"helpline_button_{index}",
            "text": {"type": "plain_text", "text": button.title[:MAX_BUTTON_TITLE_CHARS]},
            "value": button.payload[:MAX_BUTTON_VALUE_CHARS],
        }
        for index, button in enumerate(message.buttons[:MAX_BUTTONS])
    ]
    blocks.append({"type": "actions", "block_id": BUTTONS_BLOCK_ID, "elements": elements})
    body["blocks"] = blocks
    if not text.strip():
        body["text"] = " / ".join(escape(b.title) for b in message.buttons)
    return body


def chosen_update(payload: dict[str, Any]) -> dict[str, Any] | None:
    """The ``chat.update`` arguments that replace a clicked message's buttons by the choice.

    Returns:
        ``None`` when the payload does not say which message was clicked.
    """
    action = clicked_button(payload)
    container = payload.get("container") or {}
    message = payload.get("message") or {}
    channel, ts = container.get("channel_id"), container.get("message_ts") or message.get("ts")
    user = (payload.get("user") or {}).get("id")
    if action is None or not isinstance(channel, str) or not isinstance(ts, str):
        return None
    blocks = [b for b in message.get("blocks") or [] if b.get("type") != "actions"]
    who = f"<@{user}> chose" if isinstance(user, str) else "Chosen:"
    choice = {"type": "mrkdwn", "text": f"{who} *{escape(_title(action))}*"}
    blocks.append({"type": "context", "elements": [choice]})
    return {"channel": channel, "ts": ts, "text": str(message.get("text") or ""), "blocks": blocks}
