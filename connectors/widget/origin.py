"""Middleware: the origin allow-list, checked at the WebSocket handshake.

Browsers send ``Origin`` with every WebSocket handshake and let any page open
a socket to any host, so without this check another site could talk to the
bot in a visitor's name (cross-site WebSocket hijacking). A client without
``Origin`` is not a browser and cannot be used that way; it is let through.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from aiohttp import hdrs

if TYPE_CHECKING:
    from collections.abc import Sequence

    from aiohttp import web

_LOGGER = logging.getLogger(__name__)
_DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}
LOOPBACK = frozenset({"localhost", "127.0.0.1", "[::1]", "::1"})


def normalise(origin: str) -> str | None:
    """Return ``scheme://host[:port]`` in lower case without a default port, or ``None``."""
    try:
        parts = urlsplit(origin.strip().lower())
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in _DEFAULT_PORTS or not parts.hostname:
        return None
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    if port is None or port == _DEFAULT_PORTS[parts.scheme]:
        return f"{parts.scheme}://{host}"
    return f"{parts.scheme}://{host}:{port}"


class OriginGuard:
    """Decides whether a page's origin may open the widget socket.

    Args:
        allowed: Origins such as ``https://shop.example.com``, or ``*`` for
            any. Empty allows the server's own origin and loopback pages.
    """

    def __init__(self, allowed: Sequence[str]) -> None:
        self._any = "*" in allowed
        self._allowed = {n for n in map(normalise, allowed) if n is not None}

    def refusal(self, request: web.Request) -> str | None:
        """Return why the handshake is refused, or ``None`` to let it through."""
        origin = request.headers.get(hdrs.ORIGIN)
        if origin is None or self._any:
            return None
        page = normalise(origin)
        if page is not None and self._permits(page, request.host):
            return None
        _LOGGER.info("Refused a widget socket from origin %r.", origin)
        return f"the origin {origin!r} may not embed this widget"

    def _permits(self, page: str, host: str) -> bool:
        if self._allowed:
            return page in self._allowed
        parts = urlsplit(page)
        if parts.hostname in LOOPBACK:
            return True
        # Same origin: the page's host[:port] is the Host the socket was opened on
        # (the scheme may differ behind a TLS-terminating proxy).
        return normalise(f"{parts.scheme}://{host}") == page
