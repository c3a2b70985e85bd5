"""The small protocol every connector implements.

A connector verifies, translates and delivers; it never decides what to say.
Incoming messages go to the ``on_message`` callback handed in when the
connector is built.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from aiohttp import web

    from bot.messages import InboundMessage, OutboundMessage

OnMessage = Callable[["InboundMessage"], Awaitable[list["OutboundMessage"]]]


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


class HttpChannel(Channel, Protocol):
    """A connector that receives over HTTP, on a sub-app the server mounts."""

    prefix: str

    def sub_app(self) -> web.Application:
        """Return the aiohttp sub-application with the connector's routes."""
        ...
