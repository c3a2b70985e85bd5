"""Who may call the ``/v1`` endpoint, how often, and at what priority.

:class:`ApiAccess` is the endpoint's middleware. With ``llm.api.keys`` set a caller
sends one of them as ``Authorization: Bearer KEY`` (as vLLM's ``--api-key``); a
missing or wrong key gets 401. Without a key a caller is anonymous, which is allowed
only when no keys are configured (a ``helpline serve-model`` worker on a private
network, as vLLM without ``--api-key``) or with ``allow_anonymous``.

Each key, and each anonymous address when ``allow_anonymous`` is set, has a token
bucket (``requests_per_minute``, ``burst``); an empty bucket is a 429 with
``Retry-After``. Keys are compared in constant time and never logged: logs name a
key by its ``name``. A key's ``priority`` decides whether its requests wait for the
model as customers' turns or as API calls; the ``X-Helpline-Priority: api`` header
(sent by the worker pool for the app's own ``/v1`` calls) can only lower it.
"""

from __future__ import annotations

import hmac
import logging
import math
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from aiohttp import web

from bot.ratelimit import Bucket, TokenBuckets
from llm.openai_errors import error_response
from llm.pool import PRIORITY_HEADER

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from llm.settings import ApiSettings
    from llm.types import Priority

_LOGGER = logging.getLogger(__name__)

#: The priority the access check gave a request; the handlers read it.
PRIORITY = web.RequestKey("helpline_priority", str)


@dataclass(frozen=True)
class _Principal:
    """Who is calling: a key (by name) or an address, with its limits."""

    label: str
    per_minute: float | None
    burst: int
    priority: Priority


class ApiAccess:
    """The ``/v1`` middleware: API keys, per-key rate limits and the request's priority.

    Args:
        settings: The ``llm.api`` settings.
        clock: Monotonic seconds (for the rate limits).
    """

    def __init__(self, settings: ApiSettings, clock: Callable[[], float] = time.monotonic) -> None:
        self._keys = [
            (
                k.key.encode(),
                _Principal(
                    f"key {k.name}",
                    None if k.unlimited else k.requests_per_minute or settings.requests_per_minute,
                    settings.burst,
                    k.priority,
                ),
            )
            for k in settings.keys
        ]
        # No keys and no explicit anonymous access: an open worker, as vLLM without a key.
        self._open = not settings.keys and not settings.allow_anonymous
        self._anonymous = settings.allow_anonymous
        self._rate = settings.requests_per_minute
        self._burst = settings.burst
        self._clock = clock
        self._buckets: dict[tuple[float, int], TokenBuckets] = {}

    def identify(self, request: web.Request) -> _Principal | None:
        """The caller, or ``None`` when it must be refused with 401."""
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            sent = token.strip().encode("utf-8", "replace")
            found = None
            for key, principal in self._keys:  # Compare with every key: constant time.
                if hmac.compare_digest(sent, key):
                    found = principal
            return found or (self._open_principal() if self._open else None)
        if header:
            return self._open_principal() if self._open else None
        if self._open:
            return self._open_principal()
        if self._anonymous:
            return _Principal(f"address {request.remote}", self._rate, self._burst, "api")
        return None

    def _wait_s(self, who: _Principal) -> float:
        """Take one request from ``who``'s bucket: 0, or the seconds until one is free."""
        if who.per_minute is None:
            return 0.0
        shape = (who.per_minute, who.burst)  # one set of buckets per distinct limit
        buckets = self._buckets.get(shape)
        if buckets is None:
            bucket = Bucket(per_second=who.per_minute / 60.0, burst=who.burst)
            buckets = self._buckets[shape] = TokenBuckets(bucket, self._clock)
        return 0.0 if buckets.take(who.label) else buckets.wait_s(who.label)

    @staticmethod
    def _open_principal() -> _Principal:
        return _Principal("anonymous", None, 1, "customer")

    @web.middleware
    async def middleware(
        self,
        request: web.Request,
        handler: Callable[[web.Request], Awaitable[web.StreamResponse]],
    ) -> web.StreamResponse:
        """Refuse unknown callers (401) and those over their rate (429); set the priority."""
        who = self.identify(request)
        if who is None:
            _LOGGER.info("A /v1 request from %s had no valid API key.", request.remote)
            refusal = error_response(
                401,
                "Incorrect or missing API key: send it as 'Authorization: Bearer KEY'.",
                kind="invalid_request_error",
                code="invalid_api_key",
            )
            refusal.headers["WWW-Authenticate"] = "Bearer"
            return refusal
        wait_s = self._wait_s(who)
        if wait_s > 0:
            _LOGGER.info("A /v1 request of %s is over its rate limit.", who.label)
            refusal = error_response(
                429,
                f"Rate limit reached for {who.label}; try again in {math.ceil(wait_s)} s.",
                kind="requests",
                code="rate_limit_exceeded",
            )
            refusal.headers["Retry-After"] = str(math.ceil(wait_s))
            return refusal
        lowered = request.headers.get(PRIORITY_HEADER, "").strip().lower() == "api"
        request[PRIORITY] = "api" if lowered else who.priority
        return await handler(request)
