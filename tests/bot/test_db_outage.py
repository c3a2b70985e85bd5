"""A database that goes away mid-run loses no acknowledged message."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from bot.bus import LocalBus
from bot.dialogue.actions import ActionContext, ActionResult
from bot.dialogue.engine import Engine, EngineSettings
from bot.dialogue.project import load_project
from bot.dispatch import Dispatcher
from bot.errors import StorageError
from bot.manager import DialogueManager
from bot.messages import InboundMessage, OutboundMessage
from bot.replicas.recovery import recover_forever
from bot.runtime import NoNLU
from bot.storage.claims import Claims
from bot.storage.store import Store
from tests.bot.dialogue.conftest import ScriptedActions

PROJECT = Path(__file__).parent / "dialogue" / "project"


class SwitchableProxy:
    """A TCP proxy to the database that can be cut and restored."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.port = 0
        self.server: asyncio.Server | None = None
        self.writers: set[asyncio.StreamWriter] = set()
        self.tasks: set[asyncio.Task[None]] = set()

    async def up(self) -> None:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)
        self.port = int(self.server.sockets[0].getsockname()[1])

    async def down(self) -> None:
        assert self.server is not None
        self.server.close()
        for writer in list(self.writers):
            writer.close()
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        await self.server.wait_closed()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError, asyncio.CancelledError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        writer.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(*self.target)
        self.writers.update((writer, up_writer))
        for coro in (self._pipe(reader, up_writer), self._pipe(up_reader, writer)):
            task = asyncio.create_task(coro)
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)


async def _proxied(db_url: str) -> tuple[SwitchableProxy, str]:
    """A migrated PostgreSQL database behind a proxy that is up; its proxied URL."""
    url = make_url(db_url)
    if url.get_backend_name() != "postgresql":
        pytest.skip("needs a networked database")
    async with Store(db_url) as direct:
        await direct.upgrade()
    proxy = SwitchableProxy(url.host or "127.0.0.1", url.port or 5432)
    await proxy.up()
    proxied = url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    return proxy, proxied


def msg(text: str, message_id: str) -> InboundMessage:
    return InboundMessage("test", "outage", "customer", text, message_id)


async def test_postgres_outage_mid_run(db_url: str) -> None:
    proxy, proxied = await _proxied(db_url)
    project = load_project(PROJECT, lambda name: False)
    engine = Engine(project, ScriptedActions(), None, EngineSettings(seed=1))
    async with Store(proxied, retries=2, retry_delay=0.05) as store:
        manager = DialogueManager(engine, NoNLU(), store)
        assert (await manager.handle(msg("/check_order", "o-1")))[0].text.startswith("What")
        await proxy.down()
        # Not stored, so not acknowledged: the caller sees an error and retries.
        with pytest.raises(StorageError):
            await manager.handle(msg("HL-12345", "o-2"))
        await proxy.up()
        replies = await manager.handle(msg("HL-12345", "o-2"))
        assert replies[0].text == "Shall I go ahead with HL-12345?"
    await proxy.down()
    async with Store(db_url) as direct:
        conv = await direct.conversation("test", "outage", "customer")
        texts = [(m.direction, m.text) for m in await direct.transcript(conv.id)]
        assert texts == [
            ("in", "/check_order"),
            ("out", "What is your order number?"),
            ("in", "HL-12345"),
            ("out", "Shall I go ahead with HL-12345?"),
        ]
        assert await direct.pending_inbound() == []


class GatedActions(ScriptedActions):
    """``action_lookup`` waits at ``gate`` (so the database can go away mid-turn)."""

    def __init__(self) -> None:
        super().__init__()
        self.entered = asyncio.Event()
        self.gate = asyncio.Event()

    async def run(self, name: str, context: ActionContext) -> ActionResult:
        if name == "action_lookup":
            self.entered.set()
            await self.gate.wait()
        return await super().run(name, context)


class Recorded:
    """The ``test`` channel: what it was handed, in order."""

    name = "test"

    def __init__(self) -> None:
        self.sent: list[str] = []
        self.changed = asyncio.Event()

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def send(self, message: OutboundMessage) -> None:
        self.sent.append(message.text)
        self.changed.set()

    async def until(self, count: int) -> None:
        async with asyncio.timeout(20):
            while len(self.sent) < count:
                self.changed.clear()
                await self.changed.wait()


async def test_an_acked_turn_that_failed_in_an_outage_runs_when_the_database_is_back(
    db_url: str,
) -> None:
    proxy, proxied = await _proxied(db_url)
    actions = GatedActions()
    engine = Engine(
        load_project(PROJECT, lambda name: False), actions, None, EngineSettings(seed=1)
    )
    channel = Recorded()
    async with Store(proxied, retries=1, retry_delay=0.05) as store:
        dispatcher = Dispatcher(store, LocalBus(), retry_base_s=0.05)
        dispatcher.register(channel)
        dispatcher.bind(DialogueManager(engine, NoNLU(), store))
        claims = Claims(store, "single", 30)  # what a lone replica's runtime sets up
        dispatcher.add_background(lambda: recover_forever(dispatcher, claims, 0.3), "recovery")
        await dispatcher.start()
        try:
            await dispatcher.submit(msg("/check_order", "o-1"))
            await channel.until(1)
            acked = await dispatcher.submit(msg("HL-12345", "o-2"))  # stored: acknowledged
            await actions.entered.wait()
            await proxy.down()
            actions.gate.set()  # the turn's commit now fails
            await dispatcher.drain()
            await proxy.up()
            await channel.until(2)  # no restart: the recovery loop ran the turn
            async with asyncio.timeout(10):  # and marks the reply delivered
                while True:
                    if not await store.undelivered("test"):
                        break
                    await asyncio.sleep(0.05)
        finally:
            await dispatcher.stop()
    await proxy.down()
    assert channel.sent == ["What is your order number?", "Shall I go ahead with HL-12345?"]
    async with Store(db_url) as direct:
        assert await direct.inbound_status(acked.inbound_id) == "processed"
        assert await direct.pending_inbound() == []
        assert await direct.undelivered("test") == []
