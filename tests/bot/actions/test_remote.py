"""Remote actions against real rasa-sdk action servers, 3.6 and 3.21 (see conftest.py)."""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from bot.actions import ActionDeps, ActionRegistry
from bot.dialogue.actions import ActionContext, ActionResult
from bot.dialogue.events import AllSlotsReset, FollowupAction, Restarted, SlotSet
from bot.errors import ActionError
from tests.bot.actions.servers import SERVER_TEST_TIMEOUT_S, ActionServer

# The first test of each server may build its venv.
pytestmark = pytest.mark.timeout(SERVER_TEST_TIMEOUT_S)

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
        {
            "event": "user",
            "text": "where is my order A-17?",
            "intent": "check_order",
            "confidence": 0.97,
            "entities": [{"entity": "order_id", "value": "A-17"}],
            "timestamp": 2.0,
        },
        {"event": "bot", "text": "Let me check.", "buttons": [], "response": "utter_checking"},
        {"event": "flow_started", "flow_id": "track"},
        {"event": "action", "name": "utter_checking", "timestamp": 3.0},
    ),
)


@pytest.fixture
async def registry(rasa_sdk_server: ActionServer) -> AsyncIterator[ActionRegistry]:
    async with ActionRegistry(endpoint=rasa_sdk_server.webhook, domain=DOMAIN, timeout=5.0) as reg:
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


async def test_tracker_reads_through_the_sdk_api(registry: ActionRegistry) -> None:
    result = await registry.run("action_read_tracker", CONTEXT)

    assert result.events == (
        SlotSet(
            "seen",
            {
                "order_id": "A-17",
                "text": "where is my order A-17?",
                "intent": "check_order",
                "entities": ["A-17"],
                "user_events": 1,
                "applied_events": 5,
                "last_bot_text": "Let me check.",
                "last_user_intent": "check_order",
                "input_channel": None,
                "active_loop": None,
                "state_sender": "conv-42",
            },
        ),
    )


async def test_domain_response_name_is_passed_on(registry: ActionRegistry) -> None:
    result = await registry.run("action_utter_response", CONTEXT)

    assert result.events == ()
    assert result.responses == (
        {"response": "utter_order_help", "order_id": "A-17"},
        {"image": "https://example.invalid/label.png"},
    )


async def test_followup_restart_and_slot_resets_become_events(registry: ActionRegistry) -> None:
    followup = await registry.run("action_followup", CONTEXT)
    restart = await registry.run("action_restart_conversation", CONTEXT)
    reset = await registry.run("action_reset_slots", CONTEXT)

    assert followup.events == (FollowupAction("action_look_up_order"),)
    assert followup.responses == ({"text": "Let me look that up."},)
    assert restart.events == (Restarted(),)
    assert reset.events == (
        AllSlotsReset(),
        SlotSet("order_status", "fresh"),
        SlotSet("greeted", None),
    )


async def test_reminder_is_ignored_with_a_warning(
    registry: ActionRegistry, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="bot.actions.webhook"):
        result = await registry.run("action_remind", CONTEXT)

    assert result.events == ()
    assert result.responses == ({"text": "I will remind you tomorrow."},)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == [
        "Ignoring an event of action action_remind: "
        "reminders (ReminderScheduled) are not supported."
    ]


async def test_unknown_action_is_a_404_with_the_servers_reason(registry: ActionRegistry) -> None:
    with pytest.raises(
        ActionError, match=r"has no action 'action_does_not_exist' \(HTTP 404\)"
    ) as info:
        await registry.run("action_does_not_exist", CONTEXT)
    assert "No registered action found for name 'action_does_not_exist'" in str(info.value)


async def test_rejected_action_is_a_400_with_the_actions_reason(registry: ActionRegistry) -> None:
    with pytest.raises(
        ActionError, match=r"rejected action 'action_reject' \(HTTP 400\): .*not one of ours"
    ):
        await registry.run("action_reject", CONTEXT)


async def test_raising_action_is_a_500(registry: ActionRegistry) -> None:
    with pytest.raises(
        ActionError,
        match=r"failed to run action 'action_explode' \(HTTP 500\).*warehouse database is on fire",
    ):
        await registry.run("action_explode", CONTEXT)


async def test_slow_action_times_out(rasa_sdk_server: ActionServer) -> None:
    async with ActionRegistry(endpoint=rasa_sdk_server.webhook, timeout=0.5) as registry:
        with pytest.raises(ActionError, match=r"'action_slow' timed out after 0\.5 s"):
            await registry.run("action_slow", CONTEXT)


async def test_local_action_wins_over_the_server(rasa_sdk_server: ActionServer) -> None:
    async def local(ctx: ActionContext, deps: ActionDeps) -> ActionResult:
        return ActionResult(responses=({"text": "local"},))

    async with ActionRegistry(endpoint=rasa_sdk_server.webhook) as registry:
        registry.register("action_look_up_order", local)
        result = await registry.run("action_look_up_order", CONTEXT)
    assert result.responses == ({"text": "local"},)


def unique_domain() -> dict[str, Any]:
    """A domain no earlier test sent, so a 3.21 server does not hold its digest."""
    return {**DOMAIN, "slots": {**DOMAIN["slots"], f"probe_{uuid.uuid4().hex[:8]}": {}}}


async def test_server_asks_for_the_domain_with_449(rasa_sdk_server: ActionServer) -> None:
    if not rasa_sdk_server.keeps_domain:
        pytest.skip("rasa-sdk before 3.8 never answers 449")
    domain = unique_domain()
    async with ActionRegistry(
        endpoint=rasa_sdk_server.webhook, domain=domain, send_domain=False
    ) as registry:
        assert not registry.sends_domain
        result = await registry.run("action_look_up_order", CONTEXT)
        assert registry.sends_domain
    assert SlotSet("domain_slots", sorted(domain["slots"])) in result.events


async def test_server_keeps_the_domain_it_was_sent(rasa_sdk_server: ActionServer) -> None:
    if not rasa_sdk_server.keeps_domain:
        pytest.skip("rasa-sdk before 3.8 keeps no domain")
    domain = unique_domain()
    async with ActionRegistry(endpoint=rasa_sdk_server.webhook, domain=domain) as sender:
        await sender.run("action_read_tracker", CONTEXT)
    async with ActionRegistry(
        endpoint=rasa_sdk_server.webhook, domain=domain, send_domain=False
    ) as registry:
        result = await registry.run("action_look_up_order", CONTEXT)
        # The digest was enough: no 449, so the flag stays off.
        assert not registry.sends_domain
    assert SlotSet("domain_slots", sorted(domain["slots"])) in result.events


async def test_old_server_without_the_domain_gives_the_action_none(
    rasa_sdk_server: ActionServer,
) -> None:
    # Why send_domain defaults to True: rasa-sdk 3.6 never asks for the domain.
    if rasa_sdk_server.keeps_domain:
        pytest.skip("rasa-sdk 3.8 and later answer 449 instead")
    async with ActionRegistry(
        endpoint=rasa_sdk_server.webhook, domain=unique_domain(), send_domain=False
    ) as registry:
        result = await registry.run("action_look_up_order", CONTEXT)
        assert not registry.sends_domain
    assert SlotSet("domain_slots", []) in result.events
