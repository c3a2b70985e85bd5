"""Plain records that the store hands out and takes in.

They are frozen dataclasses rather than ORM objects, so nothing outside
``bot.storage`` ever holds a session-bound object, and this module imports
no SQLAlchemy.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from datetime import datetime

Mode = Literal["bot", "human"]
Route = Literal["flow", "extractive", "local", "cloud", "human"]


@dataclass(frozen=True)
class ConversationRow:
    """A conversation as stored.

    Attributes:
        id: The store's id, used by every other store call.
        channel: The connector name.
        external_id: The channel's id for the conversation.
        sender: The channel's id for the customer.
        mode: ``bot`` while the bot answers, ``human`` after a handoff.
        metadata: Free-form extras.
        created_at: When the conversation was first seen (aware UTC).
        updated_at: When its row last changed (aware UTC).
    """

    id: int
    channel: str
    external_id: str
    sender: str
    mode: str
    metadata: dict[str, Any]
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class StoredMessage:
    """An inbound or outbound message as stored.

    Attributes:
        id: The store's id.
        conversation_id: The store's id of the conversation.
        conversation_external_id: The channel's id of the conversation, which a
            connector needs to deliver an outbound message.
        channel: The connector name.
        direction: ``in`` from the customer, ``out`` to the customer.
        external_id: The channel's message id (inbound), or ``None``.
        text: The message text.
        buttons: Quick-reply buttons as ``{"title", "payload"}`` dicts.
        metadata: Free-form extras.
        status: ``pending`` or ``processed`` (inbound); ``pending`` or
            ``delivered`` (outbound).
        in_reply_to: For outbound messages, the inbound message they answer.
        created_at: When it was stored (aware UTC).
    """

    id: int
    conversation_id: int
    conversation_external_id: str
    channel: str
    direction: str
    external_id: str | None
    text: str
    buttons: list[dict[str, Any]]
    metadata: dict[str, Any]
    status: str
    in_reply_to: int | None
    created_at: datetime


@dataclass(frozen=True)
class TurnRecord:
    """Everything one bot turn writes, committed in one transaction.

    Attributes:
        conversation_id: The store's id of the conversation.
        inbound_id: The inbound message the turn answers; it is marked
            processed by the same transaction.
        state: The new dialogue state, replacing the stored one.
        events: Tracker events to append, each a dict with an ``event`` key
            (see ``bot.dialogue.events.Event.to_dict``).
        replies: Outbound messages, each ``{"text", "buttons", "metadata"}``
            (``buttons`` and ``metadata`` optional).
        route: Which route answered: ``flow``, ``local``, ``cloud`` or ``human``.
        intent: The top intent, if any.
        confidence: The confidence of the answer or intent, if any.
        latency_ms: How long the turn took.
        flow_id: The flow that was active, if any.
        delivered: The replies are handed over by the caller itself (a
            synchronous channel), so they are stored as delivered.
        provider: The model provider that answered an open-ended turn.
        tokens_in: Prompt tokens of the model call, if any.
        tokens_out: Generated tokens of the model call, if any.
        cost_usd: What the model call cost.
        citations: Knowledge-base passages the answer used.
    """

    conversation_id: int
    inbound_id: int
    state: dict[str, Any]
    events: list[dict[str, Any]] = field(default_factory=list)
    replies: list[dict[str, Any]] = field(default_factory=list)
    route: str = "flow"
    intent: str | None = None
    confidence: float | None = None
    latency_ms: float | None = None
    flow_id: str | None = None
    delivered: bool = False
    provider: str | None = None
    tokens_in: int | None = None
    tokens_out: int | None = None
    cost_usd: float | None = None
    citations: list[str] | None = None


@dataclass(frozen=True)
class TurnContext:
    """What a turn needs to start: message status, conversation mode and state."""

    status: str
    mode: str
    state: dict[str, Any] | None


@dataclass(frozen=True)
class Received:
    """An inbound message as stored, with what its turn needs to start."""

    conversation: ConversationRow
    inbound_id: int
    created: bool
    context: TurnContext
