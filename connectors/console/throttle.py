"""Middleware: throttle password guessing without letting anyone lock an agent out.

Following OWASP's advice (throttle per account *and* client, and tell known
devices from strangers, rather than lock the account), a login attempt is
refused with 429 + ``Retry-After`` while, within ``login_window_min``:

* its (email, client) pair failed ``login_max_failures`` times, where the
  client is the browser's device cookie when it has a valid one for that
  email, else its IP (:mod:`connectors.console.devices`); or
* it comes from a stranger (no device cookie) and strangers failed
  ``login_max_stranger_failures`` times for that email (guessing from many
  IPs), or from that IP for any email (one IP trying many accounts).

So an attacker's failures never refuse an agent's browser that logged in
before, and refuse other IPs only after many failures. Failures are rows in
the database (``login_failures``), so every replica counts the same ones.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from aiohttp import web

from bot import wirejson
from connectors.console.devices import PREFIX, client_of
from connectors.console.mw_session import LOGIN_PATH
from connectors.console.state import STATE, ConsoleState, api_error
from connectors.net import client_ip

if TYPE_CHECKING:
    from aiohttp.typedefs import Handler


def _retry_after(times: list[datetime], limit: int, window: timedelta, now: datetime) -> float:
    """Seconds until fewer than ``limit`` of ``times`` fall in the window (0: now)."""
    if len(times) < limit:
        return 0.0
    return (times[-limit] + window - now).total_seconds()


async def wait_for(state: ConsoleState, request: web.Request, email: str) -> float:
    """Seconds this login attempt must wait (0: it may try now)."""
    config, now = state.config, datetime.now(UTC)
    window = timedelta(minutes=config.login_window_min)
    ip = client_ip(request, config.trust_forwarded_for)
    client, lowered = client_of(state, request, email), email.strip().lower()[:255]
    rows = await state.db.recent_login_failures(lowered, ip, now - window)
    pair = [at for e, c, at in rows if e == lowered and c == client]
    wait = _retry_after(pair, config.login_max_failures, window, now)
    if client.startswith(PREFIX):
        return wait
    strangers = [at for e, c, at in rows if e == lowered and not c.startswith(PREFIX)]
    from_ip = [at for _, c, at in rows if c == ip]
    limit = config.login_max_stranger_failures
    return max(
        wait,
        _retry_after(strangers, limit, window, now),
        _retry_after(from_ip, limit, window, now),
    )


@web.middleware
async def throttle_logins(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Refuse a login attempt while its client is over a failure limit."""
    if request.path != LOGIN_PATH or request.method != "POST":
        return await handler(request)
    try:
        body = wirejson.loads(await request.read())
    except (wirejson.InvalidPayload, web.HTTPRequestEntityTooLarge):
        return await handler(request)  # the handler answers 400 or 413
    email = body.get("email") if isinstance(body, dict) else None
    if not isinstance(email, str):
        return await handler(request)  # the handler answers 400
    wait = await wait_for(request.app[STATE], request, email)
    if wait <= 0:
        return await handler(request)
    seconds = max(1, math.ceil(wait))
    error = api_error(429, "throttled", f"too many failed logins; try again in {seconds} s")
    error.headers["Retry-After"] = str(seconds)
    raise error
