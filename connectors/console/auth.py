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

if TYPE_CHECKING:
    from connectors.console.state import Json

WRONG_CREDENTIALS = "wrong email or password"


def token_hash(token: str) -> str:
    """The stored form of a session token."""
    return hashlib.sha256(token.encode()).hexdigest()


def is_https(request: web.Request) -> bool:
    """Whether the browser talks HTTPS to us (directly or through a proxy)."""
    forwarded = request.headers.get("X-Forwarded-Proto", "").split(",")[0].strip().lower()
    return request.secure or forwarded == "https"


def client_ip(request: web.Request, trust_forwarded_for: bool) -> str:
    """The client's IP address (from ``X-Forwarded-For`` only when trusted)."""
    if trust_forwarded_for and "X-Forwarded-For" in request.headers:
        return request.headers["X-Forwarded-For"].split(",")[0].strip()
    return request.remote or "unknown"


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
    if record is None or usable is None or not valid:  # one answer for every mistake
        ip = client_ip(request, state.config.trust_forwarded_for)
        await state.db.add_login_failure(email, ip)
        await state.db.audit(None, "login_failed", detail={"email": email[:255], "ip": ip})
        raise api_error(401, "unauthenticated", WRONG_CREDENTIALS)
    assert record is not None
    await state.db.clear_login_failures(email)
    planted = request.cookies.get(COOKIE)
    if planted:
        await state.db.delete_session(token_hash(planted))
    token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    ttl = timedelta(hours=state.config.session_hours)
    await state.db.create_session(token_hash(token), record["id"], csrf, datetime.now(UTC) + ttl)
    await state.db.audit(record["id"], "login")
    response = web.json_response({"agent": agent_json(record), "csrf": csrf})
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
    """``POST /logout``: end the session and clear the cookie."""
    state = request.app[STATE]
    await state.db.delete_session(request[SESSION])
    await state.db.audit(request[AGENT]["id"], "logout")
    response = web.Response(status=204)
    response.del_cookie(COOKIE, path=COOKIE_PATH)
    return response


async def me(request: web.Request) -> web.Response:
    """``GET /me``: the logged-in agent and the session's CSRF token."""
    return web.json_response({**agent_json(request[AGENT]), "csrf": request[CSRF]})
