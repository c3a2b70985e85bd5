"""A small bot project and helpers shared by the dialogue-core tests."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from bot.dialogue.actions import ActionContext, ActionResult
from bot.dialogue.engine import Engine, EngineSettings, TurnResult
from bot.dialogue.events import SlotSet
from bot.dialogue.nlu import Entity, Intent, ParseResult
from bot.dialogue.project import Project, load_project
from bot.dialogue.state import DialogueState
from bot.errors import ActionError

PROJECT = Path(__file__).with_name("project")


class ScriptedActions:
    """An action runner for tests: a lookup, a failing and a slow action."""

    def __init__(self) -> None:
        self.calls: list[ActionContext] = []

    def has(self, name: str) -> bool:
        return name in ("action_lookup", "action_fail", "action_slow")

    async def run(self, name: str, context: ActionContext) -> ActionResult:
        self.calls.append(context)
        if name == "action_fail":
            raise ActionError("boom")
        if name == "action_slow":
            await asyncio.sleep(5)
        return ActionResult(events=(SlotSet("order_status", "shipped"),))


def msg(text: str, intent: str | None = None, conf: float = 0.9, **entities: str) -> ParseResult:
    """Build the NLU reading of a message."""
    ents = tuple(Entity(k, v) for k, v in entities.items())
    found = Intent(intent, conf) if intent else None
    return ParseResult(text, found, (found,) if found else (), ents, out_of_scope=found is None)


class Chat:
    """Drives an engine turn by turn, keeping the state."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.state: DialogueState = engine.new_state()
        self.last: TurnResult | None = None

    async def say(self, text: str, intent: str | None = None, **entities: Any) -> list[str]:
        result = await self.engine.handle(self.state, msg(text, intent, **entities))
        self.state = result.state
        self.last = result
        return [r.response or r.text for r in result.replies]

    def kinds(self) -> list[str]:
        assert self.last is not None
        return [
            f"{e.kind}:{getattr(e, 'flow_id', getattr(e, 'name', ''))}" for e in self.last.events
        ]


@pytest.fixture(scope="session")
def project() -> Project:
    return load_project(PROJECT, lambda name: False)


@pytest.fixture
def actions() -> ScriptedActions:
    return ScriptedActions()


@pytest.fixture
def chat(project: Project, actions: ScriptedActions) -> Chat:
    settings = EngineSettings(max_message_chars=50, action_timeout_s=0.2, seed=1)
    return Chat(Engine(project, actions, None, settings))
