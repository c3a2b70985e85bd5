"""Translation between Rasa REST payloads and Helpline messages."""

from __future__ import annotations

from typing import Any

from bot.errors import ChannelError
from bot.messages import InboundMessage, OutboundMessage

CHANNEL = "rest"
MAX_SENDER_CHARS = 255


def to_inbound(body: Any, idempotency_key: str | None) -> InboundMessage:
    """Validate a webhook body and build the inbound message.

    Raises:
        ChannelError: The body is not ``{"sender": str, "message": str}``.
    """
    if not isinstance(body, dict):
        raise ChannelError("the body must be a JSON object")
    sender = body.get("sender")
    if not isinstance(sender, str) or not sender.strip():
        raise ChannelError("'sender' must be a non-empty string")
    if len(sender) > MAX_SENDER_CHARS:
        raise ChannelError(f"'sender' is longer than {MAX_SENDER_CHARS} characters")
    message = body.get("message")
    if not isinstance(message, str):
        raise ChannelError("'message' must be a string")
    metadata = body.get("metadata", {})
    if not isinstance(metadata, dict):
        raise ChannelError("'metadata' must be an object")
    message_id = body.get("message_id", idempotency_key)
    if message_id is not None and not isinstance(message_id, str):
        raise ChannelError("'message_id' must be a string")
    return InboundMessage(CHANNEL, sender, sender, message, message_id, metadata)


def to_rasa(message: OutboundMessage) -> dict[str, Any]:
    """Return one reply in Rasa's REST channel shape."""
    reply: dict[str, Any] = {"recipient_id": message.conversation_id, "text": message.text}
    if message.buttons:
        reply["buttons"] = [{"title": b.title, "payload": b.payload} for b in message.buttons]
    return reply
