"""The REST connector: request in, replies out, in one HTTP exchange."""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from bot import metrics
from bot.errors import ChannelError, StorageError
from connectors.rest.translate import CHANNEL, to_inbound, to_rasa

if TYPE_CHECKING:
    from bot.channels import OnMessage
    from bot.messages import OutboundMessage

_LOGGER = logging.getLogger(__name__)


class RestConfig(BaseModel):
    """The ``connectors.rest`` section of ``helpline.yml``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True
    max_body_bytes: int = Field(default=64 * 1024, gt=0)


class RestConnector:
    """Rasa-compatible ``POST /webhooks/rest/webhook``."""

    name = CHANNEL
    prefix = "/webhooks/rest/"

    def __init__(self, config: RestConfig, on_message: OnMessage) -> None:
        self.config = config
        self.on_message = on_message

    async def start(self) -> None:
        """Nothing to open: replies travel in the HTTP response."""

    async def stop(self) -> None:
        """Nothing to close."""

    async def send(self, message: OutboundMessage) -> None:
        """REST replies are returned synchronously; pushes are not supported."""
        _LOGGER.debug("REST channel cannot push %r; it is delivered on the next poll.", message)

    def sub_app(self) -> web.Application:
        """Return the sub-app with the webhook routes."""
        app = web.Application()
        app.router.add_get("/", self.health)
        app.router.add_post("/webhook", self.webhook)
        return app

    async def health(self, request: web.Request) -> web.Response:
        """Rasa's channel health check."""
        return web.json_response({"status": "ok"})

    async def webhook(self, request: web.Request) -> web.Response:
        """Take one message and answer with the bot's replies."""
        limit = self.config.max_body_bytes
        if (request.content_length or 0) > limit:
            return self._reject("too_large", f"the body is larger than {limit} bytes", 413)
        try:
            raw = await request.read()
        except web.HTTPRequestEntityTooLarge:
            return self._reject("too_large", f"the body is larger than {limit} bytes", 413)
        if len(raw) > limit:
            return self._reject("too_large", f"the body is larger than {limit} bytes", 413)
        try:
            body = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError):
            return self._reject("invalid_json", "the body is not valid JSON")
        try:
            inbound = to_inbound(body, request.headers.get("Idempotency-Key"))
        except ChannelError as exc:
            return self._reject("invalid_body", str(exc))
        try:
            replies = await self.on_message(inbound)
        except StorageError as exc:
            _LOGGER.warning("Message not stored, asking the client to retry: %s", exc)
            response = self._reject("unavailable", "storage is unavailable; retry later", 503)
            response.headers["Retry-After"] = "1"
            return response
        metrics.MESSAGES.labels(CHANNEL, "out").inc(len(replies))
        return web.json_response([to_rasa(r) for r in replies])

    @staticmethod
    def _reject(reason: str, text: str, status: int = 400) -> web.Response:
        metrics.HTTP_ERRORS.labels(CHANNEL, reason).inc()
        return web.json_response({"error": reason, "reason": text}, status=status)
