"""Device cookies: a browser that once logged in as an agent is told apart from strangers.

This is OWASP's "device cookie" defence against online password guessing
(its Authentication Cheat Sheet prefers it to locking accounts, which lets
anyone lock anyone out). A successful login sets ``helpline_console_device``
= ``nonce.signature``, an HMAC over the agent's email and the nonce. Failed
logins are counted per (email, client), where the client is the device
(``device:<nonce>``) when the browser shows a valid cookie for that email,
and its IP otherwise; so an attacker's failures throttle the attacker, and
never the agent on a browser they logged in from before.

The signing key is ``device_cookie_key`` when configured (set it when
several replicas serve the console); otherwise a random key per process,
which makes every device a stranger again after a restart.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import timedelta
from typing import TYPE_CHECKING

from connectors.console.net import is_https
from connectors.net import client_ip

if TYPE_CHECKING:
    from aiohttp import web

    from connectors.console.state import ConsoleState

COOKIE = "helpline_console_device"
PREFIX = "device:"
LIFETIME = timedelta(days=365)
_PROCESS_KEY = secrets.token_bytes(32)


def _key(state: ConsoleState) -> bytes:
    configured = state.config.device_cookie_key
    if configured is not None and configured.get_secret_value():
        return configured.get_secret_value().encode()
    return _PROCESS_KEY


def _signature(state: ConsoleState, email: str, nonce: str) -> str:
    message = f"{email.strip().lower()}\n{nonce}".encode()
    return hmac.new(_key(state), message, hashlib.sha256).hexdigest()


def device_of(state: ConsoleState, request: web.Request, email: str) -> str | None:
    """The nonce of the request's device cookie if it is valid for ``email``."""
    nonce, _, signature = request.cookies.get(COOKIE, "").partition(".")
    if not nonce or len(nonce) > 43 or not signature.isascii():
        return None
    expected = _signature(state, email, nonce)
    return nonce if hmac.compare_digest(signature.encode(), expected.encode()) else None


def client_of(state: ConsoleState, request: web.Request, email: str) -> str:
    """Whom failures of this login are counted against: the known device, or the IP."""
    nonce = device_of(state, request, email)
    if nonce is not None:
        return PREFIX + nonce
    return client_ip(request, state.config.trust_forwarded_for)


def remember(state: ConsoleState, request: web.Request, response: web.Response, email: str) -> None:
    """Give the browser a device cookie for ``email`` (kept if it has a valid one)."""
    nonce = device_of(state, request, email) or secrets.token_urlsafe(16)
    response.set_cookie(
        COOKIE,
        f"{nonce}.{_signature(state, email, nonce)}",
        path="/console/api/login",
        httponly=True,
        samesite="Strict",
        secure=is_https(request),
        max_age=int(LIFETIME.total_seconds()),
    )
