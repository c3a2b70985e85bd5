"""The IMAP session is closed even when LOGOUT never gets an answer.

Dovecot always answers LOGOUT, so a small scripted IMAP server stands in for a
server that has stalled: it speaks enough IMAP4rev1 for a session (greeting,
CAPABILITY, LOGIN, SELECT, UID SEARCH, IDLE/DONE) and ignores LOGOUT.
"""

from __future__ import annotations

import asyncio
import contextlib

from connectors.email import EmailConfig
from connectors.email.config import ImapSettings
from connectors.email.imap import MailboxWatcher


class StalledServer:
    """Answers a session's commands but never LOGOUT; records when the client hangs up."""

    def __init__(self) -> None:
        self.port = 0
        self.logout = asyncio.Event()
        self.closed = asyncio.Event()
        self.server: asyncio.Server | None = None

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = int(self.server.sockets[0].getsockname()[1])

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"* OK [CAPABILITY IMAP4rev1 IDLE] ready\r\n")
        idle_tag = b""
        with contextlib.suppress(ConnectionError):
            while line := await reader.readline():
                tag, _, rest = line.strip().partition(b" ")
                command = rest.split(b" ")[0].upper()
                if tag.upper() == b"DONE":
                    writer.write(idle_tag + b" OK IDLE terminated\r\n")
                elif command == b"CAPABILITY":
                    writer.write(b"* CAPABILITY IMAP4rev1 IDLE\r\n" + tag + b" OK done\r\n")
                elif command == b"SELECT":
                    writer.write(b"* 0 EXISTS\r\n* OK [UIDVALIDITY 1] ok\r\n")
                    writer.write(tag + b" OK [READ-WRITE] selected\r\n")
                elif command == b"UID":
                    writer.write(b"* SEARCH\r\n" + tag + b" OK searched\r\n")
                elif command == b"IDLE":
                    idle_tag = tag
                    writer.write(b"+ idling\r\n")
                elif command == b"LOGOUT":
                    self.logout.set()  # and no answer: the server has stalled
                else:
                    writer.write(tag + b" OK done\r\n")
                await writer.drain()
        self.closed.set()
        writer.close()

    async def stop(self) -> None:
        assert self.server is not None
        self.server.close()


async def test_a_second_cancel_during_logout_still_closes_the_socket() -> None:
    server = StalledServer()
    await server.start()
    config = EmailConfig(
        address="support@helpline.test",
        imap=ImapSettings(port=server.port, user="bot", password="x", ssl=False),
        timeout_s=10,
    )
    watcher = MailboxWatcher(config, lambda raw: asyncio.sleep(0))
    task = asyncio.create_task(watcher.run())
    try:
        await asyncio.wait_for(watcher.idling.wait(), 10)
        task.cancel()  # the app stops: the watcher logs out, and LOGOUT stalls
        await asyncio.wait_for(server.logout.wait(), 10)
        task.cancel()  # stopped again while it waits for the answer
        with contextlib.suppress(asyncio.CancelledError):
            await task
        # A deadline for a hang, not a timing assertion: the close is immediate.
        await asyncio.wait_for(server.closed.wait(), 5)
    finally:
        task.cancel()
        await server.stop()
