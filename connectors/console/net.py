"""What the console knows of the client's connection: HTTPS or not, and its IP."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from aiohttp import web


def is_https(request: web.Request) -> bool:
    """Whether the browser talks HTTPS to us (directly or through a proxy)."""
    forwarded = request.headers.get("X-Forwarded-Proto", "").split(",")[0].strip().lower()
    return request.secure or forwarded == "https"


def client_ip(request: web.Request, trust_forwarded_for: bool) -> str:
    """The client's IP address (from ``X-Forwarded-For`` only when trusted)."""
    if trust_forwarded_for and "X-Forwarded-For" in request.headers:
        return request.headers["X-Forwarded-For"].split(",")[0].strip()[:64]
    return request.remote or "unknown"
