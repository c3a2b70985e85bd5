"""The small protocol every connector implements.

A connector verifies, translates and delivers; it never decides what to say.
Incoming messages go to the ``on_message`` callback handed in when the
connector is built.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from aiohttp import web
    from pydantic import BaseModel

    from bot.bus import Bus
    from bot.config import ServerSettings
    from bot.messages import InboundMessage, OutboundMessage
    from bot.storage.records import Received
    from bot.storage.store import Store

#: Runs a turn and returns its replies in one exchange (the REST channel).
OnMessage = Callable[["InboundMessage"], Awaitable[list["OutboundMessage"]]]
#: Stores a message and returns once it is durable; its turn runs in the
#: background and the replies come back through the channel's ``send``.
Submit = Callable[["InboundMessage"], Awaitable["Received"]]
#: Stores and delivers a message outside any bot turn, e.g. an agent's reply:
#: ``push(conversation_store_id, {"text": ..., "metadata": {...}})``.
Push = Callable[[int, dict[str, Any]], Awaitable["OutboundMessage"]]


@dataclass(frozen=True)
class ConnectorContext:
    """What the server hands every connector when it builds one.

    Attributes:
        submit: For channels that acknowledge before the turn runs.
        handle: For channels that return the replies in the same exchange.
        push: Deliver a message that no turn produced.
        bus: Live events of conversations (messages, tokens, typing).
        store: The message store, for history and resume.
        server: Where the server listens, for links it hands out.
    """

    submit: Submit
    handle: OnMessage
    push: Push
    bus: Bus
    store: Store
    server: ServerSettings


@dataclass(frozen=True)
class ConnectorSpec:
    """A registered connector: its name, config model and factory.

    The config model must have an ``enabled`` field; the factory gets the
    validated section and the context.
    """

    name: str
    config: type[BaseModel]
    build: Callable[[Any, ConnectorContext], Channel]


class Channel(Protocol):
    """A connector: a name, a lifecycle and a way to deliver replies."""

    name: str

    async def start(self) -> None:
        """Open whatever the connector needs (sockets, clients)."""
        ...

    async def stop(self) -> None:
        """Close it again."""
        ...

    async def send(self, message: OutboundMessage) -> None:
        """Deliver one reply; rich parts fall back to text where unsupported."""
        ...


@runtime_checkable
class CheckedChannel(Channel, Protocol):
    """A channel that can tell whether a reply reached the customer already.

    The outbox asks before re-sending a reply an earlier attempt may have
    delivered (one from the outbox after a crash or a takeover, or after
    a :class:`DeliveryError` with ``maybe_delivered``), so the customer
    gets it once even though the platform has no idempotency key.
    """

    async def already_sent(self, message: OutboundMessage) -> bool:
        """Whether ``message`` (its ``metadata["message_id"]``) was delivered before.

        Raises:
            DeliveryError: The platform could not be asked; the outbox then
                sends the reply (at least once rather than never).
        """
        ...


@runtime_checkable
class HttpChannel(Channel, Protocol):
    """A connector that receives over HTTP, on a sub-app the server mounts."""

    prefix: str

    def sub_app(self) -> web.Application:
        """Return the aiohttp sub-application with the connector's routes."""
        ...
