"""Middleware: every console API request but login needs a live session (else 401)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from connectors.console.auth import session_of
from connectors.console.state import AGENT, CSRF, SESSION, STATE, api_error

if TYPE_CHECKING:
    from aiohttp.typedefs import Handler

LOGIN_PATH = "/console/api/login"


@web.middleware
async def require_session(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Put the session's agent and CSRF token on the request, or answer 401."""
    if request.path == LOGIN_PATH:
        return await handler(request)
    found = await session_of(request.app[STATE], request)
    if found is None:
        reason = "no session" if "helpline_console" not in request.cookies else "session expired"
        raise api_error(401, "unauthenticated", reason)
    request[AGENT], request[CSRF], request[SESSION] = found
    return await handler(request)
