"""Middleware: state-changing requests must echo the session's CSRF token (else 403).

The token travels in the ``X-CSRF-Token`` header, which a cross-site form
cannot set; the login itself is exempt (it has no session yet).
"""

from __future__ import annotations

import hmac
from typing import TYPE_CHECKING

from aiohttp import web

from connectors.console.mw_session import LOGIN_PATH
from connectors.console.state import CSRF, api_error

if TYPE_CHECKING:
    from aiohttp.typedefs import Handler

HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@web.middleware
async def require_csrf(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Compare the header with the session's token in constant time."""
    if request.method in SAFE_METHODS or request.path == LOGIN_PATH:
        return await handler(request)
    sent = request.headers.get(HEADER)
    if not sent:
        raise api_error(403, "csrf", f"the {HEADER} header is missing")
    if not hmac.compare_digest(sent.encode(), request[CSRF].encode()):
        raise api_error(403, "csrf", f"the {HEADER} header does not match the session")
    return await handler(request)
