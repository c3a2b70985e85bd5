"""The REST connector: request in, replies out, in one HTTP exchange."""

from __future__ import annotations

import hmac
import logging
import math
from typing import TYPE_CHECKING

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, SecretStr

from bot import metrics, wirejson
from bot.errors import ChannelError, InvalidInput, ShuttingDown, StorageError
from bot.ratelimit import Bucket, TokenBuckets
from connectors.net import client_ip
from connectors.rest.translate import CHANNEL, to_inbound, to_rasa

if TYPE_CHECKING:
    from bot.channels import OnMessage
    from bot.messages import OutboundMessage

_LOGGER = logging.getLogger(__name__)


class RestConfig(BaseModel):
    """The ``connectors.rest`` section of ``helpline.yml``.

    Attributes:
        auth_token: When set, every call must carry it, as
            ``Authorization: Bearer TOKEN`` or ``?token=TOKEN`` (Rasa's
            ``--auth-token``); otherwise the channel is public.
        sender_rate: Messages per sender; ``null`` turns the limit off.
        ip_rate: Messages per client IP, which stops a caller that rotates
            sender ids; ``null`` turns it off.
        trust_forwarded_for: Take the client IP from ``X-Forwarded-For``
            (only behind a proxy that sets it).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True
    max_body_bytes: int = Field(default=64 * 1024, gt=0)
    auth_token: SecretStr | None = None
    sender_rate: Bucket | None = Bucket(per_second=1.0, burst=10)
    ip_rate: Bucket | None = Bucket(per_second=20.0, burst=200)
    trust_forwarded_for: bool = False


class RestConnector:
    """Rasa-compatible ``POST /webhooks/rest/webhook``."""

    name = CHANNEL
    prefix = "/webhooks/rest/"

    def __init__(self, config: RestConfig, on_message: OnMessage) -> None:
        self.config = config
        self.on_message = on_message
        self._senders = None if config.sender_rate is None else TokenBuckets(config.sender_rate)
        self._ips = None if config.ip_rate is None else TokenBuckets(config.ip_rate)

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
        ip = client_ip(request, self.config.trust_forwarded_for)
        refused = self._authenticate(request) or self._limit(self._ips, ip)
        if refused is not None:
            return refused
        raw = await self._body(request)
        if raw is None:
            limit = self.config.max_body_bytes
            return self._reject("too_large", f"the body is larger than {limit} bytes", 413)
        try:
            inbound = to_inbound(wirejson.loads(raw), request.headers.get("Idempotency-Key"))
        except wirejson.InvalidPayload as exc:
            return self._reject("invalid_json", str(exc))
        except ChannelError as exc:
            return self._reject("invalid_body", str(exc))
        refused = self._limit(self._senders, inbound.sender)
        if refused is not None:
            return refused
        try:
            replies = await self.on_message(inbound)
        except InvalidInput as exc:
            return self._reject("invalid_body", str(exc))
        except StorageError as exc:
            why = "the server is restarting" if isinstance(exc, ShuttingDown) else "storage"
            _LOGGER.warning("Message not taken, asking the client to retry: %s", exc)
            response = self._reject("unavailable", f"{why} is unavailable; retry later", 503)
            response.headers["Retry-After"] = "1"
            return response
        metrics.MESSAGES.labels(CHANNEL, "out").inc(len(replies))
        return web.json_response([to_rasa(r) for r in replies])

    async def _body(self, request: web.Request) -> bytes | None:
        """The request body, or ``None`` when it is over ``max_body_bytes``."""
        limit = self.config.max_body_bytes
        if (request.content_length or 0) > limit:
            return None
        try:
            raw = await request.read()
        except web.HTTPRequestEntityTooLarge:
            return None
        return raw if len(raw) <= limit else None

    def _authenticate(self, request: web.Request) -> web.Response | None:
        """A 401 unless the call carries the configured token (constant-time check)."""
        secret = self.config.auth_token
        if secret is None:
            return None
        header = request.headers.get("Authorization", "")
        given = header[7:] if header[:7].lower() == "bearer " else request.query.get("token", "")
        if hmac.compare_digest(given.encode(), secret.get_secret_value().encode()):
            return None
        response = self._reject("unauthorized", "a valid auth token is required", 401)
        response.headers["WWW-Authenticate"] = 'Bearer realm="helpline"'
        return response

    def _limit(self, buckets: TokenBuckets | None, key: str) -> web.Response | None:
        """A 429 with ``Retry-After`` when ``key``'s bucket is empty."""
        if buckets is None or buckets.take(key):
            return None
        response = self._reject("rate_limited", "too many messages; wait and send it again", 429)
        response.headers["Retry-After"] = str(max(1, math.ceil(buckets.wait_s(key))))
        return response

    @staticmethod
    def _reject(reason: str, text: str, status: int = 400) -> web.Response:
        metrics.HTTP_ERRORS.labels(CHANNEL, reason).inc()
        return web.json_response({"error": reason, "reason": text}, status=status)
