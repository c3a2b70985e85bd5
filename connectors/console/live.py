"""Live console events: the relay from the bus, and the console WebSocket.

One owned relay task reads every bus event (the :data:`bot.bus.ALL`
topic), turns conversation events into console frames (a message with its
conversation's new summary; customer and agent typing; new handoffs) and
publishes them on the console topic. Each console socket forwards the
console topic to its browser.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from typing import TYPE_CHECKING

from aiohttp import web

from bot.errors import StorageError
from connectors.console.auth import is_https
from connectors.console.shapes import messages_json, summary_json
from connectors.console.state import CONSOLE_TOPIC, STATE, api_error
from connectors.restart import close_for_restart

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from bot.bus import Subscription
    from connectors.console.state import ConsoleState, Json

_LOGGER = logging.getLogger(__name__)
HANDOFF_RESPONSE = "utter_human_handoff"


class Relay:
    """Turns bus events of conversations into console frames.

    Args:
        state: The console state.
        on_handoff: Called with the summary of each new handoff.
        watching: Whether any console is open; without one only handoffs are relayed.
    """

    def __init__(
        self,
        state: ConsoleState,
        on_handoff: Callable[[Json], Awaitable[None]],
        watching: Callable[[], bool] = lambda: True,
    ) -> None:
        self._watching = watching
        self.state = state
        self._on_handoff = on_handoff

    async def run(self, events: Subscription) -> None:
        """Forward events until cancelled; a storage error skips one event."""
        async for event in events:
            if event.get("topic") == CONSOLE_TOPIC:
                continue
            try:
                await self.forward(event)
            except StorageError as exc:
                _LOGGER.warning("A console event was dropped: %s", exc)

    async def forward(self, event: Json) -> None:
        """Relay one bus event."""
        kind = event.get("type")
        if kind == "message" and isinstance(event.get("id"), int):
            # With no console open, only new handoffs need work (the Slack alert):
            # the relay's reads must not slow every turn down.
            if self._watching() or _is_handoff(event):
                await self._message(int(event["id"]))
        elif kind == "typing" and event.get("who") in ("customer", "agent") and self._watching():
            await self._typing(event)

    async def _message(self, message_id: int) -> None:
        store = self.state.ctx.store
        stored = await store.message(message_id)
        cid = stored.conversation_id
        turns = await store.turns(cid) if stored.in_reply_to is not None else []
        message = messages_json([stored], turns)[0]
        self.state.publish({"type": "message", "conversation_id": cid, "message": message})
        row = await self.state.db.summary(cid)
        if row is None:
            return
        summary = summary_json(row)
        self.state.publish({"type": "conversation", "conversation": summary})
        handoff = stored.direction == "out" and stored.metadata.get("response") == HANDOFF_RESPONSE
        if handoff and summary["status"] == "open":
            self.state.publish({"type": "handoff", "conversation": summary})
            await self._on_handoff(summary)

    async def _typing(self, event: Json) -> None:
        parts = str(event.get("topic", "")).split(":", 2)
        if len(parts) != 3 or parts[0] != "conv":
            return
        cid = await self.state.db.conversation_id(parts[1], parts[2])
        if cid is None:
            return
        frame: Json = {"type": "typing", "conversation_id": cid, "who": event["who"]}
        if isinstance(event.get("name"), str):
            frame["name"] = event["name"]
        self.state.publish(frame)


def _is_handoff(event: Json) -> bool:
    """Whether a bus message event is the bot's handoff reply."""
    metadata = event.get("metadata")
    response = metadata.get("response") if isinstance(metadata, dict) else None
    return event.get("direction") == "out" and response == HANDOFF_RESPONSE


def same_origin(request: web.Request) -> bool:
    """Whether the request's ``Origin`` is this server's own origin."""
    scheme = "https" if is_https(request) else "http"
    return request.headers.get("Origin") == f"{scheme}://{request.host}"


class Sockets:
    """The open console sockets, closed when the console stops."""

    def __init__(self) -> None:
        self._open: weakref.WeakSet[web.WebSocketResponse] = weakref.WeakSet()

    def __len__(self) -> int:
        return len(self._open)

    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        """``GET /ws``: the session cookie is checked by the middleware; Origin here."""
        if not same_origin(request):
            raise api_error(403, "origin", "the Origin header must be this server's origin")
        state = request.app[STATE]
        ws = web.WebSocketResponse(heartbeat=30.0)
        await ws.prepare(request)
        self._open.add(ws)
        with state.ctx.bus.subscribe(CONSOLE_TOPIC) as events:
            pump = asyncio.create_task(_pump(ws, events), name="console-ws-pump")
            try:
                async for _ in ws:
                    pass  # the browser sends nothing we act on; reading detects close
            finally:
                pump.cancel()
                await asyncio.gather(pump, return_exceptions=True)
        return ws

    async def close(self) -> None:
        """Close every open socket with a reconnect hint (server stopping)."""
        for ws in list(self._open):
            await close_for_restart(ws)


async def _pump(ws: web.WebSocketResponse, events: Subscription) -> None:
    async for event in events:
        frame = {k: v for k, v in event.items() if k != "topic"}
        if ws.closed:
            return
        await ws.send_json(frame)
