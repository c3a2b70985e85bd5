"""Cloud usage rows carry the conversation of the turn that paid for them.

The answerer calls the chain without naming the conversation (``llm`` knows
no store ids); the dialogue manager sets
:data:`~bot.dialogue.answer.TURN_CONVERSATION` for the turn and the chain's
ledger row reads it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from bot.dialogue.answer import TURN_CONVERSATION, Answer
from bot.dialogue.engine import Engine, EngineSettings
from bot.dialogue.project import load_project
from bot.manager import DialogueManager
from bot.messages import InboundMessage
from bot.runtime import NoNLU
from bot.storage.store import Store
from llm.cloud import CloudChain, MemoryLedger
from llm.types import ChatMessage, GenerationSettings
from tests.bot.dialogue.conftest import ScriptedActions
from tests.llm.cloud.conftest import MakeChain
from tests.llm.cloud.fake_openai import FakeOpenAI, ok, stream
from tests.llm.cloud.support import provider_for

GEN = GenerationSettings(max_new_tokens=16)
HELLO = [ChatMessage("user", "Hello?")]
PROJECT = Path(__file__).parents[2] / "bot" / "dialogue" / "project"


async def test_the_turns_conversation_is_recorded(
    fake_openai: FakeOpenAI, chains: MakeChain
) -> None:
    fake_openai.script(ok("one"), stream(["two"]), ok("three"))
    ledger = MemoryLedger()
    chain = await chains(provider_for(fake_openai), ledger=ledger)
    token = TURN_CONVERSATION.set(42)
    try:
        await chain.complete(HELLO, GEN)
        _ = [piece async for piece in chain.stream(HELLO, GEN)]
        await chain.complete(HELLO, GEN, conversation_id=7)  # an explicit id wins
    finally:
        TURN_CONVERSATION.reset(token)
    assert [row["conversation_id"] for row in ledger.rows] == [42, 42, 7]


class CloudAnswerer:
    """Answers with the cloud chain and, like ``llm``'s answerer, names no conversation."""

    def __init__(self, chain: CloudChain) -> None:
        self.chain = chain

    async def answer(
        self, text: str, history: Sequence[dict[str, Any]], slots: dict[str, Any]
    ) -> Answer | None:
        """Return the cloud's completion as a cloud answer."""
        completion = await self.chain.complete([ChatMessage("user", text)], GEN)
        return Answer(completion.text, "cloud", 0.9, provider=completion.provider)


async def test_a_turns_cloud_usage_row_names_its_conversation(
    fake_openai: FakeOpenAI, chains: MakeChain, store: Store, db_url: str
) -> None:
    fake_openai.default = ok("Returns are free within 30 days.", usage=(100, 10))
    chain = await chains(provider_for(fake_openai, price_in_per_m=1.0), ledger=store)
    project = load_project(PROJECT, lambda name: False)
    engine = Engine(project, ScriptedActions(), CloudAnswerer(chain), EngineSettings(seed=1))
    manager = DialogueManager(engine, NoNLU(), store)

    for conv in ("c1", "c2"):
        replies = await manager.handle(
            InboundMessage("test", conv, "customer", "can I return a gift?")
        )
        assert [r.text for r in replies] == ["Returns are free within 30 days."]

    first = await store.conversation("test", "c1", "customer")
    second = await store.conversation("test", "c2", "customer")
    database = create_async_engine(db_url)
    try:
        async with database.connect() as conn:
            result = await conn.execute(
                text("SELECT conversation_id, tokens_in FROM llm_usage ORDER BY id")
            )
            rows = [tuple(row) for row in result]
    finally:
        await database.dispose()
    assert rows == [(first.id, 100), (second.id, 100)]
    assert TURN_CONVERSATION.get() is None  # the manager reset it after each turn
