"""The handoff as the desk allows it: one message, no promise nobody keeps, no dead end."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from bot.dialogue.answer import Answer
from bot.dialogue.desk import Desk, valid_email
from bot.dialogue.engine import Engine, EngineSettings, TurnResult
from bot.dialogue.project import Project
from bot.dialogue.state import DialogueState
from tests.bot.dialogue.conftest import ScriptedActions, msg


class Escalating:
    """An answerer that hands every question to a person, with its own text."""

    async def answer(
        self, text: str, history: Sequence[dict[str, Any]], slots: dict[str, Any]
    ) -> Answer | None:
        return Answer("I'm not sure, passing you to our team.", "human", 0.1, (), "low_confidence")


class Desked:
    """Drives an engine with a given desk, and the queue as the manager would see it."""

    def __init__(self, project: Project, desk: Desk) -> None:
        settings = EngineSettings(seed=1)
        self.engine = Engine(project, ScriptedActions(), Escalating(), settings)
        self.desk = desk
        self.state: DialogueState = self.engine.new_state()
        self.queued = False
        self.loads = 0
        self.last: TurnResult | None = None

    async def _load(self) -> Desk:
        self.loads += 1
        return self.desk

    async def say(self, text: str, intent: str | None = None, **entities: Any) -> list[str]:
        parse = msg(text, intent, **entities)
        result = await self.engine.handle(self.state, parse, desk=self._load, queued=self.queued)
        self.state, self.last = result.state, result
        if result.handoff_reason is not None:
            self.queued = True
        if result.withdrawn:
            self.queued = False
        return [r.response or r.text for r in result.replies]


@pytest.fixture
def unstaffed(project: Project) -> Desked:
    return Desked(project, Desk("agents_away", "collect"))


async def test_an_escalation_says_one_message(project: Project) -> None:
    chat = Desked(project, Desk())
    assert await chat.say("can I pay with goats?") == ["utter_human_handoff"]
    assert chat.last is not None
    assert chat.last.handoff_reason == "low_confidence"


@pytest.mark.parametrize("reason", ["no_agents", "agents_away", "closed"])
async def test_nobody_to_take_it_and_no_email_outbound(project: Project, reason: Any) -> None:
    chat = Desked(project, Desk(reason, "none"))
    assert await chat.say("a person please", "human_handoff") == [
        "utter_human_handoff_not_available"
    ]
    assert chat.last is not None
    assert chat.last.route == "human"
    assert chat.last.desk == Desk(reason, "none")


async def test_the_email_channel_is_answered_by_email(project: Project) -> None:
    chat = Desked(project, Desk("closed", "known"))
    assert await chat.say("a person please", "human_handoff") == ["utter_human_handoff_email_later"]


async def test_an_email_address_can_be_left(unstaffed: Desked) -> None:
    assert await unstaffed.say("can I pay with goats?") == ["utter_ask_handoff_email"]
    replies = await unstaffed.say("ana@example.com")
    assert replies[0] == "utter_handoff_email_saved"
    assert "utter_human_handoff_still_queued" not in replies
    assert unstaffed.last is not None
    assert unstaffed.last.followup_email == "ana@example.com"
    assert unstaffed.state.slots["handoff_email"] is None  # the flow's slot does not outlive it


async def test_anything_but_an_address_declines(unstaffed: Desked) -> None:
    await unstaffed.say("a person please", "human_handoff")
    assert (await unstaffed.say("no thanks", "deny"))[0] == "utter_handoff_email_declined"
    assert unstaffed.last is not None
    assert unstaffed.last.followup_email is None


async def test_a_queued_customer_still_gets_flows_and_is_told_it_waits(unstaffed: Desked) -> None:
    await unstaffed.say("a person please", "human_handoff")
    await unstaffed.say("no", "deny")
    # A flow that asks something: its question, nothing buried under a notice.
    assert await unstaffed.say("where is my order", "check_order") == ["utter_ask_order_id"]
    await unstaffed.say("cancel", "cancel")
    assert await unstaffed.say("opening hours?", "hours") == [
        "utter_hours",
        "utter_can_do_something_else",
        "utter_human_handoff_still_queued",
    ]
    assert unstaffed.queued


@pytest.mark.parametrize(
    ("text", "intent"),
    [("Back to the bot, please!", None), ("/talk_to_bot", "talk_to_bot"), ("cancel", "cancel")],
)
async def test_asking_for_the_bot_leaves_the_queue(
    unstaffed: Desked, text: str, intent: str | None
) -> None:
    await unstaffed.say("a person please", "human_handoff")
    await unstaffed.say("no", "deny")
    assert await unstaffed.say(text, intent) == ["utter_human_handoff_withdrawn"]
    assert unstaffed.last is not None
    assert unstaffed.last.withdrawn
    assert [e.kind for e in unstaffed.last.events] == ["user", "handoff_withdrawn", "bot"]
    assert await unstaffed.say("opening hours?", "hours") == [
        "utter_hours",
        "utter_can_do_something_else",
    ]


async def test_cancel_inside_a_flow_cancels_the_flow_not_the_queue(unstaffed: Desked) -> None:
    await unstaffed.say("a person please", "human_handoff")
    await unstaffed.say("no", "deny")
    await unstaffed.say("where is my order", "check_order")
    replies = await unstaffed.say("cancel", "cancel")
    assert "utter_human_handoff_withdrawn" not in replies
    assert unstaffed.last is not None
    assert not unstaffed.last.withdrawn


async def test_a_turn_without_a_handoff_never_asks_for_the_desk(unstaffed: Desked) -> None:
    await unstaffed.say("opening hours?", "hours")
    assert unstaffed.loads == 0


def test_valid_email() -> None:
    assert valid_email(" ana@example.com ") == "ana@example.com"
    assert valid_email("no") is None
    assert valid_email(None) is None
