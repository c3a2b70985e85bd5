"""Middleware: too many failed logins for an email or from an IP get 429 + Retry-After.

Failures are rows in the database (``login_failures``), so every replica
counts the same ones.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from aiohttp import web

from connectors.console.auth import client_ip
from connectors.console.mw_session import LOGIN_PATH
from connectors.console.state import STATE, api_error

if TYPE_CHECKING:
    from aiohttp.typedefs import Handler


def _retry_after(times: list[datetime], limit: int, window: timedelta, now: datetime) -> float:
    """Seconds until fewer than ``limit`` of ``times`` fall in the window (0: now)."""
    if len(times) < limit:
        return 0.0
    return (times[-limit] + window - now).total_seconds()


@web.middleware
async def throttle_logins(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Refuse a login attempt while its email or IP is over the failure limit."""
    if request.path != LOGIN_PATH or request.method != "POST":
        return await handler(request)
    state = request.app[STATE]
    try:
        body = await request.json()
    except ValueError:
        return await handler(request)  # the handler answers 400
    email = body.get("email") if isinstance(body, dict) else None
    config, now = state.config, datetime.now(UTC)
    window = timedelta(minutes=config.login_window_min)
    ip = client_ip(request, config.trust_forwarded_for)
    by_email, by_ip = await state.db.login_failures(str(email or ""), ip, now - window)
    wait = max(
        _retry_after(by_email, config.login_max_failures, window, now),
        _retry_after(by_ip, config.login_max_failures, window, now),
    )
    if wait <= 0:
        return await handler(request)
    seconds = max(1, math.ceil(wait))
    error = api_error(429, "throttled", f"too many failed logins; try again in {seconds} s")
    error.headers["Retry-After"] = str(seconds)
    raise error
