"""Console API: presence, agent accounts, canned responses, stats and the audit log.

Listing agents and canned responses is open to every agent; changing them,
the stats and the audit log are for admins.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from aiohttp import web

from bot.errors import ConfigError
from connectors.console.passwords import hash_password_async
from connectors.console.shapes import agent_json, summary_json
from connectors.console.state import (
    STATE,
    agent_of,
    api_error,
    json_body,
    parse_id,
    path_id,
    require_admin,
    text_field,
)
from connectors.console.stats import compute_stats

if TYPE_CHECKING:
    from connectors.console.state import Json

ROLES = ("agent", "admin")
_PLACEHOLDER = re.compile(r"\{(\w+)\}")


async def set_presence(request: web.Request) -> web.Response:
    """``PUT /me/presence {"presence": "online"|"away"}``."""
    state, agent = request.app[STATE], agent_of(request)
    presence = (await json_body(request)).get("presence")
    if presence not in ("online", "away"):
        raise api_error(400, "invalid_body", "'presence' must be 'online' or 'away'")
    row = await state.db.update_agent(agent["id"], {"presence": presence})
    assert row is not None
    await state.db.audit(agent["id"], "presence", detail={"presence": presence})
    state.publish({"type": "presence", "agent": {k: row[k] for k in ("id", "name", "presence")}})
    return web.json_response(agent_json(row))


async def list_agents(request: web.Request) -> web.Response:
    """``GET /agents``: everyone may see who is there (admins see emails and roles)."""
    state, me = request.app[STATE], agent_of(request)
    rows = await state.db.agents()
    if me["role"] == "admin":
        return web.json_response({"agents": [agent_json(r) for r in rows]})
    public = [{k: r[k] for k in ("id", "name", "presence")} for r in rows if not r["disabled"]]
    return web.json_response({"agents": public})


async def create_agent(request: web.Request) -> web.Response:
    """``POST /agents {email, name, role, password}`` (admin)."""
    state, admin = request.app[STATE], require_admin(request)
    body = await json_body(request)
    email, name = text_field(body, "email", 255), text_field(body, "name", 255)
    password = text_field(body, "password", 1024)
    role = body.get("role", "agent")
    if role not in ROLES or "@" not in email:
        raise api_error(400, "invalid_body", "'role' must be agent or admin, 'email' an address")
    try:
        hashed = await hash_password_async(password)
    except ConfigError as exc:
        raise api_error(400, "invalid_body", str(exc)) from exc
    if await state.db.login_record(email) is not None:
        raise api_error(409, "exists", "an agent with that email exists")
    row = await state.db.create_agent(email, name.strip(), role, hashed)
    await state.db.audit(admin["id"], "agent_create", detail={"agent_id": row["id"]})
    return web.json_response(agent_json(row), status=201)


def _agent_changes(body: Json) -> dict[str, Any]:
    changes: dict[str, Any] = {}
    if "role" in body:
        if body["role"] not in ROLES:
            raise api_error(400, "invalid_body", "'role' must be agent or admin")
        changes["role"] = body["role"]
    if "disabled" in body:
        if not isinstance(body["disabled"], bool):
            raise api_error(400, "invalid_body", "'disabled' must be true or false")
        changes["disabled"] = body["disabled"]
    if "name" in body:
        changes["name"] = text_field(body, "name", 255).strip()
    return changes


async def update_agent(request: web.Request) -> web.Response:
    """``PATCH /agents/{id} {role?, disabled?, name?}`` (admin)."""
    state, admin = request.app[STATE], require_admin(request)
    changes = _agent_changes(await json_body(request))
    if changes.get("disabled"):
        changes["presence"] = "away"
    row = await state.db.update_agent(path_id(request), changes)
    if row is None:
        raise api_error(404, "not_found", "there is no such agent")
    if changes.get("disabled"):
        state.sessions_ended()  # its sockets close, here and on every replica
        public = {k: row[k] for k in ("id", "name", "presence")}
        state.publish({"type": "presence", "agent": public})
    await state.db.audit(admin["id"], "agent_update", detail={"agent_id": row["id"], **changes})
    return web.json_response(agent_json(row))


async def list_canned(request: web.Request) -> web.Response:
    """``GET /canned``."""
    return web.json_response({"canned": await request.app[STATE].db.canned()})


async def create_canned(request: web.Request) -> web.Response:
    """``POST /canned {shortcut, title, text}`` (admin)."""
    state, admin = request.app[STATE], require_admin(request)
    body = await json_body(request)
    shortcut = text_field(body, "shortcut", 64).strip()
    row = await state.db.add_canned(
        shortcut, text_field(body, "title", 255), text_field(body, "text")
    )
    if row is None:
        raise api_error(409, "exists", f"the shortcut {shortcut!r} is taken")
    await state.db.audit(admin["id"], "canned_create", detail={"canned_id": row["id"]})
    return web.json_response(row, status=201)


async def delete_canned(request: web.Request) -> web.Response:
    """``DELETE /canned/{id}`` (admin)."""
    state, admin = request.app[STATE], require_admin(request)
    canned_id = path_id(request)
    if not await state.db.delete_canned(canned_id):
        raise api_error(404, "not_found", "there is no such canned response")
    await state.db.audit(admin["id"], "canned_delete", detail={"canned_id": canned_id})
    return web.Response(status=204)


def fill(template: str, values: dict[str, Any]) -> str:
    """Replace ``{name}`` with ``values[name]``; unknown or empty ones stay as written."""

    def one(match: re.Match[str]) -> str:
        value = values.get(match.group(1))
        return match.group(0) if value is None else str(value)

    return _PLACEHOLDER.sub(one, template)


async def render_canned(request: web.Request) -> web.Response:
    """``GET /canned/{id}/render?conversation={cid}``: slots filled in."""
    state = request.app[STATE]
    found = await state.db.canned(path_id(request))
    raw = request.query.get("conversation", "")
    if not found:
        raise api_error(404, "not_found", "there is no such canned response")
    values: dict[str, Any] = {}
    if raw:
        cid = parse_id(raw, "conversation")
        row = await state.db.summary(cid)
        if row is None:
            raise api_error(404, "not_found", f"there is no conversation {cid}")
        saved = await state.ctx.store.load_state(cid) or {}
        values.update(saved.get("slots") or {})
        customer = summary_json(row)["customer"]
        values["customer_name"] = customer["name"] or customer["id"]
    return web.json_response({"text": fill(found[0]["text"], values)})


async def stats(request: web.Request) -> web.Response:
    """``GET /stats`` (admin)."""
    require_admin(request)
    return web.json_response(compute_stats(await request.app[STATE].db.stats_rows()))


async def audit(request: web.Request) -> web.Response:
    """``GET /audit?limit=100`` (admin), newest first."""
    require_admin(request)
    raw = request.query.get("limit", "100")
    valid = raw.isascii() and raw.isdigit() and 0 < len(raw) <= 4 and int(raw) > 0
    limit = min(int(raw), 1000) if valid else 100
    rows = await request.app[STATE].db.audit_entries(limit)
    entries = [{**r, "at": r["at"].isoformat()} for r in rows]
    return web.json_response({"entries": entries})


def add_routes(app: web.Application) -> None:
    """Register the routes on the API sub-app."""
    app.router.add_put("/me/presence", set_presence)
    app.router.add_get("/agents", list_agents)
    app.router.add_post("/agents", create_agent)
    app.router.add_patch("/agents/{id:\\d+}", update_agent)
    app.router.add_get("/canned", list_canned)
    app.router.add_post("/canned", create_canned)
    app.router.add_delete("/canned/{id:\\d+}", delete_canned)
    app.router.add_get("/canned/{id:\\d+}/render", render_canned)
    app.router.add_get("/stats", stats)
    app.router.add_get("/audit", audit)
