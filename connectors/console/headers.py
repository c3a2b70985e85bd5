"""Security headers of every console answer (pages, assets, API, socket handshake).

The pages load only their own script and stylesheet (no inline script or
style, so the Content-Security-Policy needs no ``'unsafe-inline'``); the API
answers are JSON that no browser may cache, frame or sniff as something
else. No answer names the server's software or version.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from aiohttp import web

PREFIX = "/console"
API_PREFIX = "/console/api/"
#: What the console pages may load: their own files, the socket to this origin.
PAGE_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
#: JSON needs nothing.
API_CSP = "default-src 'none'; frame-ancestors 'none'"
SERVER = "Helpline"
COMMON = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Server": SERVER,
}


def is_console(path: str) -> bool:
    """Whether ``path`` is served by the console."""
    return path == PREFIX or path.startswith(PREFIX + "/")


async def secure_headers(request: web.Request, response: web.StreamResponse) -> None:
    """``on_response_prepare``: add the console's headers to its own answers only."""
    if not is_console(request.path):
        return
    response.headers.update(COMMON)
    if request.path.startswith(API_PREFIX):
        response.headers["Content-Security-Policy"] = API_CSP
        response.headers["Cache-Control"] = "no-store"
    else:
        response.headers["Content-Security-Policy"] = PAGE_CSP
