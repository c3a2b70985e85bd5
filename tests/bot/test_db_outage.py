"""A database that goes away mid-run loses no acknowledged message."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from bot.dialogue.engine import Engine, EngineSettings
from bot.dialogue.project import load_project
from bot.errors import StorageError
from bot.manager import DialogueManager
from bot.messages import InboundMessage
from bot.runtime import NoNLU
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


def msg(text: str, message_id: str) -> InboundMessage:
    return InboundMessage("test", "outage", "customer", text, message_id)


async def test_postgres_outage_mid_run(db_url: str) -> None:
    url = make_url(db_url)
    if url.get_backend_name() != "postgresql":
        pytest.skip("needs a networked database")
    async with Store(db_url) as direct:
        await direct.upgrade()
    proxy = SwitchableProxy(url.host or "127.0.0.1", url.port or 5432)
    await proxy.up()
    proxied = url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
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
