"""Middleware: verify that a request comes from Slack (its signing secret).

Slack signs every request it sends: ``X-Slack-Signature`` is
``v0=HMAC-SHA256(secret, "v0:<timestamp>:<body>")`` and
``X-Slack-Request-Timestamp`` the Unix time it was sent. A request without
them, with a timestamp more than five minutes away (a replay), or with a
wrong signature gets a 401 whose ``reason`` says which, before any handler
reads it. The HMAC is computed over the body's bytes as they came (slack-sdk's
verifier decodes them as UTF-8 first, which fails on a body that is not), and
the timestamp must be ASCII digits (``str.isdigit`` also takes ``"²"``, which
``int`` refuses).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from aiohttp import web

from bot import metrics

if TYPE_CHECKING:
    from aiohttp.typedefs import Handler, Middleware

_LOGGER = logging.getLogger(__name__)
CHANNEL = "slack"
MAX_SKEW_S = 5 * 60
TIMESTAMP_HEADER = "X-Slack-Request-Timestamp"
SIGNATURE_HEADER = "X-Slack-Signature"
#: A Unix time in seconds: ASCII digits, and few enough for ``int``.
_UNIX_TIME = re.compile(r"[0-9]{1,15}")


def expected_signature(secret: str, request_ts: str, body: bytes) -> str:
    """Slack's ``v0=`` signature of ``body`` sent at ``request_ts``."""
    base = b"v0:" + request_ts.encode("ascii") + b":" + body
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


def signature_matches(secret: str, request_ts: str, body: bytes, signature: str) -> bool:
    """Whether ``signature`` is Slack's for ``body``, compared in constant time."""
    given = signature.encode("utf-8", "replace")  # a header may hold anything
    return hmac.compare_digest(expected_signature(secret, request_ts, body).encode(), given)


def problem(request_ts: str | None, signature: str | None, now: float) -> tuple[str, str] | None:
    """What is wrong with the headers, as ``(error, reason)``, or ``None``."""
    if not request_ts:
        return "missing_timestamp", f"the {TIMESTAMP_HEADER} header is missing"
    if not _UNIX_TIME.fullmatch(request_ts):
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

    @web.middleware
    async def verify_slack_signature(request: web.Request, handler: Handler) -> web.StreamResponse:
        request_ts = request.headers.get(TIMESTAMP_HEADER)
        signature = request.headers.get(SIGNATURE_HEADER)
        found = problem(request_ts, signature, now())
        if found is None and request_ts is not None and signature is not None:
            body = await request.read()  # aiohttp keeps it for the handler
            if not signature_matches(signing_secret, request_ts, body, signature):
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
