"""Remote actions against a real rasa-sdk action server (see conftest.py)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from bot.actions import ActionDeps, ActionRegistry
from bot.dialogue.actions import ActionContext, ActionResult
from bot.dialogue.events import SlotSet
from bot.errors import ActionError

# The first test may build .venv-rasa-sdk (about 15 s, more on a cold cache).
pytestmark = pytest.mark.timeout(900)

DOMAIN: dict[str, Any] = {
    "slots": {"order_id": {"type": "text"}, "order_status": {"type": "text"}},
    "responses": {"utter_order_help": [{"text": "Order {order_id}: how can I help?"}]},
    "actions": ["action_look_up_order", "action_utter_response"],
    "intents": ["check_order"],
}

CONTEXT = ActionContext(
    sender_id="conv-42",
    slots={"order_id": "A-17", "order_status": None},
    latest_message={
        "text": "where is my order A-17?",
        "intent": {"name": "check_order", "confidence": 0.97},
        "entities": [{"entity": "order_id", "value": "A-17"}],
    },
    events=(
        {"event": "action", "name": "action_listen", "timestamp": 1.0},
        {"event": "user", "text": "where is my order A-17?", "timestamp": 2.0},
        {"event": "action", "name": "utter_checking", "timestamp": 3.0},
    ),
)


@pytest.fixture
async def registry(rasa_sdk_server: str) -> AsyncIterator[ActionRegistry]:
    async with ActionRegistry(
        endpoint=f"{rasa_sdk_server}/webhook", domain=DOMAIN, timeout=5.0
    ) as reg:
        yield reg


async def test_slot_events_and_responses_are_applied(registry: ActionRegistry) -> None:
    assert registry.has("action_look_up_order")

    result = await registry.run("action_look_up_order", CONTEXT)

    assert result.events == (
        SlotSet("order_status", "shipped"),
        SlotSet("last_action_seen", "utter_checking"),
        SlotSet("domain_slots", ["order_id", "order_status"]),
    )
    # As in Rasa's RemoteAction: dispatcher messages first, then returned events.
    assert result.responses == (
        {
            "text": "Order A-17 for conv-42 (check_order) has shipped.",
            "buttons": [
                {"title": "Track it", "payload": "/track"},
                {"title": "Thanks", "payload": "/thanks"},
            ],
        },
        {"text": "Anything else?", "buttons": [{"title": "No", "payload": "/deny"}]},
    )


async def test_domain_response_name_is_passed_on(registry: ActionRegistry) -> None:
    result = await registry.run("action_utter_response", CONTEXT)

    assert result.events == ()
    assert result.responses == (
        {"response": "utter_order_help", "order_id": "A-17"},
        {"image": "https://example.invalid/label.png"},
    )


async def test_unknown_action_carries_the_servers_reason(registry: ActionRegistry) -> None:
    with pytest.raises(ActionError, match="HTTP 404") as info:
        await registry.run("action_does_not_exist", CONTEXT)
    assert "No registered action found for name 'action_does_not_exist'" in str(info.value)


async def test_raising_action_is_an_action_error(registry: ActionRegistry) -> None:
    with pytest.raises(ActionError, match=r"HTTP 500.*warehouse database is on fire"):
        await registry.run("action_explode", CONTEXT)


async def test_slow_action_times_out(rasa_sdk_server: str) -> None:
    async with ActionRegistry(endpoint=f"{rasa_sdk_server}/webhook", timeout=0.5) as registry:
        with pytest.raises(ActionError, match=r"'action_slow' timed out after 0\.5 s"):
            await registry.run("action_slow", CONTEXT)


async def test_local_action_wins_over_the_server(rasa_sdk_server: str) -> None:
    async def local(ctx: ActionContext, deps: ActionDeps) -> ActionResult:
        return ActionResult(responses=({"text": "local"},))

    async with ActionRegistry(endpoint=f"{rasa_sdk_server}/webhook") as registry:
        registry.register("action_look_up_order", local)
        result = await registry.run("action_look_up_order", CONTEXT)
    assert result.responses == ({"text": "local"},)


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


async def test_non_json_error_body_is_quoted() -> None:
    async def gateway_error(request: web.Request) -> web.Response:
        return web.Response(status=502, text="Bad Gateway from the proxy")

    app = web.Application()
    app.router.add_post("/webhook", gateway_error)
    async with TestServer(app, host="127.0.0.1") as server:
        url = str(server.make_url("/webhook"))
        async with ActionRegistry(endpoint=url) as registry:
            with pytest.raises(ActionError, match=r"HTTP 502.*Bad Gateway from the proxy"):
                await registry.run("action_any", CONTEXT)


async def test_unserialisable_slot_is_an_action_error() -> None:
    async with ActionRegistry(endpoint="http://127.0.0.1:9/webhook") as registry:
        bad = ActionContext(sender_id="c", slots={"when": object()})
        with pytest.raises(ActionError, match="not JSON"):
            await registry.run("action_any", bad)
