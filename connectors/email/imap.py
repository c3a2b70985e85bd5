r"""The inbound side: watch an IMAP mailbox and hand each new mail over.

One session: connect (TLS, STARTTLS or plain), log in, select the mailbox,
then repeat: fetch every UNSEEN mail with ``BODY.PEEK[]`` (which leaves the
flags alone), hand it to the handler, and only when the handler returns set
``\\Seen``; then wait with IDLE (when the server offers it and ``idle`` is
on) or sleep ``poll_interval_s``. An IDLE lasts at most ``poll_interval_s``,
so a lost push only delays a mail. A dropped connection, a timeout or a
failing handler ends the session; the next one starts after a backoff that
doubles up to ``reconnect_max_s``.

aioimaplib errors are translated here and nowhere else.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import re
import ssl
from typing import TYPE_CHECKING, Any

import aioimaplib

from bot.errors import ChannelError, StorageError

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from connectors.email.config import EmailConfig, ImapSettings

_LOGGER = logging.getLogger(__name__)
_UIDS = re.compile(rb"\d+")
#: RFC 2177: servers may drop an IDLE after 30 minutes, so it is renewed sooner.
MAX_IDLE_S = 25 * 60


class ImapError(ChannelError):
    """The IMAP server refused a command or went away."""


def raise_if_cancelled() -> None:
    """Re-raise a cancellation that a library turned into another error.

    Python 3.11's ``asyncio.wait_for`` (used by aioimaplib and aiosmtplib)
    returns the inner result instead of raising ``CancelledError`` when both
    happen at once, e.g. a refused connection while the app stops.
    """
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


def tls_context(ca_file: Any) -> ssl.SSLContext:
    """A verifying client context; ``ca_file`` adds a private CA."""
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    if ca_file is not None:
        context.load_verify_locations(cafile=str(ca_file))
    return context


class MailboxWatcher:
    """Runs IMAP sessions until cancelled, reconnecting with backoff.

    Args:
        config: The email section.
        handle: Called with each unseen mail's bytes; the mail is marked seen
            once it returns. If it raises, the mail stays unseen.
    """

    def __init__(self, config: EmailConfig, handle: Callable[[bytes], Awaitable[None]]) -> None:
        self.config = config
        self.settings: ImapSettings = config.imap
        self.handle = handle
        needs_tls = self.settings.ssl or self.settings.starttls
        self._tls = tls_context(self.settings.ca_file) if needs_tls else None
        self.sessions = 0
        self.idling = asyncio.Event()  # set while an IDLE waits (tests, health)
        self._lost = asyncio.Event()
        self._was_up = False

    async def run(self) -> None:
        """Watch the mailbox forever (until cancelled)."""
        delay = self.config.reconnect_min_s
        while True:
            self._was_up = False
            try:
                await self._session()
            except StorageError as exc:
                raise_if_cancelled()
                _LOGGER.warning("The store refused a mail; it stays unseen: %s", exc)
            except (ImapError, OSError, TimeoutError, aioimaplib.AioImapException) as exc:
                raise_if_cancelled()
                _LOGGER.warning("The IMAP session ended: %s: %s", type(exc).__name__, exc)
            except Exception:  # a bug must not stop the mailbox for good
                raise_if_cancelled()
                _LOGGER.exception("The IMAP session failed unexpectedly.")
            if self._was_up:
                delay = self.config.reconnect_min_s
            wait = random.uniform(delay / 2, delay)  # not cryptographic
            _LOGGER.info("Reconnecting to IMAP in %.1f s.", wait)
            await asyncio.sleep(wait)
            delay = min(delay * 2, self.config.reconnect_max_s)

    async def _session(self) -> None:
        self._lost = asyncio.Event()  # per session: a late callback of the last one is harmless
        client = await self._connect()
        try:
            await self._login(client)
            self.sessions += 1
            self._was_up = True
            use_idle = self.config.idle and client.has_capability("IDLE")
            _LOGGER.info(
                "Watching %s on %s with %s.",
                self.settings.mailbox,
                self.settings.host,
                "IDLE" if use_idle else f"polling every {self.config.poll_interval_s} s",
            )
            while True:
                await self._drain(client)
                await (self._idle(client) if use_idle else self._sleep())
        finally:
            self.idling.clear()
            await self._close(client)

    async def _connect(self) -> aioimaplib.IMAP4:
        settings = self.settings
        client = aioimaplib.IMAP4(
            host=settings.host,
            port=settings.port,
            timeout=self.config.timeout_s,
            conn_lost_cb=lambda exc, lost=self._lost: lost.set(),
            ssl_context=self._tls if settings.ssl else None,
        )
        await client.wait_hello_from_server()
        if settings.starttls:
            await self._starttls(client)
        return client

    async def _starttls(self, client: aioimaplib.IMAP4) -> None:
        protocol = client.protocol
        if "STARTTLS" not in protocol.capabilities:
            raise ImapError("the server does not offer STARTTLS")
        command = aioimaplib.Command("STARTTLS", protocol.new_tag(), loop=protocol.loop)
        response = await asyncio.wait_for(protocol.execute(command), self.config.timeout_s)
        _expect_ok(response, "STARTTLS")
        loop = asyncio.get_running_loop()
        protocol.transport = await loop.start_tls(
            protocol.transport,
            protocol,
            self._tls or tls_context(self.settings.ca_file),
            server_hostname=self.settings.host,
        )
        await asyncio.wait_for(protocol.capability(), self.config.timeout_s)

    async def _login(self, client: aioimaplib.IMAP4) -> None:
        password = self.settings.password.get_secret_value()
        _expect_ok(await client.login(self.settings.user, password), "LOGIN")
        _expect_ok(await client.select(self.settings.mailbox), "SELECT")

    async def _drain(self, client: aioimaplib.IMAP4) -> None:
        """Hand over every unseen mail, marking each seen once it was taken."""
        response = await client.uid_search("UNSEEN", charset=None)
        _expect_ok(response, "UID SEARCH")
        uids = [int(u) for line in response.lines[:-1] for u in _UIDS.findall(line)]
        for uid in sorted(uids):
            raw = await self._fetch(client, uid)
            if raw is None:
                continue  # expunged meanwhile
            _LOGGER.debug("Fetched mail UID %d (%d bytes).", uid, len(raw))
            await self.handle(raw)
            stored = await client.uid("store", str(uid), "+FLAGS.SILENT", r"(\Seen)")
            _expect_ok(stored, "UID STORE")

    async def _fetch(self, client: aioimaplib.IMAP4, uid: int) -> bytes | None:
        response = await client.uid("fetch", str(uid), "BODY.PEEK[]")
        _expect_ok(response, "UID FETCH")
        for line in response.lines:
            if isinstance(line, bytearray):
                return bytes(line)
        return None

    async def _idle(self, client: aioimaplib.IMAP4) -> None:
        """Wait for the server to announce new mail (or the IDLE to time out)."""
        timeout = min(self.config.poll_interval_s, MAX_IDLE_S)
        idle = await client.idle_start(timeout=timeout)
        self.idling.set()
        try:
            while not await self._announced(client, timeout):
                pass
        finally:
            self.idling.clear()
        if self._lost.is_set():
            idle.cancel()
            raise ImapError("the connection was lost during IDLE")
        client.idle_done()
        await asyncio.wait_for(idle, self.config.timeout_s)

    async def _announced(self, client: aioimaplib.IMAP4, wait_s: float) -> bool:
        """Wait for one push; whether it calls for a new scan."""
        push = asyncio.ensure_future(client.wait_server_push(wait_s + self.config.timeout_s))
        lost = asyncio.ensure_future(self._lost.wait())
        try:
            await asyncio.wait({push, lost}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (push, lost):
                task.cancel()
        if self._lost.is_set() or not push.done() or push.cancelled():
            return True
        lines = push.result()
        if lines == aioimaplib.STOP_WAIT_SERVER_PUSH:
            return True
        if any(b"BYE" in line for line in lines):
            self._lost.set()
        return self._lost.is_set() or any(b"EXISTS" in line for line in lines)

    async def _sleep(self) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._lost.wait(), self.config.poll_interval_s)
        if self._lost.is_set():
            raise ImapError("the connection was lost")

    async def _close(self, client: aioimaplib.IMAP4) -> None:
        """Log out politely if the session is up; close the socket whatever happens.

        The close is in ``finally``: a second cancellation during LOGOUT would
        otherwise leave the session open on the server, which counts it against
        the user's connection limit until it times out.
        """
        try:
            if not self._lost.is_set():
                with contextlib.suppress(aioimaplib.AioImapException, OSError, TimeoutError):
                    if client.has_pending_idle():
                        client.idle_done()  # LOGOUT waits for the IDLE to end
                    await asyncio.wait_for(client.logout(), 2.0)
        finally:
            transport = client.protocol.transport
            if transport is not None:
                transport.close()
            for task in (*client.tasks, *client.protocol.tasks):
                task.cancel()


def _expect_ok(response: Any, command: str) -> None:
    if response.result != "OK":
        detail = b" ".join(bytes(line) for line in response.lines[-1:]).decode(errors="replace")
        raise ImapError(f"{command} failed: {response.result} {detail}")
