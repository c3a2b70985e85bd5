"""Whether the console's client talks HTTPS (directly or through a proxy)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from aiohttp import web


def is_https(request: web.Request) -> bool:
    """Whether the browser talks HTTPS to us (directly or through a proxy)."""
    forwarded = request.headers.get("X-Forwarded-Proto", "").split(",")[0].strip().lower()
    return request.secure or forwarded == "https"
