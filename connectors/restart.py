"""Closing a browser's WebSocket when the server restarts (SIGTERM drain).

The client gets a ``{"type": "reconnect", "after_ms": N}`` frame, then the
close code 1012 "service restart". The widget and the console reconnect
with backoff, no sooner than ``after_ms``, and resume from the last message
id they saw: on another replica, or on this one once it is back.
"""

from __future__ import annotations

import contextlib

from aiohttp import WSCloseCode, web

RECONNECT_AFTER_MS = 1000


async def close_for_restart(ws: web.WebSocketResponse) -> None:
    """Send the reconnect hint, then close ``ws`` with 1012 (a closed socket is left alone)."""
    if ws.closed:
        return
    with contextlib.suppress(ConnectionError, RuntimeError):
        await ws.send_json({"type": "reconnect", "after_ms": RECONNECT_AFTER_MS})
    await ws.close(code=WSCloseCode.SERVICE_RESTART, message=b"service restart")
