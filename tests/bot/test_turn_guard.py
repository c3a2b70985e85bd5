"""A turn that keeps failing is quarantined, over a real store on SQLite and PostgreSQL.

The failing turn is a real one: a conversation waits in a flow, then the bot
is deployed with a step added to that flow, so the stored state names a step
that no longer exists (step ids are numbered) and every turn of the
conversation raises.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from bot import metrics
from bot.dialogue.engine import Engine, EngineSettings
from bot.dialogue.project import Project, load_project
from bot.manager import DialogueManager
from bot.messages import InboundMessage
from bot.runtime import NoNLU
from bot.storage.quarantine import TurnAttempts
from bot.storage.statements import MESSAGES
from bot.storage.store import Store
from tests.bot.dialogue.conftest import ScriptedActions

PROJECT = Path(__file__).parent / "dialogue" / "project"
SORRY = "Sorry, something went wrong on my side. Please try again."


@pytest.fixture(autouse=True)
def _guard_the_loop(no_blocking: None) -> None:
    """Every test here fails if it blocks the event loop (see ``no_blocking``)."""


@pytest.fixture(scope="module")
def project() -> Project:
    return load_project(PROJECT, lambda name: False)


@pytest.fixture(scope="module")
def redeployed(tmp_path_factory: pytest.TempPathFactory) -> Project:
    """The same bot with a step added before ``check_order``'s first collect."""
    folder = tmp_path_factory.mktemp("bot") / "project"
    shutil.copytree(PROJECT, folder)
    flows = folder / "flows.yml"
    old = "    steps:\n      - collect: order_id\n"
    assert old in flows.read_text()
    new = "    steps:\n      - action: utter_greet\n      - collect: order_id\n"
    flows.write_text(flows.read_text().replace(old, new, 1))
    return load_project(folder, lambda name: False)


def manager(project: Project, store: Store, **kwargs: Any) -> DialogueManager:
    engine = Engine(project, ScriptedActions(), None, EngineSettings(seed=1, max_message_chars=100))
    return DialogueManager(engine, NoNLU(), store, **kwargs)


def msg(text: str, message_id: str | None = None, conv: str = "c1") -> InboundMessage:
    return InboundMessage("test", conv, "customer", text, message_id)


def quarantined() -> float:
    return metrics.REGISTRY.get_sample_value("helpline_turns_quarantined_total") or 0.0


async def attempts_of(store: Store, inbound_id: int) -> int:
    async def op(conn: Any) -> int:
        query = select(MESSAGES.c.attempts).where(MESSAGES.c.id == inbound_id)
        return int((await conn.execute(query)).scalar_one())

    return await store.run("attempts", op)


async def stale_conversation(project: Project, store: Store, conv: str = "c1") -> int:
    """A conversation waiting in ``check_order`` as the old bot left it; its store id."""
    await manager(project, store).handle(msg("/check_order", conv=conv))
    return (await store.conversation("test", conv, "customer")).id


async def test_a_failing_turn_is_set_aside_and_the_customer_told(
    project: Project, redeployed: Project, store: Store
) -> None:
    conv_id = await stale_conversation(project, store)
    before = quarantined()
    bot = manager(redeployed, store)
    replies = await bot.handle(msg("HL-12345", "m-2"))
    assert [r.text for r in replies] == [SORRY]
    assert replies[0].metadata["notice"] == "failed"
    transcript = await store.transcript(conv_id)
    failed, apology = transcript[-2], transcript[-1]
    assert (failed.text, failed.status) == ("HL-12345", "failed")
    assert await attempts_of(store, failed.id) == 3
    assert (apology.in_reply_to, apology.metadata["notice"]) == (failed.id, "failed")
    assert quarantined() == before + 1
    # The stored state was what failed: the conversation starts afresh.
    assert await store.load_state(conv_id) is None
    assert (await bot.handle(msg("/greet")))[0].text == "Hello!"
    # A resent message is answered from the store, never run again.
    again = await bot.handle(msg("HL-12345", "m-2"))
    assert [r.metadata["message_id"] for r in again] == [apology.id]
    assert await attempts_of(store, failed.id) == 3


async def test_recovery_at_startup_goes_on_past_a_failing_turn(
    project: Project, redeployed: Project, store: Store
) -> None:
    conv_id = await stale_conversation(project, store)
    bad, _ = await store.record_inbound(conv_id, "test", "lost-1", "HL-12345", {})
    other = await store.conversation("test", "c2", "customer")
    good, _ = await store.record_inbound(other.id, "test", "lost-2", "/greet", {})
    assert await manager(redeployed, store).recover() == 2
    assert await store.inbound_status(bad) == "failed"
    assert [m.text for m in await store.replies_to(bad)] == [SORRY]
    assert await store.inbound_status(good) == "processed"
    assert (await store.replies_to(good))[0].text == "Hello!"
    assert await store.pending_inbound() == []


async def test_a_message_whose_turns_never_ended_is_set_aside_without_running(
    project: Project, store: Store
) -> None:
    conv = await store.conversation("test", "c3", "customer")
    inbound_id, _ = await store.record_inbound(conv.id, "test", "crash-1", "/greet", {})
    counter = TurnAttempts(store)
    for _ in range(3):  # three turns that started and took the process down
        await counter.count(inbound_id)
    await manager(project, store).recover()
    assert await store.inbound_status(inbound_id) == "failed"
    assert [m.text for m in await store.replies_to(inbound_id)] == [SORRY]
    assert [e["event"] for e in await store.events(conv.id)] == []  # the turn never ran
    assert await counter.count(inbound_id) is None  # no longer pending


async def test_the_attempts_are_configurable(
    project: Project, redeployed: Project, store: Store
) -> None:
    conv_id = await stale_conversation(project, store)
    replies = await manager(redeployed, store, max_attempts=1).handle(msg("HL-12345", "m-2"))
    assert [r.text for r in replies] == [SORRY]
    failed = (await store.transcript(conv_id))[-2]
    assert (failed.status, await attempts_of(store, failed.id)) == ("failed", 1)


async def test_a_turn_that_fails_once_is_tried_again(project: Project, store: Store) -> None:
    """A flaky failure costs an attempt, not the message: the next attempt answers it."""
    conv = await store.conversation("test", "c4", "customer")
    inbound_id, _ = await store.record_inbound(conv.id, "test", "flaky-1", "/greet", {})
    await TurnAttempts(store).count(inbound_id)  # one turn died already
    await manager(project, store).recover()
    assert await store.inbound_status(inbound_id) == "processed"
    assert await attempts_of(store, inbound_id) == 2
    assert (await store.replies_to(inbound_id))[0].text == "Hello!"


async def test_a_new_message_answered_at_once_costs_no_attempt_write(
    project: Project, store: Store
) -> None:
    """Only a turn that may have run before is counted ahead (recovery, a resend)."""
    replies = await manager(project, store).handle(msg("/greet", "g-1"))
    inbound_id = (await store.message(replies[0].metadata["message_id"])).in_reply_to
    assert inbound_id is not None
    assert await attempts_of(store, inbound_id) == 0
