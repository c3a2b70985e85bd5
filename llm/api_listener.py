"""The ``/v1`` endpoint on a listener of its own (``llm.api.listen: own``).

Serving the API apart from the customer-facing port lets it be bound to a private
address and firewalled separately; customers' channels never share its sockets.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from aiohttp import web

from bot.lifecycle import Service

if TYPE_CHECKING:
    from llm.openai_api import OpenAIEndpoint

_LOGGER = logging.getLogger(__name__)

#: The largest request body (a long conversation fits; the default of aiohttp is 1 MiB).
MAX_BODY = 4 * 1024**2


class ApiListener(Service):
    """Serve ``endpoint`` at ``http://host:port/v1`` until stopped.

    Args:
        endpoint: The ``/v1`` endpoint.
        host: The address to listen on.
        port: The port (0 picks a free one; :attr:`port` then tells which).
    """

    def __init__(self, endpoint: OpenAIEndpoint, host: str, port: int) -> None:
        self.endpoint = endpoint
        self.host = host
        self.port = port
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        """Bind the socket and serve."""
        root = web.Application(client_max_size=MAX_BODY)
        root.add_subapp("/v1", self.endpoint.app)
        self._runner = web.AppRunner(root, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        addresses = self._runner.addresses
        if addresses:
            self.port = int(addresses[0][1])
        _LOGGER.info("The OpenAI-compatible API listens on http://%s:%d/v1.", self.host, self.port)

    async def stop(self) -> None:
        """Close the listener and its connections (drain the endpoint first)."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
