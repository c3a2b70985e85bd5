"""The webhook client against a small aiohttp server that speaks rasa-sdk's protocol.

These are the answers a real rasa-sdk server cannot be made to give on
demand: a 449 that persists, a 449 and then a hang, bodies that are not
answers, a proxy's error page, a dead endpoint.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from bot.actions import ActionRegistry
from bot.actions.webhook import domain_digest
from bot.dialogue.actions import ActionContext
from bot.dialogue.events import SlotSet
from bot.errors import ActionError

CONTEXT = ActionContext(sender_id="conv-1", slots={"order_id": "A-17"})
DOMAIN: dict[str, Any] = {"slots": {"order_id": {"type": "text"}}}
OK = (200, json.dumps({"events": [{"event": "slot", "name": "seen", "value": True}]}))
DOMAIN_MISSING = (449, json.dumps({"error": "No domain found", "action_name": "action_any"}))


class ProtocolServer:
    """Answers ``POST /webhook`` with canned replies, in order, and records the bodies."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.replies: list[tuple[int, str] | None] = []
        self.release = asyncio.Event()
        self.url = ""

    async def webhook(self, request: web.Request) -> web.Response:
        self.bodies.append(await request.json())
        reply = self.replies.pop(0) if self.replies else OK
        if reply is None:  # hang until the test ends
            await self.release.wait()
            reply = OK
        status, text = reply
        return web.Response(status=status, text=text, content_type="application/json")


@pytest.fixture
async def server() -> AsyncIterator[ProtocolServer]:
    fake = ProtocolServer()
    app = web.Application()
    app.router.add_post("/webhook", fake.webhook)
    async with TestServer(app, host="127.0.0.1") as test_server:
        fake.url = str(test_server.make_url("/webhook"))
        yield fake
        fake.release.set()


async def test_449_resends_with_the_domain_and_remembers(server: ProtocolServer) -> None:
    server.replies = [DOMAIN_MISSING, OK, OK]
    async with ActionRegistry(endpoint=server.url, domain=DOMAIN, send_domain=False) as registry:
        first = await registry.run("action_any", CONTEXT)
        second = await registry.run("action_any", CONTEXT)

    assert first.events == second.events == (SlotSet("seen", True),)
    assert ["domain" in body for body in server.bodies] == [False, True, True]
    digest = server.bodies[0]["domain_digest"]
    assert digest == domain_digest(server.bodies[1]["domain"])
    assert all(body["domain_digest"] == digest for body in server.bodies)
    assert server.bodies[1]["domain"]["slots"] == DOMAIN["slots"]


async def test_449_after_the_domain_was_sent_is_an_error(server: ProtocolServer) -> None:
    server.replies = [DOMAIN_MISSING, DOMAIN_MISSING]
    async with ActionRegistry(endpoint=server.url, domain=DOMAIN, send_domain=False) as registry:
        with pytest.raises(ActionError, match=r"asked again for the domain .*\(HTTP 449\)"):
            await registry.run("action_any", CONTEXT)
    assert len(server.bodies) == 2


async def test_default_sends_the_domain_at_once_and_never_resends(server: ProtocolServer) -> None:
    server.replies = [DOMAIN_MISSING]
    async with ActionRegistry(endpoint=server.url, domain=DOMAIN) as registry:
        assert registry.sends_domain
        with pytest.raises(ActionError, match=r"HTTP 449"):
            await registry.run("action_any", CONTEXT)
    assert len(server.bodies) == 1
    assert server.bodies[0]["domain"]["slots"] == DOMAIN["slots"]


async def test_new_domain_gets_a_new_digest(server: ProtocolServer) -> None:
    async with ActionRegistry(endpoint=server.url, domain=DOMAIN) as registry:
        await registry.run("action_any", CONTEXT)
        registry.set_domain({"slots": {"order_id": {}, "email": {}}})
        await registry.run("action_any", CONTEXT)
    first, second = server.bodies
    assert first["domain_digest"] != second["domain_digest"]
    assert sorted(second["domain"]["slots"]) == ["email", "order_id"]


async def test_timeout_covers_the_resend_after_449(server: ProtocolServer) -> None:
    server.replies = [DOMAIN_MISSING, None]
    async with ActionRegistry(
        endpoint=server.url, domain=DOMAIN, timeout=0.3, send_domain=False
    ) as registry:
        with pytest.raises(ActionError, match=r"'action_any' timed out after 0\.3 s"):
            await registry.run("action_any", CONTEXT)
    assert len(server.bodies) == 2


@pytest.mark.parametrize(
    ("reply", "reason"),
    [
        ((200, "<html>not json</html>"), "answered 'action_any' with invalid JSON"),
        ((200, "[1, 2]"), "answered 'action_any' with list"),
        ((200, '{"events": [{"event": "followup"}]}'), "'followup' event without a name"),
        ((502, "Bad Gateway from the proxy"), r"HTTP 502.*Bad Gateway from the proxy"),
        ((500, ""), r"failed to run action 'action_any' \(HTTP 500\): HTTP 500"),
        ((403, '{"error": "forbidden"}'), r"refused action 'action_any' \(HTTP 403\): forbidden"),
    ],
)
async def test_bad_answers_are_action_errors(
    server: ProtocolServer, reply: tuple[int, str], reason: str
) -> None:
    server.replies = [reply]
    async with ActionRegistry(endpoint=server.url) as registry:
        with pytest.raises(ActionError, match=reason):
            await registry.run("action_any", CONTEXT)


async def test_null_answer_is_an_empty_result(server: ProtocolServer) -> None:
    server.replies = [(200, "null")]
    async with ActionRegistry(endpoint=server.url) as registry:
        result = await registry.run("action_any", CONTEXT)
    assert result.events == ()
    assert result.responses == ()


async def test_dead_endpoint_is_unreachable(closed_port: int) -> None:
    url = f"http://127.0.0.1:{closed_port}/webhook"
    async with ActionRegistry(endpoint=url) as registry:
        assert registry.has("action_anything")
        with pytest.raises(ActionError, match=re.escape(f"action server at {url} is unreachable")):
            await registry.run("action_anything", CONTEXT)


async def test_remote_run_before_start_is_an_error() -> None:
    registry = ActionRegistry(endpoint="http://127.0.0.1:9/webhook")
    with pytest.raises(ActionError, match="not started"):
        await registry.run("action_anything", CONTEXT)


async def test_unserialisable_slot_is_an_action_error() -> None:
    async with ActionRegistry(endpoint="http://127.0.0.1:9/webhook") as registry:
        bad = ActionContext(sender_id="c", slots={"when": object()})
        with pytest.raises(ActionError, match="not JSON"):
            await registry.run("action_any", bad)
