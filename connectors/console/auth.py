"""Console logins: sessions in the database, the cookie, login and logout.

A session token is 32 random bytes; only its SHA-256 is stored. Every login
issues a new token (a token planted before login is never promoted) and a
new CSRF token. The cookie is HttpOnly, SameSite=Lax, limited to
``/console``, and Secure when the request came over HTTPS.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from aiohttp import web

from connectors.console import devices
from connectors.console.net import is_https
from connectors.console.passwords import verify_password_async
from connectors.console.shapes import agent_json
from connectors.console.state import (
    AGENT,
    COOKIE,
    COOKIE_PATH,
    CSRF,
    SESSION,
    STATE,
    ConsoleState,
    api_error,
    json_body,
)
from connectors.net import client_ip

if TYPE_CHECKING:
    from connectors.console.state import Json

WRONG_CREDENTIALS = "wrong email or password"


def token_hash(token: str) -> str:
    """The stored form of a session token."""
    return hashlib.sha256(token.encode()).hexdigest()


async def session_of(state: ConsoleState, request: web.Request) -> tuple[Json, str, str] | None:
    """Return the (agent, CSRF token, token hash) of the request's cookie, if live."""
    token = request.cookies.get(COOKIE)
    if not token:
        return None
    hashed = token_hash(token)
    found = await state.db.session_agent(hashed, datetime.now(UTC))
    return None if found is None else (found[0], found[1], hashed)


async def login(request: web.Request) -> web.Response:
    """``POST /login {email, password}``: a new session, or one 401 for any mistake."""
    state = request.app[STATE]
    body = await json_body(request)
    email, password = body.get("email"), body.get("password")
    if not isinstance(email, str) or not isinstance(password, str):
        raise api_error(400, "invalid_body", "'email' and 'password' must be strings")
    record = await state.db.login_record(email)
    usable = record if record is not None and not record["disabled"] else None
    hashed = None if usable is None else usable["password_hash"]
    valid = await verify_password_async(hashed, password)
    client = devices.client_of(state, request, email)
    if record is None or usable is None or not valid:  # one answer for every mistake
        await state.db.add_login_failure(email, client)
        ip = client_ip(request, state.config.trust_forwarded_for)
        detail = {"email": email[:255], "ip": ip, "client": client}
        await state.db.audit(None, "login_failed", detail=detail)
        raise api_error(401, "unauthenticated", WRONG_CREDENTIALS)
    assert record is not None
    await state.db.clear_login_failures(email, client)
    planted = request.cookies.get(COOKIE)
    if planted:
        await state.db.delete_session(token_hash(planted))
    token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    ttl = timedelta(hours=state.config.session_hours)
    await state.db.create_session(token_hash(token), record["id"], csrf, datetime.now(UTC) + ttl)
    await state.db.audit(record["id"], "login")
    response = web.json_response({"agent": agent_json(record), "csrf": csrf})
    devices.remember(state, request, response, email)
    response.set_cookie(
        COOKIE,
        token,
        path=COOKIE_PATH,
        httponly=True,
        samesite="Lax",
        secure=is_https(request),
        max_age=int(ttl.total_seconds()),
    )
    return response


async def logout(request: web.Request) -> web.Response:
    """``POST /logout``: end the session, close its sockets, go away, clear the cookie."""
    state, agent = request.app[STATE], request[AGENT]
    await state.db.delete_session(request[SESSION])
    state.sessions_ended()
    row = await state.db.update_agent(agent["id"], {"presence": "away"})
    if row is not None and agent["presence"] != "away":
        public = {k: row[k] for k in ("id", "name", "presence")}
        state.publish({"type": "presence", "agent": public})
    await state.db.audit(agent["id"], "logout")
    response = web.Response(status=204)
    response.del_cookie(COOKIE, path=COOKIE_PATH)
    return response


async def me(request: web.Request) -> web.Response:
    """``GET /me``: the logged-in agent and the session's CSRF token."""
    return web.json_response({**agent_json(request[AGENT]), "csrf": request[CSRF]})
