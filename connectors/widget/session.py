"""One visitor's socket: hello, replay of what it missed, live events, messages in.

Delivery to the browser is "stored, then pushed": the dispatcher stores every
reply and publishes it on the conversation's bus topic; each open socket of
the visitor (one per tab) forwards it. A socket that was closed asks, when it
comes back, for everything after the last server id it saw, and gets it
replayed from the transcript. Each socket sends a message id at most once;
the client drops ids it already shows.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from aiohttp import WSMsgType

from bot import metrics
from bot.bus import conversation_topic
from bot.errors import InvalidInput, StorageError
from bot.storage import visitor_secrets
from connectors.widget.access import Access, admit, claim, short
from connectors.widget.identity import verify
from connectors.widget.translate import (
    CHANNEL,
    ClientMessage,
    FrameError,
    Hello,
    Peer,
    Ping,
    Typing,
    check_text,
    event_frame,
    parse_frame,
    stored_frame,
    to_inbound,
)

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator, AsyncIterator, Sequence

    from aiohttp import web

    from bot.bus import Subscription
    from bot.channels import ConnectorContext
    from connectors.widget.config import WidgetConfig
    from connectors.widget.translate import Frame, FrameMiddleware

_LOGGER = logging.getLogger(__name__)
TYPING_INTERVAL_S = 1.0


class WidgetSession:
    """Serves one WebSocket until either side closes it.

    Args:
        ws: The prepared socket.
        ctx: The connector context (submit, bus, store, server settings).
        config: The widget's config section.
        middleware: Checks each message passes before it is submitted.
        ip: The client's address, for per-IP limits.
    """

    def __init__(
        self,
        ws: web.WebSocketResponse,
        ctx: ConnectorContext,
        config: WidgetConfig,
        middleware: Sequence[FrameMiddleware],
        ip: str,
    ) -> None:
        self.ws = ws
        self.ctx = ctx
        self.config = config
        self.middleware = middleware
        self.peer = Peer("", ip)
        self.access = Access("", "", None)
        self._sent: set[int] = set()
        self._lock = asyncio.Lock()
        self._typed_at = -TYPING_INTERVAL_S

    async def run(self) -> None:
        """Wait for the hello, then serve the socket until it closes."""
        async with contextlib.aclosing(self._frames()) as frames:
            hello = await self._hello(frames)
            if hello is not None:
                await self._open(hello, frames)

    async def _open(self, hello: Hello, frames: AsyncIterator[Frame]) -> None:
        identity = verify(self.config.identity_secret, hello.user_id, hello.user_hash)
        try:
            self.access = await admit(self.ctx.store, hello, identity)
        except StorageError as exc:
            _LOGGER.warning("Cannot open a widget conversation now: %s", exc)
            await self._error(FrameError("unavailable", "try again in a moment", retry=True))
            return  # the socket closes; the widget reconnects with backoff
        self.peer = Peer(self.access.visitor, self.peer.ip, identity, self.access.key)
        with self.ctx.bus.subscribe(conversation_topic(CHANNEL, self.access.key)) as events:
            # Subscribed before the replay reads the store: nothing falls in between.
            await self._greet(hello)
            name = f"widget:{short(self.access.key)}"
            pump = asyncio.create_task(self._pump(events), name=name)
            try:
                await self._serve(frames)
            finally:
                pump.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await pump

    async def _frames(self) -> AsyncGenerator[Frame, None]:
        """Yield the client's valid frames; answer invalid ones with an error frame."""
        async for msg in self.ws:
            if msg.type is WSMsgType.ERROR:
                _LOGGER.info("A widget socket failed: %s", self.ws.exception())
                return
            try:
                if msg.type is not WSMsgType.TEXT:
                    raise FrameError("malformed", "frames must be JSON text")
                yield parse_frame(msg.data, self.config.max_frame_bytes)
            except FrameError as exc:
                await self._error(exc)

    async def _hello(self, frames: AsyncIterator[Frame]) -> Hello | None:
        async for frame in frames:
            if isinstance(frame, Hello):
                return frame
            await self._error(FrameError("hello_first", "send a hello frame first"))
        return None

    async def _greet(self, hello: Hello) -> None:
        online = self.config.is_open(datetime.now(UTC))
        frame: dict[str, Any] = {
            "type": "hello",
            "visitor": self.access.visitor,
            "verified": self.peer.identity.verified,
            "online": online,
            "offline_message": None if online else self.config.offline_message,
            "max_chars": self.ctx.server.max_message_chars,
        }
        if self.access.issued:
            frame["secret"] = self.access.secret
        await self._send(frame)
        resume = hello.resume and not self.access.renewed
        last = await self._replay(hello.last_id) if resume else hello.last_id
        await self._send({"type": "synced", "last_id": last})

    async def _replay(self, after: int) -> int:
        """Send the stored messages after id ``after``; return the last id now known."""
        store = self.ctx.store
        try:
            conversation_id = self.access.conversation_id
            if conversation_id is None:  # created since the hello, perhaps
                conversation = await visitor_secrets.find(store, CHANNEL, self.access.key)
                if conversation is None:
                    return after
                conversation_id = conversation.id
            transcript = await store.transcript(conversation_id)
        except StorageError as exc:
            _LOGGER.warning("Cannot replay a widget conversation now: %s", exc)
            await self._error(FrameError("unavailable", "history is unavailable", retry=True))
            return after
        missed = [m for m in transcript if m.id > after][-self.config.history_limit :]
        for stored in missed:
            await self._deliver(stored_frame(stored))
        return max([after, *(m.id for m in missed)])

    async def _pump(self, events: Subscription) -> None:
        """Forward the conversation's live events to the socket."""
        async for event in events:
            if event.get("type") == "overflow":
                await self._replay(0)  # events were dropped: resend what is missing
                continue
            frame = event_frame(event)
            if frame is None:
                continue
            if frame["type"] == "message":
                await self._deliver(frame)
            else:
                await self._send(frame)

    async def _serve(self, frames: AsyncIterator[Frame]) -> None:
        async for frame in frames:
            if isinstance(frame, ClientMessage):
                await self._on_message(frame)
            elif isinstance(frame, Ping):
                await self._send({"type": "pong", "nonce": frame.nonce})
            elif isinstance(frame, Typing):
                self._typing()
            else:
                await self._error(FrameError("unexpected", "the session is already open"))

    def _typing(self) -> None:
        """Tell the agent console the customer is typing (at most once a second)."""
        now = time.monotonic()
        if now - self._typed_at < TYPING_INTERVAL_S or not self.peer.key:
            return
        self._typed_at = now
        topic = conversation_topic(CHANNEL, self.peer.key)
        self.ctx.bus.publish(topic, {"type": "typing", "who": "customer"})

    async def _on_message(self, message: ClientMessage) -> None:
        try:
            check_text(message, self.ctx.server.max_message_chars)
            await self._through(message, 0)
        except FrameError as exc:
            await self._error(exc)

    async def _through(self, message: ClientMessage, index: int) -> None:
        """Run the middleware from ``index`` on; the last step submits."""
        if index == len(self.middleware):
            await self._submit(message)
            return
        await self.middleware[index](message, self.peer, lambda: self._through(message, index + 1))

    async def _submit(self, message: ClientMessage) -> None:
        """Store the message, then acknowledge it (never before it is durable).

        A message the schema can never hold gets a final ``invalid`` error;
        only an outage gets one the client retries.
        """
        try:
            await self._claim()
            received = await self.ctx.submit(to_inbound(self.peer, message))
        except InvalidInput as exc:
            _LOGGER.info("A widget message was refused for good: %s", exc)
            raise FrameError("invalid", str(exc), message.client_id) from exc
        except StorageError as exc:
            _LOGGER.warning("A widget message was not stored; the client retries: %s", exc)
            detail = "the message could not be stored; it will be sent again"
            raise FrameError("unavailable", detail, message.client_id, retry=True) from exc
        await self._send(
            {
                "type": "ack",
                "client_id": message.client_id,
                "id": received.inbound_id,
                "duplicate": not received.created,
            }
        )

    async def _claim(self) -> None:
        """Before the first message, store the digest of this session's secret."""
        if self.access.claimed:
            return
        conversation_id = await claim(self.ctx.store, self.access)
        self.access = replace(self.access, conversation_id=conversation_id, claimed=True)

    async def _deliver(self, frame: dict[str, Any]) -> None:
        """Send a ``message`` frame unless this socket sent that id already."""
        if frame["id"] in self._sent:
            return
        self._sent.add(frame["id"])
        await self._send(frame)

    async def _error(self, error: FrameError) -> None:
        metrics.HTTP_ERRORS.labels(CHANNEL, error.reason).inc()
        await self._send(error.frame())

    async def _send(self, frame: dict[str, Any]) -> None:
        """Send one frame; a socket closing under us is not an error."""
        if self.ws.closed:
            return
        async with self._lock:
            with contextlib.suppress(ConnectionResetError):
                await self.ws.send_json(frame)
