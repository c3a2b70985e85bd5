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

from bot import wirejson
from bot.bus import conversation_topic

if TYPE_CHECKING:
    from bot.channels import ConnectorContext
    from bot.storage.console_store import ConsoleStore
    from connectors.console.config import ConsoleConfig

#: The bus topic of console-only events (notes, presence, claims...).
CONSOLE_TOPIC = "console"
#: The bus topic that tells every replica that console sessions ended (logout, disable).
SESSIONS_TOPIC = "console-sessions"
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

    def sessions_ended(self) -> None:
        """Make every replica close the sockets of sessions that ended just now."""
        self.ctx.bus.publish(SESSIONS_TOPIC, {"type": "sessions_ended"})

    def publish_customer(self, channel: str, external_id: str, event: Json) -> None:
        """Publish on a conversation's own topic (what the customer's channel sees)."""
        self.ctx.bus.publish(conversation_topic(channel, external_id), event)


STATE = web.AppKey("console_state", ConsoleState)
AGENT = web.RequestKey("console_agent", dict[str, Any])
CSRF = web.RequestKey("console_csrf", str)
SESSION = web.RequestKey("console_session", str)


class _TooLarge(web.HTTPClientError):
    """413 with our own JSON body (aiohttp's own class writes its text)."""

    status_code = 413


_ERRORS: dict[int, type[web.HTTPException]] = {
    400: web.HTTPBadRequest,
    401: web.HTTPUnauthorized,
    403: web.HTTPForbidden,
    404: web.HTTPNotFound,
    409: web.HTTPConflict,
    413: _TooLarge,
    429: web.HTTPTooManyRequests,
}


def api_error(status: int, error: str, reason: str, **extra: Any) -> web.HTTPException:
    """An HTTP error whose body is ``{"error", "reason", ...}`` JSON; raise it."""
    body = json.dumps({"error": error, "reason": reason, **extra})
    return _ERRORS[status](text=body, content_type="application/json")


async def json_body(request: web.Request) -> Json:
    """The request's JSON object body, strictly decoded (:mod:`bot.wirejson`), or a 4xx."""
    try:
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge as exc:
        reason = f"the body is larger than {request.client_max_size} bytes"
        raise api_error(413, "too_large", reason) from exc
    try:
        body = wirejson.loads(raw)
    except wirejson.InvalidPayload as exc:
        raise api_error(400, "invalid_body", str(exc)) from exc
    if not isinstance(body, dict):
        raise api_error(400, "invalid_body", "the body must be a JSON object")
    return body


def parse_id(raw: str, what: str = "id") -> int:
    """A decimal id that fits the database's 64-bit key.

    Raises:
        web.HTTPException: 400 if ``raw`` is not ASCII digits, 404 past 2**63 - 1
            (no row can have that id).
    """
    if not (raw.isascii() and raw.isdigit()):
        raise api_error(400, "invalid_id", f"the {what} must be a decimal number")
    if len(raw) > 19 or int(raw) > wirejson.MAX_INT:
        raise api_error(404, "not_found", f"there is no {what} {raw[:40]}")
    return int(raw)


def path_id(request: web.Request) -> int:
    """The ``{id}`` of the request's path (see :func:`parse_id`)."""
    return parse_id(request.match_info["id"])


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
