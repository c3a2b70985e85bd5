"""The client's address as a connector sees it, directly or behind a trusted proxy."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from aiohttp import web

#: Longer forwarded values are cut: the address is a bucket key and an audit field.
MAX_ADDRESS_CHARS = 64


def client_ip(request: web.Request, trust_forwarded_for: bool) -> str:
    """The client's IP address (from ``X-Forwarded-For``'s first hop only when trusted)."""
    if trust_forwarded_for:
        first = request.headers.get("X-Forwarded-For", "").split(",")[0].strip()
        if first:
            return first[:MAX_ADDRESS_CHARS]
    return request.remote or "unknown"
