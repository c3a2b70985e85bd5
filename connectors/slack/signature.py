"""Middleware: verify that a request comes from Slack (its signing secret).

Slack signs every request it sends: ``X-Slack-Signature`` is
``v0=HMAC-SHA256(secret, "v0:<timestamp>:<body>")`` and
``X-Slack-Request-Timestamp`` the Unix time it was sent. A request without
them, with a timestamp more than five minutes away (a replay), or with a
wrong signature gets a 401 whose ``reason`` says which, before any handler
reads it. slack-sdk's :class:`SignatureVerifier` does the HMAC.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from aiohttp import web
from slack_sdk.signature import Clock, SignatureVerifier

from bot import metrics

if TYPE_CHECKING:
    from aiohttp.typedefs import Handler, Middleware

_LOGGER = logging.getLogger(__name__)
CHANNEL = "slack"
MAX_SKEW_S = 5 * 60
TIMESTAMP_HEADER = "X-Slack-Request-Timestamp"
SIGNATURE_HEADER = "X-Slack-Signature"


class _Clock(Clock):
    """slack-sdk's clock interface over a plain function."""

    def __init__(self, now: Callable[[], float]) -> None:
        self._now = now

    def now(self) -> float:
        return self._now()


def problem(request_ts: str | None, signature: str | None, now: float) -> tuple[str, str] | None:
    """What is wrong with the headers, as ``(error, reason)``, or ``None``."""
    if not request_ts:
        return "missing_timestamp", f"the {TIMESTAMP_HEADER} header is missing"
    if not request_ts.isdigit():
        return "bad_timestamp", f"the {TIMESTAMP_HEADER} header is not a Unix time"
    if abs(now - int(request_ts)) > MAX_SKEW_S:
        return "stale_timestamp", f"the request is more than {MAX_SKEW_S // 60} minutes old"
    if not signature:
        return "missing_signature", f"the {SIGNATURE_HEADER} header is missing"
    return None


def signature_middleware(
    signing_secret: str, *, now: Callable[[], float] = time.time
) -> Middleware:
    """Return an aiohttp middleware that lets only requests signed by Slack through.

    Args:
        signing_secret: The app's signing secret.
        now: The clock, in Unix seconds.
    """
    verifier = SignatureVerifier(signing_secret, clock=_Clock(now))

    @web.middleware
    async def verify_slack_signature(request: web.Request, handler: Handler) -> web.StreamResponse:
        request_ts = request.headers.get(TIMESTAMP_HEADER)
        signature = request.headers.get(SIGNATURE_HEADER)
        found = problem(request_ts, signature, now())
        if found is None:
            body = await request.read()  # aiohttp keeps it for the handler
            if not verifier.is_valid(body, request_ts, signature):
                found = "bad_signature", "the signature does not match the body"
        if found is not None:
            return reject(*found)
        return await handler(request)

    return verify_slack_signature


def reject(error: str, reason: str) -> web.Response:
    """A 401 that says why (Slack does not retry 4xx answers)."""
    metrics.HTTP_ERRORS.labels(CHANNEL, error).inc()
    _LOGGER.warning("Rejected a request to the Slack webhook: %s.", reason)
    return web.json_response({"error": error, "reason": reason}, status=401)
