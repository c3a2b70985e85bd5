from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bot.dialogue.answer import Answer
from bot.dialogue.engine import Engine, EngineSettings
from bot.dialogue.events import BotUttered, FlowCancelled, HandoffRequested, event_from_dict
from bot.dialogue.project import Project
from bot.dialogue.state import DialogueState
from tests.bot.dialogue.conftest import Chat, ScriptedActions


async def test_simple_flow_then_pattern_completed(chat: Chat) -> None:
    assert await chat.say("hi", "greet") == ["utter_greet", "utter_can_do_something_else"]
    assert chat.state.stack == []


async def test_collect_rejection_then_accept_and_branch(
    chat: Chat, actions: ScriptedActions
) -> None:
    assert await chat.say("where is my order", "check_order") == ["utter_ask_order_id"]
    assert await chat.say("abc") == ["utter_invalid_order_format", "utter_ask_order_id"]
    assert chat.state.slots["order_id"] is None
    assert await chat.say("HL-12345") == ["utter_ask_confirmed"]
    assert actions.calls[0].slots["order_id"] == "HL-12345"
    assert chat.last is not None
    assert chat.last.replies[0].text == "Shall I go ahead with HL-12345?"
    assert [b["payload"] for b in chat.last.replies[0].buttons] == ["/affirm", "/deny"]
    replies = await chat.say("yes", "affirm")
    assert replies == ["utter_status", "utter_can_do_something_else"]
    assert chat.last.replies[0].text == "Order HL-12345 is shipped."
    # collected slots reset when the flow ends
    assert chat.state.slots["order_id"] is None


async def test_low_confidence_does_not_trigger(chat: Chat) -> None:
    assert await chat.say("order?", "check_order", conf=0.3) == ["utter_ask_rephrase"]


async def test_entity_fills_slot_on_start(chat: Chat) -> None:
    assert await chat.say("status of HL-00001", "check_order", order_id="HL-00001") == [
        "utter_ask_confirmed"
    ]


async def test_digression_and_resume(chat: Chat) -> None:
    await chat.say("where is my order", "check_order")
    replies = await chat.say("when are you open", "hours")
    assert replies == ["utter_hours", "utter_flow_continue_interrupted", "utter_ask_order_id"]
    assert "flow_interrupted:check_order" in chat.kinds()
    assert "flow_resumed:check_order" in chat.kinds()
    assert chat.last is not None
    assert chat.last.replies[1].text == "Let's continue with check order."
    assert await chat.say("HL-12345") == ["utter_ask_confirmed"]


async def test_cancel_mid_flow(chat: Chat) -> None:
    await chat.say("where is my order", "check_order")
    assert await chat.say("stop", "cancel") == ["utter_flow_cancelled_rasa"]
    assert chat.state.stack == []
    assert chat.last is not None
    assert any(isinstance(e, FlowCancelled) for e in chat.last.events)


async def test_correction_goes_back_to_step_after_collect(
    chat: Chat, actions: ScriptedActions
) -> None:
    await chat.say("where is my order", "check_order")
    await chat.say("HL-12345")
    replies = await chat.say("no, it is HL-54321", "inform", order_id="HL-54321")
    assert replies == ["utter_corrected_previous_input", "utter_ask_confirmed"]
    assert chat.state.slots["order_id"] == "HL-54321"
    assert actions.calls[-1].slots["order_id"] == "HL-54321"


async def test_float_coercion_and_invalid_message(chat: Chat) -> None:
    assert await chat.say("survey", "survey") == ["utter_ask_quantity"]
    assert await chat.say("lots") == ["utter_invalid_quantity", "utter_ask_quantity"]
    assert await chat.say("3") == ["utter_ask_quantity"]
    assert await chat.say("about 12.5 please") == ["utter_done", "utter_can_do_something_else"]


async def test_link_ends_flow_and_starts_target(chat: Chat) -> None:
    replies = await chat.say("link", "link_test")
    assert replies == ["utter_hours", "utter_can_do_something_else"]
    assert "flow_completed:order_then_hours" in chat.kinds()
    assert chat.state.slots["tier"] is None


async def test_call_returns_to_caller(chat: Chat) -> None:
    assert await chat.say("buy", "buy") == ["utter_ask_quantity"]
    replies = await chat.say("2")
    assert replies == ["utter_hours", "utter_done", "utter_greet", "utter_can_do_something_else"]


async def test_failing_action_runs_internal_error_and_goes_on(chat: Chat) -> None:
    assert await chat.say("fail", "fail") == ["utter_internal_error_rasa"]
    assert chat.state.stack == []
    assert await chat.say("hi", "greet") == ["utter_greet", "utter_can_do_something_else"]


async def test_slow_action_times_out(chat: Chat) -> None:
    assert await chat.say("slow", "slow") == ["utter_internal_error_rasa"]


async def test_empty_and_too_long_input_keep_the_flow(chat: Chat) -> None:
    await chat.say("where is my order", "check_order")
    assert await chat.say("   ") == ["utter_user_input_empty_error_rasa", "utter_ask_order_id"]
    assert await chat.say("x" * 51) == [
        "utter_user_input_too_long_error_rasa",
        "utter_ask_order_id",
    ]
    assert await chat.say("HL-12345") == ["utter_ask_confirmed"]


async def test_handoff_cancels_flows(chat: Chat) -> None:
    await chat.say("where is my order", "check_order")
    assert await chat.say("a human please", "human_handoff") == ["utter_human_handoff"]
    assert chat.last is not None
    assert chat.last.route == "human"
    assert chat.last.handoff_reason == "user_request"
    assert any(isinstance(e, HandoffRequested) for e in chat.last.events)
    assert chat.state.stack == []


async def test_chitchat_and_cannot_handle(chat: Chat) -> None:
    assert await chat.say("how are you", "chitchat") == ["utter_free_chitchat_response"]
    assert await chat.say("qwerty zxcv") == ["utter_ask_rephrase"]


class FixedAnswerer:
    def __init__(self, answer: Answer | None) -> None:
        self.answer_value = answer
        self.seen: list[str] = []

    async def answer(
        self, text: str, history: Sequence[dict[str, Any]], slots: dict[str, Any]
    ) -> Answer | None:
        self.seen.append(text)
        return self.answer_value


async def test_open_ended_goes_to_answerer(project: Project) -> None:
    answerer = FixedAnswerer(Answer("We ship in 2 days.", "local", 0.8, ("kb/shipping.md#1",)))
    chat = Chat(Engine(project, ScriptedActions(), answerer, EngineSettings(seed=1)))
    assert await chat.say("how long does shipping take?") == ["We ship in 2 days."]
    assert chat.last is not None
    assert (chat.last.route, chat.last.confidence) == ("local", 0.8)
    assert chat.last.citations == ("kb/shipping.md#1",)


async def test_open_ended_low_confidence_hands_off(project: Project) -> None:
    answer = Answer("I am not sure.", "human", 0.1, handoff_reason="low_confidence")
    chat = Chat(Engine(project, ScriptedActions(), FixedAnswerer(answer), EngineSettings(seed=1)))
    replies = await chat.say("can I pay with goats?")
    # One message: the handoff pattern's, not the answerer's text before it.
    assert replies == ["utter_human_handoff"]
    assert chat.last is not None
    assert chat.last.handoff_reason == "low_confidence"


async def test_state_and_events_round_trip(chat: Chat) -> None:
    await chat.say("where is my order", "check_order")
    restored = DialogueState.from_dict(chat.state.to_dict())
    assert restored == chat.state
    assert chat.last is not None
    for event in chat.last.events:
        assert event_from_dict(event.to_dict()) == event
    assert isinstance(chat.last.events[-1], BotUttered)


async def test_handle_does_not_mutate_input_state(chat: Chat) -> None:
    before = chat.state.to_dict()
    result = await chat.engine.handle(
        chat.state, __import__("tests.bot.dialogue.conftest", fromlist=["msg"]).msg("hi", "greet")
    )
    assert chat.state.to_dict() == before
    assert result.state is not chat.state
