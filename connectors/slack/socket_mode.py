"""Socket Mode: the same payloads over a WebSocket the app opens, no public URL.

slack-sdk's aiohttp :class:`SocketModeClient` asks ``apps.connections.open``
(with the app-level token) for a ``wss://`` URL, keeps the connection alive
(pings, reconnects on close or on a ``disconnect`` envelope) and hands each
envelope to a listener. The listener only spawns a task this transport owns;
that task runs the payload chain and acknowledges the ``envelope_id`` once
the message is stored. An envelope that could not be stored is not
acknowledged, so Slack redelivers it; one that can never be taken (a
malformed payload) is acknowledged and dropped with a warning.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.socket_mode.aiohttp import SocketModeClient
from slack_sdk.socket_mode.response import SocketModeResponse

from bot.errors import ChannelError
from bot.tasks import OwnedTasks
from connectors.slack.api import AUTH_ERRORS, error_code

if TYPE_CHECKING:
    from collections.abc import Coroutine

    from slack_sdk.socket_mode.async_client import AsyncBaseSocketModeClient
    from slack_sdk.socket_mode.request import SocketModeRequest
    from slack_sdk.web.async_client import AsyncWebClient

    from connectors.slack.pipeline import Handler

_LOGGER = logging.getLogger(__name__)
#: Envelope types whose payload goes through the chain; others are only acked.
PAYLOAD_TYPES = frozenset({"events_api", "interactive"})


class SocketModeTransport:
    """Receive Slack payloads over Socket Mode.

    Args:
        app_token: The app-level token (``xapp-...``).
        web_client: The Web API client used for ``apps.connections.open``.
        handle: The payload chain.
        ping_interval_s: How often the connection is checked.
    """

    def __init__(
        self,
        app_token: str,
        web_client: AsyncWebClient,
        handle: Handler,
        *,
        ping_interval_s: float = 5.0,
    ) -> None:
        self._app_token = app_token
        self._web_client = web_client
        self._handle = handle
        self._ping_interval_s = ping_interval_s
        self._client: SocketModeClient | None = None
        self._tasks = OwnedTasks()

    async def start(self) -> None:
        """Get a WebSocket URL, then connect in the background.

        Raises:
            ChannelError: Slack refused the app-level token.
        """
        client = SocketModeClient(
            self._app_token,
            logger=_LOGGER.getChild("sdk"),
            web_client=self._web_client,
            ping_interval=self._ping_interval_s,
        )
        client.socket_mode_request_listeners.append(self._on_request)
        self._client = client
        try:
            client.wss_uri = await client.issue_new_wss_url()
        except SlackApiError as exc:
            if error_code(exc) in AUTH_ERRORS:
                reason = error_code(exc)
                raise ChannelError(
                    f"connectors.slack.app_token: Slack refused it ({reason})"
                ) from exc
            _LOGGER.warning("Cannot open a Socket Mode connection yet: %s; retrying.", exc)
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            _LOGGER.warning("Cannot reach Slack for Socket Mode yet: %r; retrying.", exc)
        # connect() retries until it is connected or the client is closed.
        self._spawn(client.connect(), "slack-socket-connect")

    async def stop(self) -> None:
        """Cancel the envelopes in flight and close the connection."""
        await self._tasks.stop()
        client, self._client = self._client, None
        if client is None:
            return
        await client.close()
        # close() cancels the client's own tasks but does not wait for them.
        futures = (
            client.message_processor,
            client.current_session_monitor,
            client.message_receiver,
        )
        await asyncio.gather(*(f for f in futures if f is not None), return_exceptions=True)

    def _spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> None:
        self._tasks.spawn(coro, name)

    async def _on_request(
        self, client: AsyncBaseSocketModeClient, request: SocketModeRequest
    ) -> None:
        # The SDK runs listeners in tasks nobody awaits; hand the work to an owned one.
        self._spawn(self._process(client, request), f"slack-envelope:{request.envelope_id}")

    async def _process(self, client: AsyncBaseSocketModeClient, request: SocketModeRequest) -> None:
        """Run one envelope's payload through the chain, then acknowledge it."""
        if request.type in PAYLOAD_TYPES:
            ack = await self._handle(request.payload)
            if ack.retry:
                _LOGGER.warning(
                    "Not acknowledging envelope %s (%s); Slack will redeliver it.",
                    request.envelope_id,
                    ack.note,
                )
                return
            if not ack.ok:  # it can never be taken: redelivery would not help
                _LOGGER.warning("Dropping envelope %s: %s.", request.envelope_id, ack.note)
        else:
            _LOGGER.debug("Acknowledging a %s envelope without handling it.", request.type)
        await client.send_socket_mode_response(SocketModeResponse(envelope_id=request.envelope_id))
