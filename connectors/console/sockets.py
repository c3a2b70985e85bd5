"""The console WebSocket: each socket forwards the console topic while its session lives.

A socket belongs to one login session. Before each frame it is sent, the
session is checked in the store (one read for every open socket, shared by
the frames that arrived before it began), so a logged-out or disabled
agent's socket receives nothing more even when the change was made by
another process (``helpline agents disable``) or another replica. A sweep
closes such sockets without waiting for a frame: at once when a
:data:`SESSIONS_TOPIC` event says sessions ended (logout, disable: every
replica hears it over the bus), and every ``session_check_interval_s``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from aiohttp import web

from bot.errors import StorageError
from connectors.console.net import is_https
from connectors.console.state import CONSOLE_TOPIC, SESSION, STATE, api_error
from connectors.restart import close_for_restart

if TYPE_CHECKING:
    from bot.bus import Subscription
    from connectors.console.state import ConsoleState

_LOGGER = logging.getLogger(__name__)
#: The close code of a socket whose session ended (the console goes to its login page).
SESSION_ENDED = 4001


def same_origin(request: web.Request) -> bool:
    """Whether the request's ``Origin`` is this server's own origin."""
    scheme = "https" if is_https(request) else "http"
    return request.headers.get("Origin") == f"{scheme}://{request.host}"


class SessionGate:
    """Which sessions of the open sockets are live, read once for many frames.

    A caller takes a :meth:`ticket` once it holds a frame, then awaits
    :meth:`live`: the answer comes from a read that began after the ticket
    was taken, and one read answers every ticket taken before it began.

    Args:
        state: The console state (its store).
        sessions: The session hashes of the open sockets, right now.
    """

    def __init__(self, state: ConsoleState, sessions: dict[web.WebSocketResponse, str]) -> None:
        self._state = state
        self._sessions = sessions
        self._lock = asyncio.Lock()
        self._issued = 0
        self._covered = 0
        self._live: set[str] = set()

    def ticket(self) -> int:
        """A number that only a read starting from now on answers."""
        self._issued += 1
        return self._issued

    async def live(self, ticket: int) -> set[str]:
        """The live sessions, read after ``ticket`` was taken.

        Raises:
            StorageError: The store cannot answer.
        """
        async with self._lock:
            if self._covered < ticket:
                covers, hashes = self._issued, sorted(set(self._sessions.values()))
                self._live = await self._state.db.live_sessions(hashes, datetime.now(UTC))
                self._covered = covers
            return self._live


class Sockets:
    """The open console sockets, each with the hash of its session.

    Args:
        state: The console state.
    """

    def __init__(self, state: ConsoleState) -> None:
        self._state = state
        self._open: dict[web.WebSocketResponse, str] = {}
        # Sockets their own pump is closing: cancelling it mid-close would drop the
        # connection instead of finishing the closing handshake.
        self._pump_closing: set[web.WebSocketResponse] = set()
        self.gate = SessionGate(state, self._open)

    def __len__(self) -> int:
        return len(self._open)

    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        """``GET /ws``: the session cookie is checked by the middleware; Origin here."""
        if not same_origin(request):
            raise api_error(403, "origin", "the Origin header must be this server's origin")
        ws = web.WebSocketResponse(heartbeat=30.0)
        await ws.prepare(request)
        # Registered before the pump starts, so every check the pump awaits reads it.
        self._open[ws] = request[SESSION]
        try:
            with request.app[STATE].ctx.bus.subscribe(CONSOLE_TOPIC) as events:
                pump = asyncio.create_task(self._pump(ws, events), name="console-ws-pump")
                try:
                    async for _ in ws:
                        pass  # the browser sends nothing we act on; reading detects close
                finally:
                    if ws not in self._pump_closing:
                        pump.cancel()
                    await asyncio.gather(pump, return_exceptions=True)
        finally:
            self._open.pop(ws, None)
            self._pump_closing.discard(ws)
        return ws

    async def _pump(self, ws: web.WebSocketResponse, events: Subscription) -> None:
        """Forward console frames while the socket's session is live."""
        async for event in events:
            ticket = self.gate.ticket()
            try:
                live = await self.gate.live(ticket)
            except StorageError as exc:
                _LOGGER.warning("Cannot check a console session; closing its socket: %s", exc)
                self._pump_closing.add(ws)
                await close_for_restart(ws)  # it reconnects, and logs in again if need be
                return
            if ws.closed:
                return
            if self._open.get(ws) not in live:
                self._pump_closing.add(ws)
                await _end(ws)
                return
            await ws.send_json({k: v for k, v in event.items() if k != "topic"})

    async def sweep(self) -> int:
        """Close the sockets whose session ended; return how many.

        Raises:
            StorageError: The store cannot answer.
        """
        live = await self.gate.live(self.gate.ticket())
        ended = [ws for ws, hashed in list(self._open.items()) if hashed not in live]
        for ws in ended:
            await _end(ws)
        return len(ended)

    async def watch(self, events: Subscription) -> None:
        """Sweep on each :data:`SESSIONS_TOPIC` event and every check interval, forever."""
        interval = self._state.config.session_check_interval_s
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(interval):
                    await events.get()
            if not self._open:
                continue
            try:
                await self.sweep()
            except StorageError as exc:
                _LOGGER.warning("Cannot check the console sessions now: %s", exc)

    async def close(self) -> None:
        """Close every open socket with a reconnect hint (server stopping)."""
        for ws in list(self._open):
            await close_for_restart(ws)


async def _end(ws: web.WebSocketResponse) -> None:
    """Close a socket whose session was ended (logout, disabled agent, expiry)."""
    if not ws.closed:
        with contextlib.suppress(ConnectionError, RuntimeError):
            await ws.send_json({"type": "session_ended"})
        await ws.close(code=SESSION_ENDED, message=b"session ended")
