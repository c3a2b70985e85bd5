"""OpenAI-style error bodies for the ``/v1`` endpoint."""

from __future__ import annotations

from aiohttp import web


def error_response(
    status: int, message: str, *, kind: str, param: str | None = None, code: str | None = None
) -> web.Response:
    """An OpenAI-style error: ``{"error": {"message", "type", "param", "code"}}``."""
    body = {"error": {"message": message, "type": kind, "param": param, "code": code}}
    return web.json_response(body, status=status)
