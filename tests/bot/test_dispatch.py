"""The asynchronous channel path over a real store: submit, turn, outbox, bus."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from bot.bus import LocalBus, conversation_topic
from bot.dialogue.answer import TOKEN_SINK, Answer
from bot.dialogue.engine import Engine, EngineSettings
from bot.dialogue.project import Project, load_project
from bot.dispatch import Dispatcher
from bot.errors import ConfigError, DeliveryError
from bot.manager import DialogueManager
from bot.messages import InboundMessage, OutboundMessage
from bot.runtime import NoNLU
from bot.storage.store import Store
from tests.bot.dialogue.conftest import ScriptedActions

PROJECT = Path(__file__).parent / "dialogue" / "project"


class CollectingChannel:
    """A channel that records deliveries and fails as told."""

    name = "test"

    def __init__(self, failures: Sequence[DeliveryError] = ()) -> None:
        self.sent: list[OutboundMessage] = []
        self.attempts = 0
        self._failures = list(failures)
        self.got = asyncio.Event()

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass

    async def send(self, message: OutboundMessage) -> None:
        self.attempts += 1
        if self._failures:
            raise self._failures.pop(0)
        self.sent.append(message)
        self.got.set()


class DraftingAnswerer:
    """Streams its answer through the token sink, as the LLM answerer does."""

    async def answer(
        self, text: str, history: Sequence[dict[str, Any]], slots: dict[str, Any]
    ) -> Answer | None:
        sink = TOKEN_SINK.get()
        for piece in ("Returns ", "are ", "free."):
            if sink is not None:
                sink(piece)
        return Answer("Returns are free.", route="local", confidence=0.9)


@pytest.fixture(scope="module")
def project() -> Project:
    return load_project(PROJECT, lambda name: False)


@pytest.fixture(autouse=True)
def _guard_the_loop(no_blocking: None) -> None:
    """Every test here fails if it blocks the event loop."""


@pytest.fixture
def bus() -> LocalBus:
    return LocalBus()


@pytest.fixture
async def dispatcher(project: Project, store: Store, bus: LocalBus) -> AsyncIterator[Dispatcher]:
    engine = Engine(project, ScriptedActions(), DraftingAnswerer(), EngineSettings(seed=1))
    dispatcher = Dispatcher(store, bus, retry_base_s=0.01, max_attempts=3)
    dispatcher.bind(DialogueManager(engine, NoNLU(), store))
    yield dispatcher
    await dispatcher.stop()


def msg(text: str, message_id: str) -> InboundMessage:
    return InboundMessage("test", "c1", "customer", text, message_id)


async def wait_for(channel: CollectingChannel, count: int) -> None:
    async with asyncio.timeout(20):
        while len(channel.sent) < count:
            channel.got.clear()
            await channel.got.wait()


async def test_submit_stores_then_delivers_once(dispatcher: Dispatcher, store: Store) -> None:
    channel = CollectingChannel()
    dispatcher.register(channel)
    received = await dispatcher.submit(msg("/check_order", "m1"))
    assert received.created
    assert (await store.message(received.inbound_id)).text == "/check_order"
    await wait_for(channel, 1)
    assert [m.text for m in channel.sent] == ["What is your order number?"]
    again = await dispatcher.submit(msg("/check_order", "m1"))  # a channel retry
    assert not again.created
    await dispatcher.drain()
    assert len(channel.sent) == 1
    assert await store.undelivered("test") == []


async def test_transient_failures_are_retried(dispatcher: Dispatcher, store: Store) -> None:
    channel = CollectingChannel([DeliveryError("429", retry_after=0.01), DeliveryError("500")])
    dispatcher.register(channel)
    await dispatcher.submit(msg("/check_order", "m1"))
    await wait_for(channel, 1)
    await dispatcher.drain()  # the delivered mark follows send()
    assert channel.attempts == 3
    assert len(channel.sent) == 1
    assert await store.undelivered("test") == []


async def test_giving_up_leaves_the_reply_for_the_next_sweep(
    dispatcher: Dispatcher, store: Store
) -> None:
    channel = CollectingChannel([DeliveryError("down")] * 3)
    dispatcher.register(channel)
    received = await dispatcher.submit(msg("/check_order", "m1"))
    async with asyncio.timeout(20):
        await dispatcher.drain()
    assert channel.attempts == 3
    pending = await store.undelivered("test")
    assert [m.in_reply_to for m in pending] == [received.inbound_id]
    assert await dispatcher.sweep("test") == 1  # the peer is back
    assert [m.text for m in channel.sent] == ["What is your order number?"]
    assert await store.undelivered("test") == []


async def test_permanent_failure_is_not_retried(dispatcher: Dispatcher) -> None:
    channel = CollectingChannel([DeliveryError("channel_not_found", permanent=True)])
    dispatcher.register(channel)
    await dispatcher.submit(msg("/check_order", "m1"))
    async with asyncio.timeout(20):
        await dispatcher.drain()
    assert channel.attempts == 1
    assert channel.sent == []


async def test_start_delivers_what_an_earlier_run_left(
    dispatcher: Dispatcher, store: Store
) -> None:
    conv = await store.conversation("test", "c1", "customer")
    await store.record_outbound(conv.id, {"text": "left behind"})
    channel = CollectingChannel()
    dispatcher.register(channel)
    await dispatcher.start()
    await wait_for(channel, 1)
    assert channel.sent[0].text == "left behind"


async def test_push_delivers_an_agent_message(dispatcher: Dispatcher, store: Store) -> None:
    channel = CollectingChannel()
    dispatcher.register(channel)
    conv = await store.conversation("test", "c1", "customer")
    await dispatcher.push(
        conv.id, {"text": "Hi, Ana here.", "metadata": {"agent": {"name": "Ana"}}}
    )
    await wait_for(channel, 1)
    assert channel.sent[0].metadata["agent"] == {"name": "Ana"}


async def test_live_events_include_drafted_tokens(dispatcher: Dispatcher, bus: LocalBus) -> None:
    dispatcher.register(CollectingChannel())
    with bus.subscribe(conversation_topic("test", "c1")) as events:
        await dispatcher.submit(msg("can I return a gift?", "m1"))
        seen: list[dict[str, Any]] = []
        async with asyncio.timeout(20):
            while not (seen and seen[-1].get("direction") == "out"):
                seen.append(await events.get())
    kinds = [(e["type"], e.get("direction") or e.get("text")) for e in seen]
    assert kinds == [
        ("message", "in"),
        ("typing", None),
        ("token", "Returns "),
        ("token", "are "),
        ("token", "free."),
        ("message", "out"),
    ]
    assert seen[-1]["text"] == "Returns are free."


def test_two_channels_cannot_share_a_name(store: Store) -> None:
    dispatcher = Dispatcher(store, LocalBus())
    dispatcher.register(CollectingChannel())
    with pytest.raises(ConfigError, match="two channels"):
        dispatcher.register(CollectingChannel())


async def test_a_slow_subscriber_loses_old_events_not_the_turn() -> None:
    bus = LocalBus(max_backlog=2)
    with bus.subscribe("t") as events:
        for i in range(5):
            bus.publish("t", {"type": "n", "i": i})
        got = [await events.get() for _ in range(2)]
        assert [e["type"] for e in got] == ["overflow", "n"]
        assert got[1]["i"] == 4  # the newest event survives
    assert bus.subscribers("t") == 0
