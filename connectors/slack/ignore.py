"""Middleware: drop events the bot must not answer.

Slack sends the app its own replies back (``message.im`` includes them), other
bots' messages, edits (``message_changed``), deletions and other subtypes.
Answering them would loop or answer twice, so they are acknowledged and go no
further. Two subtypes are plain user messages and pass:
``thread_broadcast`` (a thread reply also sent to the channel) and
``file_share`` (a message with a file).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from connectors.slack.pipeline import Ack

if TYPE_CHECKING:
    from connectors.slack.pipeline import Handler, Payload

_LOGGER = logging.getLogger(__name__)
USER_SUBTYPES = frozenset({"thread_broadcast", "file_share"})


@dataclass
class BotIdentity:
    """Who the bot is in Slack, as ``auth.test`` said at start."""

    user_id: str | None = None
    bot_id: str | None = None


def ignore_reason(payload: Payload, identity: BotIdentity) -> str | None:
    """Why ``payload`` must not reach the bot, or ``None`` if it may."""
    if payload.get("type") != "event_callback":
        return None
    event: Any = payload.get("event")
    if not isinstance(event, dict):
        return "an event_callback without an event"
    subtype = event.get("subtype")
    if subtype and (not isinstance(subtype, str) or subtype not in USER_SUBTYPES):
        return f"subtype {subtype}"
    if event.get("bot_id") or event.get("bot_profile"):
        own = identity.bot_id is not None and event.get("bot_id") == identity.bot_id
        return "the bot's own message" if own else "a bot's message"
    if identity.user_id is not None and event.get("user") == identity.user_id:
        return "the bot's own message"
    return None


class IgnoreBots:
    """Acknowledge and drop own and bot messages, edits, deletions and other subtypes.

    Args:
        identity: The bot's ids; filled in once ``auth.test`` answered.
    """

    def __init__(self, identity: BotIdentity) -> None:
        self.identity = identity

    async def __call__(self, payload: Payload, next_: Handler) -> Ack:
        """Pass ``payload`` on unless it must be ignored."""
        reason = ignore_reason(payload, self.identity)
        if reason is not None:
            _LOGGER.debug("Ignoring a Slack event: %s.", reason)
            return Ack(note=f"ignored: {reason}")
        return await next_(payload)
