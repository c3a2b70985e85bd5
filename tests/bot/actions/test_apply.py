"""How the engine applies what an action returns (in-process actions, no server)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

from bot.actions import ActionDeps, ActionRegistry
from bot.dialogue.actions import ActionContext, ActionResult
from bot.dialogue.engine import MAX_FOLLOWUPS_PER_TURN, Engine, EngineSettings, TurnResult
from bot.dialogue.events import (
    ActionExecuted,
    AllSlotsReset,
    Event,
    FollowupAction,
    Restarted,
    SlotSet,
    event_from_dict,
)
from bot.dialogue.nlu import Intent, ParseResult
from bot.dialogue.project import load_project

BOT = """
slots:
  order_id: {type: text}
  tier: {type: text, initial_value: basic}
responses:
  utter_greet:
    - text: "Hello!"
  utter_order:
    - text: "Order {order_id} ({tier})"
      buttons:
        - {title: "Track {order_id}", payload: "/track"}
  utter_tiered:
    - text: "Gold service for {order_id}"
      condition:
        - {type: slot, name: tier, value: gold}
    - text: "Basic service for {order_id}"
flows:
  act:
    description: Run action_under_test.
    nlu_trigger:
      - intent: act
    steps:
      - action: action_under_test
      - action: utter_greet
"""


async def run_turn(
    tmp_path: Path, answers: list[ActionResult], slots: dict[str, Any] | None = None
) -> TurnResult:
    """Run one turn of the ``act`` flow; ``action_under_test`` returns ``answers`` in turn."""
    pending = list(answers)

    async def under_test(ctx: ActionContext, deps: ActionDeps) -> ActionResult:
        return pending.pop(0) if len(pending) > 1 else pending[0]

    registry = ActionRegistry()
    registry.register("action_under_test", under_test)
    (tmp_path / "bot.yml").write_text(BOT)
    engine = Engine(load_project(tmp_path, registry.has), registry, None, EngineSettings(seed=3))
    state = engine.new_state()
    state.slots.update(slots or {})
    return await engine.handle(state, ParseResult("go", Intent("act", 1.0), ()), "c-1")


def texts(result: TurnResult) -> list[str]:
    return [r.text for r in result.replies]


async def test_variables_fill_the_response_and_text_and_buttons_add_up(tmp_path: Path) -> None:
    answer = ActionResult(
        responses=(
            {"response": "utter_order", "order_id": "A-17"},
            {"response": "utter_order", "order_id": "A-17", "tier": "gold", "text": "Mine"},
            {"template": "utter_order", "buttons": [{"title": "More", "payload": "/more"}]},
        )
    )

    result = await run_turn(tmp_path, [answer], {"order_id": "Z-9"})

    first, second, third = result.replies[:3]
    assert (first.text, first.response) == ("Order A-17 (basic)", "utter_order")
    assert first.buttons == ({"title": "Track A-17", "payload": "/track"},)
    assert second.text == "Mine"
    assert third.text == "Order Z-9 (basic)"
    assert third.buttons == (
        {"title": "Track Z-9", "payload": "/track"},
        {"title": "More", "payload": "/more"},
    )
    assert result.state.slots["order_id"] == "Z-9"  # variables are not slots


async def test_conditions_read_slots_not_variables(tmp_path: Path) -> None:
    answer = ActionResult(
        responses=({"response": "utter_tiered", "tier": "gold", "order_id": "1"},)
    )

    result = await run_turn(tmp_path, [answer])

    assert texts(result)[0] == "Basic service for 1"


async def test_unknown_response_falls_back_to_text(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    answer = ActionResult(
        responses=(
            {"response": "utter_nowhere", "text": "Plain words"},
            {"response": "utter_nowhere"},
            {"image": "https://example.invalid/a.png"},
        )
    )
    with caplog.at_level(logging.INFO, logger="bot.dialogue.actions"):
        result = await run_turn(tmp_path, [answer])

    assert texts(result)[:2] == ["Plain words", "Hello!"]
    messages = [r.getMessage() for r in caplog.records]
    assert (
        messages.count("Response utter_nowhere asked for by an action is not in the domain.") == 2
    )
    assert "Dropping an action message with nothing to show as text: ['image']." in messages


async def test_followup_runs_before_the_flow_goes_on(tmp_path: Path) -> None:
    answer = ActionResult(events=(FollowupAction("utter_order"),), responses=({"text": "One"},))

    result = await run_turn(tmp_path, [answer], {"order_id": "A-1"})

    assert texts(result)[:3] == ["One", "Order A-1 (basic)", "Hello!"]


async def test_followup_after_a_restart_runs_on_an_empty_stack(tmp_path: Path) -> None:
    answer = ActionResult(events=(Restarted(), FollowupAction("utter_greet")))

    result = await run_turn(tmp_path, [answer], {"order_id": "A-1", "tier": "gold"})

    assert texts(result) == ["Hello!"]  # the followup's; the flow's own step never runs
    assert result.state.stack == []
    # handoff_email is the built-in slot of the email follow-up (bot.dialogue.desk).
    assert result.state.slots == {"order_id": None, "tier": "basic", "handoff_email": None}


async def test_chained_followups_stop_at_the_limit(tmp_path: Path) -> None:
    loop = ActionResult(events=(FollowupAction("action_under_test"),))

    result = await run_turn(tmp_path, [loop])

    executed = [e for e in result.events if e == ActionExecuted("action_under_test")]
    assert len(executed) == MAX_FOLLOWUPS_PER_TURN + 1
    assert [r.response for r in result.replies] == ["utter_internal_error_rasa"]
    assert result.state.stack == []


async def test_all_slots_reset_keeps_initial_values_and_drops_unknown_slots(
    tmp_path: Path,
) -> None:
    answer = ActionResult(events=(SlotSet("extra", 1), AllSlotsReset(), SlotSet("order_id", None)))

    result = await run_turn(tmp_path, [answer], {"order_id": "A-1", "tier": "gold"})

    assert result.state.slots == {
        "order_id": None,
        "tier": "basic",
        "extra": None,
        "handoff_email": None,
    }


@pytest.mark.parametrize(
    "event", [FollowupAction("action_x"), Restarted(), AllSlotsReset(), SlotSet("a", None)]
)
def test_new_events_round_trip(event: Event) -> None:
    assert event_from_dict(event.to_dict()) == event
