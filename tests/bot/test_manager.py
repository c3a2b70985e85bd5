"""The dialogue manager over a real store, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from bot.dialogue.answer import Answer
from bot.dialogue.engine import Engine, EngineSettings
from bot.dialogue.project import Project, load_project
from bot.manager import DialogueManager, parse_payload
from bot.messages import InboundMessage
from bot.runtime import NoNLU
from bot.storage.store import Store
from tests.bot.dialogue.conftest import ScriptedActions

PROJECT = Path(__file__).parent / "dialogue" / "project"


@pytest.fixture(scope="module")
def project() -> Project:
    return load_project(PROJECT, lambda name: False)


@pytest.fixture(autouse=True)
def _guard_the_loop(no_blocking: None) -> None:
    """Every test here fails if it blocks the event loop (see ``no_blocking``)."""


def make_manager(project: Project, store: Store) -> DialogueManager:
    engine = Engine(project, ScriptedActions(), None, EngineSettings(seed=1, max_message_chars=100))
    return DialogueManager(engine, NoNLU(), store)


def msg(text: str, message_id: str | None = None, conv: str = "c1") -> InboundMessage:
    return InboundMessage("test", conv, "customer", text, message_id)


def test_parse_payload() -> None:
    parsed = parse_payload('/inform{"order_id": "HL-12345"}')
    assert parsed is not None
    assert parsed.intent is not None
    assert (parsed.intent.name, parsed.intent.confidence) == ("inform", 1.0)
    assert [(e.entity, e.value) for e in parsed.entities] == [("order_id", "HL-12345")]
    assert parse_payload("hello /there") is None
    assert parse_payload("/bad{not json}") is None


async def test_flow_turns_are_persisted(project: Project, store: Store) -> None:
    manager = make_manager(project, store)
    replies = await manager.handle(msg("/check_order"))
    assert [r.text for r in replies] == ["What is your order number?"]
    replies = await manager.handle(msg("HL-12345"))
    assert replies[0].text == "Shall I go ahead with HL-12345?"
    assert [b.payload for b in replies[0].buttons] == ["/affirm", "/deny"]
    conv = await store.conversation("test", "c1", "customer")
    transcript = await store.transcript(conv.id)
    assert [m.direction for m in transcript] == ["in", "out", "in", "out"]
    kinds = [e["event"] for e in await store.events(conv.id)]
    assert kinds.count("user") == 2
    assert "flow_started" in kinds


async def test_duplicate_message_id_runs_once(project: Project, store: Store) -> None:
    manager = make_manager(project, store)
    first = await manager.handle(msg("/greet", "m-1"))
    again = await manager.handle(msg("/greet", "m-1"))
    assert [r.text for r in again] == [r.text for r in first]
    assert [r.metadata["message_id"] for r in again] == [r.metadata["message_id"] for r in first]
    conv = await store.conversation("test", "c1", "customer")
    assert [m.direction for m in await store.transcript(conv.id)] == ["in", "out", "out"]


async def test_state_survives_a_restart(project: Project, db_url: str) -> None:
    async with Store(db_url) as store:
        await store.upgrade()
        await make_manager(project, store).handle(msg("/check_order"))
    async with Store(db_url) as store:
        replies = await make_manager(project, store).handle(msg("HL-12345"))
    assert replies[0].text == "Shall I go ahead with HL-12345?"


async def test_recover_runs_messages_stored_before_a_crash(project: Project, store: Store) -> None:
    conv = await store.conversation("test", "c9", "customer")
    inbound_id, _ = await store.record_inbound(conv.id, "test", "lost-1", "/greet", {})
    manager = make_manager(project, store)
    assert await manager.recover() == 1
    assert await store.inbound_status(inbound_id) == "processed"
    assert (await store.replies_to(inbound_id))[0].text == "Hello!"
    assert await manager.recover() == 0


async def test_a_claimed_conversation_keeps_the_bot_silent(project: Project, store: Store) -> None:
    manager = make_manager(project, store)
    agent = await manager.console.create_agent("ana@helpline.test", "Ana", "agent", "x")
    await manager.console.update_agent(agent["id"], {"presence": "online"})
    replies = await manager.handle(msg("/human_handoff"))
    assert "connecting you" in replies[0].text.lower()
    assert replies[0].metadata["handoff"] is True
    conv = await store.conversation("test", "c1", "customer")
    assert (await manager.console.claim(conv.id, agent["id"]))[0]
    assert await manager.handle(msg("hello?")) == []
    conv = await store.conversation("test", "c1", "customer")
    assert conv.mode == "human"
    assert (await store.transcript(conv.id))[-1].text == "hello?"
    assert (await store.route_counts())["human"] >= 1


async def test_turns_of_one_conversation_run_one_at_a_time(project: Project, store: Store) -> None:
    manager = make_manager(project, store)
    await manager.handle(msg("/survey"))
    # Twenty answers at once: each must see the state the previous one left.
    results = await asyncio.gather(*(manager.handle(msg(str(i), f"n-{i}")) for i in range(20)))
    assert all(len(r) >= 1 for r in results)
    conv = await store.conversation("test", "c1", "customer")
    events = await store.events(conv.id)
    assert sum(1 for e in events if e["event"] == "user") == 21
    finished = [e for e in events if e["event"] == "flow_completed" and e["flow_id"] == "survey"]
    assert len(finished) == 1


async def test_empty_and_oversized_messages_run_internal_error(
    project: Project, store: Store
) -> None:
    manager = make_manager(project, store)
    assert "didn't get any text" in (await manager.handle(msg("")))[0].text
    assert "too long" in (await manager.handle(msg("x" * 101)))[0].text
    conv = await store.conversation("test", "c1", "customer")
    assert [m.text for m in await store.transcript(conv.id) if m.direction == "in"] == [
        "",
        "x" * 101,
    ]


class PricedAnswerer:
    async def answer(
        self, text: str, history: Sequence[dict[str, Any]], slots: dict[str, Any]
    ) -> Answer | None:
        return Answer(
            "Returns are free within 30 days.",
            "cloud",
            0.8,
            ("returns-policy.md#1",),
            provider="fallback",
            tokens_in=120,
            tokens_out=12,
            cost_usd=0.0021,
        )


async def test_open_ended_turn_records_route_cost_and_citations(
    project: Project, store: Store
) -> None:
    engine = Engine(project, ScriptedActions(), PricedAnswerer(), EngineSettings(seed=1))
    manager = DialogueManager(engine, NoNLU(), store)
    replies = await manager.handle(msg("can I return a gift?"))
    assert [r.text for r in replies] == ["Returns are free within 30 days."]
    conv = await store.conversation("test", "c1", "customer")
    (turn,) = await store.turns(conv.id)
    assert (turn["route"], turn["provider"], turn["tokens_in"], turn["tokens_out"]) == (
        "cloud",
        "fallback",
        120,
        12,
    )
    assert turn["cost_usd"] == 0.0021
    assert turn["confidence"] == 0.8
    assert turn["citations"] == ["returns-policy.md#1"]
