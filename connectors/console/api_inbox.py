"""Console API: the inbox views and what an agent does with a conversation.

Claim, reply, notes, typing, resolve and handback. Each action is audited
and announced to the other consoles on the console topic; a reply goes to
the customer's channel through ``ctx.push`` (the outbox), a note never does.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from aiohttp import web

from bot import metrics, wirejson
from bot.storage.inbox_queries import VIEWS
from connectors.console.shapes import messages_json, note_json, summary_json
from connectors.console.state import (
    STATE,
    ConsoleState,
    agent_of,
    api_error,
    json_body,
    path_id,
    text_field,
)

if TYPE_CHECKING:
    from connectors.console.state import Json

CSAT_BUTTONS = [{"title": str(n), "payload": f'/csat{{"score": {n}}}'} for n in range(1, 6)]


def _conversation_id(request: web.Request) -> int:
    return path_id(request)


async def _summary(state: ConsoleState, conversation_id: int) -> Json:
    row = await state.db.summary(conversation_id)
    if row is None:
        raise api_error(404, "not_found", f"there is no conversation {conversation_id}")
    return summary_json(row)


async def _changed(state: ConsoleState, conversation_id: int) -> Json:
    """Announce a conversation's new summary to every console; return it."""
    summary = await _summary(state, conversation_id)
    state.publish({"type": "conversation", "conversation": summary})
    return summary


async def list_conversations(request: web.Request) -> web.Response:
    """``GET /conversations?view=...&q=...``."""
    state, agent = request.app[STATE], agent_of(request)
    view = request.query.get("view", "needs_human")
    if view not in VIEWS:
        raise api_error(400, "invalid_view", f"view must be one of {', '.join(VIEWS)}")
    q = request.query.get("q", "").strip()[:200] or None
    if q is not None:
        try:
            wirejson.check_text(q, "'q'")
        except wirejson.InvalidPayload as exc:
            raise api_error(400, "invalid_query", str(exc)) from exc
    rows = await state.db.summaries(view, agent["id"], q)
    now = datetime.now(UTC)
    return web.json_response({"conversations": [summary_json(r, now) for r in rows]})


async def get_conversation(request: web.Request) -> web.Response:
    """``GET /conversations/{id}``: summary, transcript and notes."""
    state, cid = request.app[STATE], _conversation_id(request)
    summary = await _summary(state, cid)
    messages = await state.ctx.store.transcript(cid)
    turns = await state.ctx.store.turns(cid)
    notes = await state.db.notes(cid)
    return web.json_response(
        {
            "conversation": summary,
            "messages": messages_json(messages, turns),
            "notes": [note_json(n) for n in notes],
        }
    )


async def _claim(state: ConsoleState, cid: int, agent: Json) -> None:
    """Claim for ``agent`` unless it is theirs already; 409 names the winner."""
    await _summary(state, cid)
    won, owner = await state.db.claim(cid, agent["id"])
    if won:
        await state.db.audit(agent["id"], "claim", cid)
        await _changed(state, cid)
        return
    if owner is None:
        raise api_error(409, "not_open", "the conversation is not waiting for a person")
    if owner["id"] != agent["id"]:
        reason = f"{owner['name']} claimed it"
        raise api_error(409, "already_claimed", reason, assignee=owner)


async def claim(request: web.Request) -> web.Response:
    """``POST /conversations/{id}/claim``: exactly one of concurrent claims wins."""
    state, cid, agent = request.app[STATE], _conversation_id(request), agent_of(request)
    await _claim(state, cid, agent)
    return web.json_response({"conversation": await _summary(state, cid)})


async def assign(request: web.Request) -> web.Response:
    """``POST /conversations/{id}/assign {"agent_id"}``."""
    state, cid, agent = request.app[STATE], _conversation_id(request), agent_of(request)
    body = await json_body(request)
    target_id = body.get("agent_id")
    target = await state.db.agent(target_id) if type(target_id) is int else None
    if target is None or target["disabled"]:
        raise api_error(400, "invalid_body", "'agent_id' must name an enabled agent")
    await _summary(state, cid)
    if not await state.db.assign(cid, target["id"]):
        raise api_error(409, "not_open", "the conversation is not waiting for a person")
    await state.db.audit(agent["id"], "assign", cid, {"agent_id": target["id"]})
    return web.json_response(await _changed(state, cid))


async def reply(request: web.Request) -> web.Response:
    """``POST /conversations/{id}/reply {"text"}``: claim if free, then deliver."""
    state, cid, agent = request.app[STATE], _conversation_id(request), agent_of(request)
    text = text_field(await json_body(request), "text")
    await _claim(state, cid, agent)
    meta: Json = {"agent": {"id": agent["id"], "name": agent["name"]}}
    summary = await _summary(state, cid)
    if summary["followup_email"] and summary["channel"] != "email":
        # Waiting for an email follow-up: the email connector sends it there.
        meta.update(deliver_via="email", email_to=summary["followup_email"])
    outbound = await state.ctx.push(cid, {"text": text, "metadata": meta})
    handoff_at = await state.db.first_reply(cid)
    if handoff_at is not None:
        wait = (datetime.now(UTC) - handoff_at).total_seconds()
        metrics.CONSOLE_FIRST_REPLY.observe(wait)
    message_id = int(outbound.metadata["message_id"])
    await state.db.audit(agent["id"], "reply", cid, {"message_id": message_id})
    stored = await state.ctx.store.message(message_id)
    await _changed(state, cid)
    return web.json_response({"message": messages_json([stored], [])[0]})


async def add_note(request: web.Request) -> web.Response:
    """``POST /conversations/{id}/notes {"text"}``: for agents only."""
    state, cid, agent = request.app[STATE], _conversation_id(request), agent_of(request)
    text = text_field(await json_body(request), "text")
    await _summary(state, cid)
    note = note_json(await state.db.add_note(cid, agent["id"], text))
    await state.db.audit(agent["id"], "note", cid, {"note_id": note["id"]})
    state.publish({"type": "note", "conversation_id": cid, "note": note})
    return web.json_response({"note": note})


async def typing(request: web.Request) -> web.Response:
    """``POST /conversations/{id}/typing``: the customer sees "<name> is typing"."""
    state, cid, agent = request.app[STATE], _conversation_id(request), agent_of(request)
    summary = await _summary(state, cid)
    event: Json = {"type": "typing", "who": "agent", "name": agent["name"]}
    state.publish_customer(summary["channel"], summary["external_id"], event)
    return web.Response(status=204)


async def _finish(request: web.Request, action: str, csat: bool) -> web.Response:
    state, cid, agent = request.app[STATE], _conversation_id(request), agent_of(request)
    await _summary(state, cid)
    handoff_at = await state.db.resolve(cid, csat)
    if handoff_at is None:
        raise api_error(409, "not_open", "the conversation is not open")
    metrics.CONSOLE_RESOLUTION.observe((datetime.now(UTC) - handoff_at).total_seconds())
    if csat:
        question: dict[str, Any] = {
            "text": state.config.csat_question,
            "buttons": CSAT_BUTTONS,
            "metadata": {"csat_request": True},
        }
        await state.ctx.push(cid, question)
    await state.db.audit(agent["id"], action, cid, {"csat": csat} if action == "resolve" else {})
    return web.json_response(await _changed(state, cid))


async def resolve(request: web.Request) -> web.Response:
    """``POST /conversations/{id}/resolve {"csat": bool}``."""
    body = await json_body(request) if request.can_read_body else {}
    csat = body.get("csat", False)
    if not isinstance(csat, bool):
        raise api_error(400, "invalid_body", "'csat' must be true or false")
    return await _finish(request, "resolve", csat)


async def handback(request: web.Request) -> web.Response:
    """``POST /conversations/{id}/handback``: the bot answers again, state kept."""
    return await _finish(request, "handback", False)


def add_routes(app: web.Application) -> None:
    """Register the conversation routes on the API sub-app."""
    base = "/conversations/{id:\\d+}"
    app.router.add_get("/conversations", list_conversations)
    app.router.add_get(base, get_conversation)
    app.router.add_post(base + "/claim", claim)
    app.router.add_post(base + "/assign", assign)
    app.router.add_post(base + "/reply", reply)
    app.router.add_post(base + "/notes", add_note)
    app.router.add_post(base + "/typing", typing)
    app.router.add_post(base + "/resolve", resolve)
    app.router.add_post(base + "/handback", handback)
