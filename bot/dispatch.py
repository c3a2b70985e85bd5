"""The path of a message on channels that answer asynchronously.

Widget, Slack and email connectors hand a message to :meth:`Dispatcher.submit`.
It is stored before ``submit`` returns, so the connector may acknowledge it
(Slack's 3 s ack, the widget's ack frame, IMAP's seen flag). The turn then runs
in a task the dispatcher owns, and its replies go through the outbox: each is
handed to its channel's ``send`` and marked delivered only once ``send``
returned, with retries and backoff. Replies still pending at startup (a crash,
a peer that was down) are delivered then.

Every inbound and outbound message, and the tokens of an answer being
generated, are published on the bus for live views.
"""

from __future__ import annotations

import asyncio
import logging
import random
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from bot import metrics, tracing
from bot.batching import Coalescer
from bot.bus import conversation_topic
from bot.channels import CheckedChannel
from bot.dialogue.answer import TOKEN_SINK
from bot.errors import ConfigError, DeliveryError, ShuttingDown, StorageError
from bot.lifecycle import Service
from bot.messages import Button, OutboundMessage
from bot.tasks import OwnedTasks

if TYPE_CHECKING:
    from collections.abc import Callable, Coroutine

    from bot.bus import Bus
    from bot.channels import Channel
    from bot.manager import DialogueManager
    from bot.messages import InboundMessage
    from bot.storage.claims import Claims
    from bot.storage.records import Received, StoredMessage
    from bot.storage.store import Store

_LOGGER = logging.getLogger(__name__)


class Dispatcher(Service):
    """Runs turns in owned tasks and delivers replies through the outbox.

    Args:
        store: Where messages live.
        bus: Where live events go.
        retry_base_s: The first retry delay; it doubles on each attempt.
        retry_max_s: The longest delay between attempts.
        max_attempts: Attempts per reply before it is left for the next sweep.
        claims: With several replicas, a reply is delivered only by the
            replica that claims it (and renews the claim before each attempt).
    """

    def __init__(
        self,
        store: Store,
        bus: Bus,
        *,
        retry_base_s: float = 0.5,
        retry_max_s: float = 60.0,
        max_attempts: int = 8,
        claims: Claims | None = None,
    ) -> None:
        self.store = store
        self.bus = bus
        self._retry_base_s = retry_base_s
        self._retry_max_s = retry_max_s
        self._max_attempts = max_attempts
        self._channels: dict[str, Channel] = {}
        self._manager: DialogueManager | None = None
        self._tasks = OwnedTasks()
        self._loops = OwnedTasks()
        self._accepting = True
        self._inflight: set[int] = set()
        self.claims = claims
        # Delivered marks of concurrent deliveries share one UPDATE.
        self._marks: Coalescer[int] = Coalescer(store.mark_delivered)
        self._background: list[tuple[Callable[[], Coroutine[Any, Any, Any]], str]] = []

    def register(self, channel: Channel) -> None:
        """Deliver ``channel.name``'s replies through ``channel``.

        Raises:
            ConfigError: Another channel has the same name.
        """
        if channel.name in self._channels:
            raise ConfigError(f"two channels are named {channel.name!r}")
        self._channels[channel.name] = channel

    def bind(self, manager: DialogueManager) -> None:
        """Use ``manager`` for turns (the runtime binds it once started)."""
        self._manager = manager

    @property
    def manager(self) -> DialogueManager:
        """The dialogue manager turns run on."""
        if self._manager is None:
            raise RuntimeError("the dispatcher has no dialogue manager yet")
        return self._manager

    @property
    def channels(self) -> list[str]:
        """The names of the registered channels."""
        return list(self._channels)

    def add_background(self, factory: Callable[[], Coroutine[Any, Any, Any]], name: str) -> None:
        """Run ``factory()`` in an owned task from :meth:`start` (e.g. periodic recovery)."""
        self._background.append((factory, name))

    async def start(self) -> None:
        """Deliver replies left pending by an earlier run; start the background loops."""
        for name in self._channels:
            self.spawn(self.sweep(name), f"sweep:{name}")
        for factory, name in self._background:
            self._loops.spawn(factory(), name)

    async def stop(self) -> None:
        """Cancel running turns and deliveries; what is stored is resumed next start."""
        await self._loops.stop()
        await self._tasks.stop()

    async def shutdown(self, timeout_s: float) -> bool:
        """Stop taking messages and let the running turns and deliveries finish.

        New messages are refused with :class:`ShuttingDown` (connectors answer
        "try again", so the client resends to another replica or after the
        restart); the background loops (periodic recovery) are cancelled.

        Returns:
            Whether everything finished within ``timeout_s``; what did not is
            cancelled by :meth:`stop` and resumed from the store later.
        """
        self._accepting = False
        await self._loops.stop()
        if not await self._tasks.wait(timeout_s):
            _LOGGER.warning(
                "%d turns or deliveries still running after %.1f s.", len(self._tasks), timeout_s
            )
            return False
        return True

    async def drain(self) -> None:
        """Wait until every running turn and delivery has finished (graceful stop)."""
        await self._tasks.drain()

    def spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]:
        """Run ``coro`` in a task the dispatcher owns (cancelled and awaited on stop)."""
        return self._tasks.spawn(coro, name)

    async def handle(self, message: InboundMessage) -> list[OutboundMessage]:
        """Store ``message`` and run its turn now, for a channel that answers in its response.

        The turn runs in a task the dispatcher owns, so a drain waits for it
        (and a client that hangs up does not cancel it halfway).

        Raises:
            ShuttingDown: The server is draining; the message was not taken.
        """
        if not self._accepting:
            raise ShuttingDown("the server is restarting; send the message again")
        task = self.spawn(self.manager.handle(message, delivered=True), "turn:sync")
        replies = await asyncio.shield(task)
        for reply in replies:  # live views (the console's queue) see these turns too
            topic = conversation_topic(reply.channel, reply.conversation_id)
            self.bus.publish(topic, {"type": "message", "direction": "out", **_event_fields(reply)})
        return replies

    @tracing.inbound
    async def submit(self, message: InboundMessage) -> Received:
        """Store ``message``, then run its turn and deliver the replies in the background.

        Returns once the message is durable. A message seen before is not run
        again.

        Raises:
            StorageError: It could not be stored, or the server is shutting
                down (:class:`ShuttingDown`); the connector must not ack it.
        """
        if not self._accepting:
            raise ShuttingDown("the server is restarting; send the message again")
        received = await self.manager.accept(message)
        if received.created:  # published from what was stored, without reading it back
            self.bus.publish(
                conversation_topic(message.channel, message.conversation_id),
                {
                    "type": "message",
                    "direction": "in",
                    "id": received.inbound_id,
                    "text": message.text,
                    "buttons": [],
                    "metadata": dict(message.metadata),
                    "at": datetime.now(UTC).isoformat(),
                },
            )
        if received.context.status == "pending":
            self.spawn(self.run_turn(received), f"turn:{received.inbound_id}")
        return received

    async def run_turn(self, received: Received) -> list[OutboundMessage]:
        """Run an accepted message's turn, streaming tokens, then deliver its replies."""
        conv = received.conversation
        topic = conversation_topic(conv.channel, conv.external_id)

        def sink(text: str) -> None:
            self.bus.publish(topic, {"type": "token", "text": text})

        token = TOKEN_SINK.set(sink)
        try:
            self.bus.publish(topic, {"type": "typing", "who": "bot"})
            replies = await self.manager.process(received)
        except StorageError as exc:
            # Expected while the database or Redis is away: the message is
            # stored and pending, and the recovery loop runs its turn later.
            _LOGGER.warning(
                "The turn of message %d cannot run now: %s; it stays pending.",
                received.inbound_id,
                exc,
            )
            return []
        finally:
            TOKEN_SINK.reset(token)
        stored_at = asyncio.get_running_loop().time()
        for reply in replies:
            await self.deliver(reply, stored_at=stored_at)
        return replies

    def _fresh_claim(self, stored_at: float | None) -> bool:
        """Whether a reply this replica stored at ``stored_at`` (loop time) is surely still ours.

        With claims, the store writes new replies claimed by this replica
        (:meth:`Store.claim_new_replies`); for half the lease there is no
        need to claim them again before the first attempt.
        """
        if stored_at is None or self.claims is None:
            return False
        return asyncio.get_running_loop().time() < stored_at + self.claims.lease_s / 2

    async def push(self, conversation_id: int, reply: dict[str, Any]) -> OutboundMessage:
        """Store a message outside any bot turn (an agent's reply) and deliver it."""
        message_id = await self.store.record_outbound(conversation_id, reply)
        stored_at = asyncio.get_running_loop().time()
        stored = await self.store.message(message_id)
        outbound = to_outbound(stored)
        self.spawn(self.deliver(outbound, stored_at=stored_at), f"deliver:{message_id}")
        return outbound

    async def sweep(self, channel: str) -> int:
        """Deliver every pending reply of ``channel``, oldest first."""
        try:
            pending = await self.store.undelivered(channel)
        except StorageError as exc:
            _LOGGER.warning("Cannot read the %s outbox now: %s", channel, exc)
            return 0
        for stored in pending:
            await self.deliver(to_outbound(stored), publish=False)
        return len(pending)

    @tracing.delivery
    async def deliver(
        self, message: OutboundMessage, *, publish: bool = True, stored_at: float | None = None
    ) -> bool:
        """Hand one stored reply to its channel until it takes it; mark it delivered.

        Args:
            message: The stored reply.
            publish: Publish it on the bus for live views first.
            stored_at: When this process stored the reply (loop time), so no
                attempt was made before; ``None`` for one from the outbox,
                which an earlier process may have sent (a
                :class:`~bot.channels.CheckedChannel` is asked first).

        Returns:
            Whether it was delivered; if not, it stays pending for the next sweep.
        """
        message_id = int(message.metadata["message_id"])
        if publish:
            self.bus.publish(
                conversation_topic(message.channel, message.conversation_id),
                {"type": "message", "direction": "out", **_event_fields(message)},
            )
        # An agent's reply to a customer who left an email address goes by email.
        channel = self._channels.get(message.metadata.get("deliver_via") or message.channel)
        if channel is None:
            _LOGGER.debug("No channel %s; reply %d stays pending.", message.channel, message_id)
            return False
        if message_id in self._inflight:
            return False  # a sweep and a live delivery met: one of them delivers
        self._inflight.add(message_id)
        gauge = metrics.OUTBOX_PENDING.labels(message.channel)
        gauge.inc()
        try:
            if not self._fresh_claim(stored_at) and not await self._claim(message_id):
                return False  # another replica delivers it
            delivered = await self._attempts(channel, message, message_id, stored_at is None)
            if not delivered and self.claims is not None:
                await self.claims.release(message_id)
            return delivered
        finally:
            gauge.dec()
            self._inflight.discard(message_id)

    async def _claim(self, message_id: int) -> bool:
        """Claim or renew the reply for this replica (always ``True`` with one replica)."""
        if self.claims is None:
            return True
        try:
            return await self.claims.claim(message_id)
        except StorageError as exc:
            _LOGGER.warning("Cannot claim reply %d now: %s", message_id, exc)
            return False

    async def _attempts(
        self, channel: Channel, message: OutboundMessage, message_id: int, maybe_sent: bool
    ) -> bool:
        delay = self._retry_base_s
        for attempt in range(1, self._max_attempts + 1):
            if attempt > 1 and not await self._claim(message_id):
                return False  # our claim expired while waiting: another replica has it
            if maybe_sent and await _sent_before(channel, message, message_id):
                metrics.DELIVERIES.labels(message.channel, "already_sent").inc()
                await self._marks.add([message_id])
                return True
            try:
                await channel.send(message)
            except DeliveryError as exc:
                maybe_sent = exc.maybe_delivered
                task = asyncio.current_task()
                if task is not None and task.cancelling():
                    # asyncio.wait_for in client libraries (3.11) can turn a
                    # cancellation into a connection error; stop all the same.
                    raise asyncio.CancelledError from exc
                if exc.permanent:
                    metrics.DELIVERIES.labels(message.channel, "failed").inc()
                    _LOGGER.error("Reply %d cannot be delivered: %s", message_id, exc)
                    await self._marks.add([message_id])  # never retried
                    return False
                metrics.DELIVERIES.labels(message.channel, "retry").inc()
                wait = exc.retry_after if exc.retry_after is not None else _jitter(delay)
                _LOGGER.warning(
                    "Delivering reply %d failed (attempt %d): %s; retrying in %.1f s.",
                    message_id,
                    attempt,
                    exc,
                    wait,
                )
                await asyncio.sleep(wait)
                delay = min(delay * 2, self._retry_max_s)
                continue
            metrics.DELIVERIES.labels(message.channel, "ok").inc()
            await self._marks.add([message_id])
            return True
        metrics.DELIVERIES.labels(message.channel, "failed").inc()
        _LOGGER.error("Reply %d is still undelivered; the next sweep retries it.", message_id)
        return False


async def _sent_before(channel: Channel, message: OutboundMessage, message_id: int) -> bool:
    """Whether a channel that can tell says the reply reached the customer already."""
    if not isinstance(channel, CheckedChannel):
        return False
    try:
        sent = await channel.already_sent(message)
    except DeliveryError as exc:
        _LOGGER.warning("Cannot check whether reply %d was sent; sending it: %s", message_id, exc)
        return False
    if sent:
        _LOGGER.info(
            "Reply %d was delivered by an earlier attempt; not sending it again.", message_id
        )
    return sent


def _jitter(delay: float) -> float:
    """Full jitter: a random wait up to ``delay``, so retries do not stampede."""
    return random.uniform(delay / 2, delay)  # not cryptographic


def _event_fields(message: OutboundMessage) -> dict[str, Any]:
    return {
        "id": message.metadata.get("message_id"),
        "text": message.text,
        "buttons": [{"title": b.title, "payload": b.payload} for b in message.buttons],
        "metadata": message.metadata,
        "at": datetime.now(UTC).isoformat(),
    }


def to_outbound(stored: StoredMessage) -> OutboundMessage:
    """The outbound message a connector delivers, from its stored row."""
    buttons = tuple(Button(b["title"], b.get("payload", b["title"])) for b in stored.buttons)
    meta = {**stored.metadata, "message_id": stored.id}
    conversation = stored.conversation_external_id
    return OutboundMessage(stored.channel, conversation, stored.text, buttons, meta)
