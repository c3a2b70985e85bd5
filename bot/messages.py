"""Channel-neutral messages exchanged between connectors and the bot."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from bot.redact import mask_payment


@dataclass(frozen=True)
class Button:
    """A quick-reply button: the ``title`` is shown, the ``payload`` is sent back."""

    title: str
    payload: str


@dataclass(frozen=True)
class InboundMessage:
    """One message from a customer, as a connector normalised it.

    Card numbers and security codes in ``text`` are masked as the message is
    built (:func:`bot.redact.mask_payment`), before anything stores, parses or
    publishes it: this is the one place they are kept out of the transcript.

    Attributes:
        channel: The connector name, e.g. ``rest`` or ``slack``.
        conversation_id: The channel's own id for the conversation.
        sender: The channel's id for the customer.
        text: The message text (a button payload when a button was pressed).
        message_id: The channel's id for this message; the idempotency key.
        metadata: Channel extras, kept as they came.
    """

    channel: str
    conversation_id: str
    sender: str
    text: str
    message_id: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        """Mask payment card data in the text."""
        masked = mask_payment(self.text)
        if masked != self.text:
            object.__setattr__(self, "text", masked)


@dataclass(frozen=True)
class OutboundMessage:
    """One reply for a connector to deliver."""

    channel: str
    conversation_id: str
    text: str
    buttons: tuple[Button, ...] = ()
    metadata: dict[str, Any] = field(default_factory=dict)
