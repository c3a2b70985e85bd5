"""Flows that call actions on real rasa-sdk action servers, 3.6 and 3.21."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.actions import ActionRegistry
from bot.dialogue.engine import Engine, EngineSettings, TurnResult
from bot.dialogue.events import (
    ActionExecuted,
    AllSlotsReset,
    FollowupAction,
    Restarted,
)
from bot.dialogue.nlu import Intent, ParseResult
from bot.dialogue.project import load_project
from bot.dialogue.state import DialogueState
from tests.bot.actions.servers import SERVER_TEST_TIMEOUT_S, ActionServer

pytestmark = pytest.mark.timeout(SERVER_TEST_TIMEOUT_S)

DOMAIN = """
actions: [action_look_up_order, action_explode, action_reject, action_does_not_exist,
          action_utter_response, action_followup, action_loop, action_remind,
          action_restart_conversation, action_reset_slots, action_read_tracker]
slots:
  order_id: {type: text}
  order_status: {type: text}
  greeted: {type: bool, initial_value: false}
  last_action_seen: {type: any}
  domain_slots: {type: any}
  seen: {type: any}
responses:
  utter_ask_order_id:
    - text: "Which order?"
  utter_status:
    - text: "Status: {order_status}."
  utter_order_help:
    - text: "Order {order_id}: how can I help?"
      buttons:
        - {title: "Track {order_id}", payload: "/track"}
flows:
  track:
    description: Look an order up on the action server.
    nlu_trigger:
      - intent: track
    persisted_slots: [order_status]
    steps:
      - collect: order_id
      - action: action_look_up_order
      - action: utter_status
  run_one:
    description: Utter a domain response from the action server.
    nlu_trigger:
      - intent: run_one
    steps:
      - action: action_utter_response
      - action: utter_status
"""

ONE_ACTION_FLOW = """
  {name}:
    description: Run {action}, then say the status.
    nlu_trigger:
      - intent: {name}
    steps:
      - action: {action}
      - action: utter_status
"""

SINGLE = {
    "do_explode": "action_explode",
    "do_reject": "action_reject",
    "do_missing": "action_does_not_exist",
    "do_followup": "action_followup",
    "do_loop": "action_loop",
    "do_remind": "action_remind",
    "do_restart": "action_restart_conversation",
    "do_reset": "action_reset_slots",
    "do_read": "action_read_tracker",
}


#: What pattern_completed says when a user flow ends.
COMPLETED = "Is there anything else I can help you with?"


def parse(text: str, intent: str | None = None) -> ParseResult:
    found = Intent(intent, 1.0) if intent else None
    return ParseResult(text, found, (found,) if found else ())


@pytest.fixture
async def engine(rasa_sdk_server: ActionServer, tmp_path: Path) -> AsyncIterator[Engine]:
    flows = "".join(ONE_ACTION_FLOW.format(name=n, action=a) for n, a in SINGLE.items())
    (tmp_path / "bot.yml").write_text(DOMAIN + flows)
    project = load_project(tmp_path)
    registry = ActionRegistry(endpoint=rasa_sdk_server.webhook, domain=project.domain.to_rasa())
    async with registry:
        yield Engine(project, registry, None, EngineSettings(seed=1))


async def tracked(engine: Engine) -> TurnResult:
    """Run the track flow to its end for order A-17."""
    first = await engine.handle(engine.new_state(), parse("track my order", "track"), "cust-7")
    return await engine.handle(first.state, parse("A-17", "inform"), "cust-7")


async def test_remote_action_in_a_flow(engine: Engine) -> None:
    result = await tracked(engine)

    texts = [r.text for r in result.replies]
    assert texts[0] == "Order A-17 for cust-7 (inform) has shipped."
    assert result.replies[0].buttons == (
        {"title": "Track it", "payload": "/track"},
        {"title": "Thanks", "payload": "/thanks"},
    )
    assert texts[1:3] == ["Anything else?", "Status: shipped."]
    assert result.state.slots["order_status"] == "shipped"
    assert "order_id" in result.state.slots["domain_slots"]


async def test_tracker_of_a_real_conversation_reads_well(engine: Engine) -> None:
    # The history the engine sends is the turn's own events, as Rasa dicts.
    earlier = await tracked(engine)
    history = [e.to_dict() for e in earlier.events]

    result = await engine.handle(
        earlier.state, parse("what do you see?", "do_read"), "cust-7", history
    )

    seen = result.state.slots["seen"]
    assert seen["text"] == "what do you see?"
    assert seen["intent"] == "do_read"
    assert seen["user_events"] == 2
    assert seen["last_bot_text"] == COMPLETED
    assert seen["last_user_intent"] == "do_read"
    assert seen["state_sender"] == "cust-7"
    assert seen["order_id"] is None  # reset when the track flow ended


async def test_response_is_rendered_with_the_actions_variables(engine: Engine) -> None:
    result = await engine.handle(engine.new_state(), parse("help", "run_one"), "cust-7")

    first = result.replies[0]
    assert first.text == "Order A-17: how can I help?"
    assert first.buttons == ({"title": "Track A-17", "payload": "/track"},)
    assert first.response == "utter_order_help"
    # The image-only message has no text to show; the flow goes on.
    assert [r.text for r in result.replies[1:]] == ["Status: .", COMPLETED]
    assert result.state.slots["order_id"] is None


async def test_followup_action_runs_next(engine: Engine) -> None:
    state = engine.new_state()
    state.slots["order_id"] = "B-2"

    result = await engine.handle(state, parse("look it up", "do_followup"), "cust-7")

    assert [r.text for r in result.replies] == [
        "Let me look that up.",
        "Order B-2 for cust-7 (do_followup) has shipped.",
        "Anything else?",
        "Status: shipped.",
        COMPLETED,
    ]
    executed = [e.name for e in result.events if isinstance(e, ActionExecuted)]
    assert executed[:3] == ["action_followup", "action_look_up_order", "utter_status"]
    assert FollowupAction("action_look_up_order") in result.events
    assert result.state.slots["last_action_seen"] == "action_followup"


async def test_endless_followups_end_in_the_internal_error_pattern(engine: Engine) -> None:
    result = await engine.handle(engine.new_state(), parse("loop", "do_loop"), "cust-7")

    assert [r.response for r in result.replies] == ["utter_internal_error_rasa"]
    assert result.state.stack == []


async def test_reminder_is_dropped_with_a_warning(
    engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="bot.actions.webhook"):
        result = await engine.handle(engine.new_state(), parse("remind me", "do_remind"), "cust-7")

    assert [r.text for r in result.replies] == [
        "I will remind you tomorrow.",
        "Status: .",
        COMPLETED,
    ]
    assert any("ReminderScheduled" in r.getMessage() for r in caplog.records)


async def test_restart_clears_the_stack_and_the_slots(engine: Engine) -> None:
    asked = await engine.handle(engine.new_state(), parse("track my order", "track"), "cust-7")
    asked.state.slots.update(greeted=True, order_status="lost")
    assert [f.flow_id for f in asked.state.stack] == ["track"]

    result = await engine.handle(asked.state, parse("start over", "do_restart"), "cust-7")

    # utter_status never runs: the flow that would say it is gone.
    assert [r.text for r in result.replies] == ["Starting over."]
    assert result.state.stack == []
    assert result.state.slots == engine.new_state().slots
    assert Restarted() in result.events


async def test_all_slots_reset_and_slot_set_none(engine: Engine) -> None:
    state = DialogueState(
        {**engine.new_state().slots, "order_id": "A-17", "greeted": True, "order_status": "lost"}
    )

    result = await engine.handle(state, parse("reset", "do_reset"), "cust-7")

    slots = result.state.slots
    assert (slots["order_id"], slots["order_status"], slots["greeted"]) == (None, "fresh", None)
    assert AllSlotsReset() in result.events
    assert [r.text for r in result.replies] == ["Status: fresh.", COMPLETED]


@pytest.mark.parametrize("intent", ["do_explode", "do_reject", "do_missing"])
async def test_failing_action_runs_the_internal_error_pattern(engine: Engine, intent: str) -> None:
    earlier = await tracked(engine)

    failed = await engine.handle(earlier.state, parse("boom", intent), "cust-7")

    assert [r.response for r in failed.replies] == ["utter_internal_error_rasa"]
    assert failed.state.stack == []
