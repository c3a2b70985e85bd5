"""Translation between Slack payloads and Helpline messages.

Inbound: a direct message (``message`` with ``channel_type: im``) or an
``app_mention`` becomes an :class:`InboundMessage` whose ``message_id`` is the
message's channel and ``ts``, so a retried event, or one message delivered as
both ``message.im`` and ``app_mention``, is stored once. A ``block_actions``
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
from connectors.slack import shape

CHANNEL = "slack"
BUTTONS_BLOCK_ID = "helpline_buttons"
MAX_SECTION_CHARS = 3000
MAX_BUTTON_TITLE_CHARS = 75
MAX_BUTTON_VALUE_CHARS = 2000
MAX_BUTTONS = 25
Granularity = Literal["per_user", "per_thread"]


def is_direct(channel: str) -> bool:
    """Whether a Slack channel id names a direct message with the bot (``D…``)."""
    return channel.startswith("D")


def conversation_key(
    granularity: Granularity, team: str, channel: str, user: str, thread_ts: str
) -> str:
    """The external id of a conversation: one per user, or one per thread.

    ``per_user`` keeps a user's DM and each channel they mention the bot in
    apart (``team:user`` for the DM, ``team:user@channel`` for a channel):
    a conversation begun in private must never continue where others read.
    """
    if granularity == "per_thread":
        return f"{team}:{channel}:{thread_ts}"
    if is_direct(channel):
        return f"{team}:{user}"
    return f"{team}:{user}@{channel}"


def message_key(channel: str, ts: str) -> str:
    """The idempotency key of a Slack message: its channel and ``ts``, its own identity.

    Not the event id: one message can arrive as two events (``message.im``
    and ``app_mention``) with different ids, and must be answered once.
    """
    return f"{channel}:{ts}"


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

    Raises:
        InvalidPayload: A field the bot reads has the wrong type.
    """
    event = shape.obj(payload, "event", "payload")
    kind = shape.text(event, "type", "event")
    if kind == "message" and event.get("channel_type") != "im":
        return None
    if kind not in ("message", "app_mention"):
        return None
    user, channel = shape.text(event, "user", "event"), shape.text(event, "channel", "event")
    ts = shape.text(event, "ts", "event")
    if user is None or channel is None or ts is None:
        return None
    team = shape.text(event, "team", "event") or shape.text(payload, "team_id", "payload") or ""
    thread_ts = shape.text(event, "thread_ts", "event") or ts
    event_id = shape.text(payload, "event_id", "payload") or message_key(channel, ts)
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
    text = clean_text(shape.text(event, "text", "event") or "", bot_user_id)
    return InboundMessage(CHANNEL, key, user, text, message_key(channel, ts), metadata)


def clicked_button(payload: dict[str, Any]) -> dict[str, Any] | None:
    """The button action of a ``block_actions`` payload, if it has one.

    Raises:
        InvalidPayload: ``actions`` is not a list of objects.
    """
    for action in shape.objects(payload, "actions", "payload"):
        if action.get("type") == "button" and isinstance(action.get("value"), str):
            return action
    return None


def clicker(payload: dict[str, Any]) -> str | None:
    """The id of the user who clicked, in a ``block_actions`` payload.

    Raises:
        InvalidPayload: ``user`` is not an object or its ``id`` not a string.
    """
    return shape.text(shape.obj(payload, "user", "payload"), "id", "payload.user")


def button_owner(action: dict[str, Any]) -> str | None:
    """Whom a clicked button answers for: the user named in its block id, if any.

    :func:`render` names the user the reply answers in the ``actions``
    block's id; Slack echoes it in the click, signed. Buttons posted before
    owners were recorded name nobody.
    """
    block_id = action.get("block_id")
    prefix = f"{BUTTONS_BLOCK_ID}:"
    if isinstance(block_id, str) and block_id.startswith(prefix):
        return block_id[len(prefix) :] or None
    return None


def _clicked_place(payload: dict[str, Any]) -> tuple[str, str, str] | None:
    """The ``(channel, message_ts, thread_ts)`` of the clicked message, if the payload says."""
    container = shape.obj(payload, "container", "payload")
    message = shape.obj(payload, "message", "payload")
    channel = shape.text(container, "channel_id", "payload.container") or shape.text(
        shape.obj(payload, "channel", "payload"), "id", "payload.channel"
    )
    message_ts = shape.text(container, "message_ts", "payload.container") or shape.text(
        message, "ts", "payload.message"
    )
    if channel is None or message_ts is None:
        return None
    thread_ts = (
        shape.text(container, "thread_ts", "payload.container")
        or shape.text(message, "thread_ts", "payload.message")
        or message_ts
    )
    return channel, message_ts, thread_ts


def action_to_inbound(payload: dict[str, Any], granularity: Granularity) -> InboundMessage | None:
    """The user's choice in a ``block_actions`` payload, or ``None`` if there is none.

    Its ``message_id`` is the click's own id (user and ``action_ts``), so the
    same click delivered twice is stored once. The click belongs to the
    conversation of the buttons' owner (:func:`button_owner`) where they name
    one, whoever clicked.

    Raises:
        InvalidPayload: A field the bot reads has the wrong type.
    """
    action, user, place = clicked_button(payload), clicker(payload), _clicked_place(payload)
    if action is None or user is None or place is None:
        return None
    channel, message_ts, thread_ts = place
    team = shape.text(shape.obj(payload, "team", "payload"), "id", "payload.team")
    team = team or shape.text(shape.obj(payload, "user", "payload"), "team_id", "payload.user")
    click = (
        shape.text(action, "action_ts", "payload.actions[]")
        or shape.text(payload, "trigger_id", "payload")
        or message_ts
    )
    metadata = {
        "team": team or "",
        "channel": channel,
        "thread_ts": thread_ts,
        "user": user,
        "message_ts": message_ts,
        "action_id": action.get("action_id"),
        "button": _title(action),
    }
    owner = button_owner(action) or user
    metadata["owner"] = owner
    key = conversation_key(granularity, team or "", channel, owner, thread_ts)
    return InboundMessage(CHANNEL, key, user, action["value"], f"action:{user}:{click}", metadata)


def _title(action: dict[str, Any]) -> str:
    text = action.get("text")
    if isinstance(text, dict) and isinstance(text.get("text"), str):
        return str(text["text"])
    return str(action.get("value", ""))


def render(message: OutboundMessage, owner: str | None = None) -> dict[str, Any]:
    """The ``chat.postMessage`` arguments for a reply: ``text``, and ``blocks`` for buttons.

    Args:
        message: The reply.
        owner: The Slack user the reply answers; named in the buttons' block
            id so that a click can be checked against it (:func:`button_owner`).
    """
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
    block_id = f"{BUTTONS_BLOCK_ID}:{owner}" if owner else BUTTONS_BLOCK_ID
    blocks.append({"type": "actions", "block_id": block_id, "elements": elements})
    body["blocks"] = blocks
    if not text.strip():
        body["text"] = " / ".join(escape(b.title) for b in message.buttons)
    return body


def chosen_update(payload: dict[str, Any]) -> dict[str, Any] | None:
    """The ``chat.update`` arguments that replace a clicked message's buttons by the choice.

    Returns:
        ``None`` when the payload does not say which message was clicked.

    Raises:
        InvalidPayload: A field the bot reads has the wrong type.
    """
    action, user = clicked_button(payload), clicker(payload)
    container = shape.obj(payload, "container", "payload")
    message = shape.obj(payload, "message", "payload")
    channel = shape.text(container, "channel_id", "payload.container")
    ts = shape.text(container, "message_ts", "payload.container") or shape.text(
        message, "ts", "payload.message"
    )
    if action is None or channel is None or ts is None:
        return None
    blocks = [
        b for b in shape.objects(message, "blocks", "payload.message") if b.get("type") != "actions"
    ]
    who = f"<@{user}> chose" if user is not None else "Chosen:"
    choice = {"type": "mrkdwn", "text": f"{who} *{escape(_title(action))}*"}
    blocks.append({"type": "context", "elements": [choice]})
    text = shape.text(message, "text", "payload.message") or ""
    return {"channel": channel, "ts": ts, "text": text, "blocks": blocks}


def not_yours_notice(payload: dict[str, Any], owner: str) -> dict[str, Any] | None:
    """The ``chat.postEphemeral`` arguments telling a clicker the buttons are someone else's.

    Only the clicker sees it; the buttons stay for their owner.

    Raises:
        InvalidPayload: A field the bot reads has the wrong type.
    """
    user, place = clicker(payload), _clicked_place(payload)
    if user is None or place is None:
        return None
    channel, _, thread_ts = place
    text = f"These buttons answer <@{owner}>; only they can choose."
    return {"channel": channel, "user": user, "text": text, "thread_ts": thread_ts}
