"""What every console handler shares: typed keys, the state, JSON errors, publishing.

The sub-application holds a :class:`ConsoleState` under :data:`STATE`; the
session middleware puts the logged-in agent and the session's CSRF token on
the request under :data:`AGENT` and :data:`CSRF`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aiohttp import web

from bot.bus import conversation_topic

if TYPE_CHECKING:
    from bot.channels import ConnectorContext
    from bot.storage.console_store import ConsoleStore
    from connectors.console.config import ConsoleConfig

#: The bus topic of console-only events (notes, presence, claims...).
CONSOLE_TOPIC = "console"
COOKIE = "helpline_console"
COOKIE_PATH = "/console"
Json = dict[str, Any]


@dataclass(frozen=True)
class ConsoleState:
    """The console's configuration, store and connector context."""

    config: ConsoleConfig
    db: ConsoleStore
    ctx: ConnectorContext

    def publish(self, frame: Json) -> None:
        """Send a frame to every open console socket."""
        self.ctx.bus.publish(CONSOLE_TOPIC, frame)

    def publish_customer(self, channel: str, external_id: str, event: Json) -> None:
        """Publish on a conversation's own topic (what the customer's channel sees)."""
        self.ctx.bus.publish(conversation_topic(channel, external_id), event)


STATE = web.AppKey("console_state", ConsoleState)
AGENT = web.RequestKey("console_agent", dict[str, Any])
CSRF = web.RequestKey("console_csrf", str)
SESSION = web.RequestKey("console_session", str)

_ERRORS: dict[int, type[web.HTTPException]] = {
    400: web.HTTPBadRequest,
    401: web.HTTPUnauthorized,
    403: web.HTTPForbidden,
    404: web.HTTPNotFound,
    409: web.HTTPConflict,
    429: web.HTTPTooManyRequests,
}


def api_error(status: int, error: str, reason: str, **extra: Any) -> web.HTTPException:
    """An HTTP error whose body is ``{"error", "reason", ...}`` JSON; raise it."""
    body = json.dumps({"error": error, "reason": reason, **extra})
    return _ERRORS[status](text=body, content_type="application/json")


async def json_body(request: web.Request) -> Json:
    """The request's JSON object body, or a 400."""
    try:
        body = await request.json()
    except ValueError as exc:
        raise api_error(400, "invalid_body", "the body is not valid JSON") from exc
    if not isinstance(body, dict):
        raise api_error(400, "invalid_body", "the body must be a JSON object")
    return body


def text_field(body: Json, name: str, max_chars: int = 4000) -> str:
    """A required non-blank string field of at most ``max_chars``, or a 400."""
    value = body.get(name)
    if not isinstance(value, str) or not value.strip():
        raise api_error(400, "invalid_body", f"{name!r} must be a non-empty string")
    if len(value) > max_chars:
        raise api_error(400, "invalid_body", f"{name!r} is longer than {max_chars} characters")
    return value


def agent_of(request: web.Request) -> Json:
    """The logged-in agent of the request."""
    return request[AGENT]


def require_admin(request: web.Request) -> Json:
    """The logged-in agent if an admin, else a 403."""
    agent = request[AGENT]
    if agent["role"] != "admin":
        raise api_error(403, "forbidden", "only admins may do this")
    return agent
