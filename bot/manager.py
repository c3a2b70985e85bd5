"""The dialogue manager: persist, take a turn, persist again, reply.

Every inbound message is stored (idempotently on ``(channel, message id)``)
before anything else happens; the turn's state, events and replies are
committed in one transaction. Turns run one at a time per conversation.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import TYPE_CHECKING, Any, Protocol

from bot import metrics, tracing, turn_fields
from bot.dialogue.answer import TURN_CONVERSATION
from bot.dialogue.events import UserUttered
from bot.dialogue.nlu import ParseResult
from bot.dialogue.state import DialogueState
from bot.errors import StorageError
from bot.handoffs import DeskSettings, HandoffDesk, QueueState, mark_handoff, record_with_agent
from bot.logs import bind_conversation, conversation_label, unbind_conversation
from bot.messages import Button, InboundMessage, OutboundMessage
from bot.payloads import csat_score, parse_payload
from bot.storage.console_store import ConsoleStore
from bot.storage.records import TurnRecord
from bot.turn_guard import DEFAULT_MAX_ATTEMPTS, TurnGuard

__all__ = [
    "CSAT_THANKS",
    "DialogueManager",
    "TurnLocks",
    "csat_score",
    "local_locks",
    "parse_payload",
]

if TYPE_CHECKING:
    from bot.dialogue.engine import Engine, TurnResult
    from bot.dialogue.nlu import NLU
    from bot.storage.records import ConversationRow, Received, TurnContext
    from bot.storage.store import Store

_LOGGER = logging.getLogger(__name__)
HISTORY_EVENTS = 100
#: The reply to a customer's satisfaction score (a ``/csat{"score": N}`` button).
CSAT_THANKS = "Thank you for your feedback!"


class TurnLocks(Protocol):
    """Serialises the turns of one conversation (in-process, or across replicas)."""

    def hold(self, key: tuple[str, str]) -> AbstractAsyncContextManager[None]:
        """Hold the lock of conversation ``(channel, external id)`` for the block."""
        ...


class _Locks:
    """One asyncio lock per conversation, dropped when nobody holds it."""

    def __init__(self) -> None:
        self._locks: dict[tuple[str, str], tuple[asyncio.Lock, int]] = {}

    @asynccontextmanager
    async def hold(self, key: tuple[str, str]) -> AsyncIterator[None]:
        """Hold the conversation's lock for the block."""
        lock, users = self._locks.get(key, (asyncio.Lock(), 0))
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[key]
            if users <= 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)


def local_locks() -> TurnLocks:
    """The in-process turn locks of a single replica."""
    return _Locks()


class DialogueManager:
    """Connects connectors, NLU, the flow engine and the store.

    ``locks`` serialise each conversation's turns; the default is in-process,
    and several replicas pass Redis-backed ones (:mod:`bot.replicas.locks`).
    ``desk`` says when agents answer and whether replies can go by email
    (:mod:`bot.handoffs`).
    A message whose turn fails ``max_attempts`` times is set aside as
    ``failed`` and the customer told (:mod:`bot.turn_guard`).
    """

    def __init__(
        self,
        engine: Engine,
        nlu: NLU,
        store: Store,
        locks: TurnLocks | None = None,
        *,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
        desk: DeskSettings | None = None,
    ) -> None:
        self.engine = engine
        self.nlu = nlu
        self.store = store
        self.console = ConsoleStore(store)
        self.desk = HandoffDesk(self.console, desk)
        self._locks: TurnLocks = locks or _Locks()
        self.guard = TurnGuard(store, engine.project.domain, max_attempts)

    @tracing.inbound
    async def handle(
        self, message: InboundMessage, *, delivered: bool = False
    ) -> list[OutboundMessage]:
        """Store the message, run its turn once, and return the replies.

        A message seen before (same channel and message id) is not run
        again: the replies of its first run are returned.

        Args:
            message: The customer's message.
            delivered: The caller hands the replies over itself (a
                synchronous channel such as REST), so store them delivered.
        """
        # The lock is taken before the message is stored, so the state read with
        # it is still current when the turn starts.
        async with self._locks.hold((message.channel, message.conversation_id)):
            received = await self.accept(message)
            conv, context = received.conversation, received.context
            if context.status == "pending":
                return await self._guarded(
                    conv,
                    received.inbound_id,
                    context,
                    message.text,
                    message.metadata,
                    delivered,
                    fresh=received.created,
                )
            replies = await self.store.replies_to(received.inbound_id)
        if delivered and any(m.status != "delivered" for m in replies):
            await self.store.mark_delivered([m.id for m in replies])
        return [self._outbound(conv, m.id, m.text, m.buttons, m.metadata) for m in replies]

    async def accept(self, message: InboundMessage) -> Received:
        """Store ``message`` (idempotently) without running its turn.

        Channels that must acknowledge quickly (Slack's 3 s, the widget's ack,
        IMAP's seen flag) call this, acknowledge, then :meth:`process` the
        message. Once this returns the message is durable: after a crash
        :meth:`recover` runs its turn.
        """
        metrics.MESSAGES.labels(message.channel, "in").inc()
        received = await self.store.receive(
            message.channel,
            message.conversation_id,
            message.sender,
            message.message_id,
            message.text,
            dict(message.metadata),
        )
        if not received.created:
            metrics.DUPLICATES.labels(message.channel).inc()
        return received

    async def process(self, received: Received) -> list[OutboundMessage]:
        """Run the turn of an accepted message unless it already ran; return new replies."""
        conv = received.conversation
        async with self._locks.hold((conv.channel, conv.external_id)):
            context, text, metadata = await self.store.turn_input(received.inbound_id)
            if context.status != "pending":
                return []
            return await self._guarded(
                conv, received.inbound_id, context, text, metadata, fresh=received.created
            )

    async def recover(self) -> int:
        """Run the turns of messages stored but never processed (after a crash).

        A turn that fails is tried again, then set aside (:mod:`bot.turn_guard`);
        one the store cannot run now stays pending for the recovery loop. Either
        way the others still run, and startup goes on.
        """
        pending = await self.store.pending_inbound()
        for stored in pending:
            conv = await self.store.conversation_by_id(stored.conversation_id)
            if conv is None:
                continue
            try:
                async with self._locks.hold((conv.channel, conv.external_id)):
                    context = await self.store.turn_context(stored.id)
                    if context.status == "pending":
                        await self._guarded(conv, stored.id, context, stored.text, stored.metadata)
            except StorageError as exc:
                _LOGGER.warning("Message %d stays pending: %s.", stored.id, exc)
        if pending:
            _LOGGER.info("Recovered %d unprocessed messages.", len(pending))
        return len(pending)

    async def _guarded(
        self,
        conv: ConversationRow,
        inbound_id: int,
        context: TurnContext,
        text: str,
        metadata: dict[str, Any],
        delivered: bool = False,
        *,
        fresh: bool = False,
    ) -> list[OutboundMessage]:
        """Run the turn through the guard, which counts and limits its attempts.

        ``fresh``: this call's caller stored the message just now.
        """

        def outbound(reply_id: int, reply: dict[str, Any]) -> OutboundMessage:
            return self._outbound(
                conv, reply_id, reply["text"], reply["buttons"], reply["metadata"]
            )

        async def turn() -> list[OutboundMessage]:
            return await self._turn(conv, inbound_id, context, text, metadata, delivered)

        return await self.guard.run(conv.id, inbound_id, delivered, turn, outbound, fresh=fresh)

    @tracing.turn
    async def _turn(
        self,
        conv: ConversationRow,
        inbound_id: int,
        context: TurnContext,
        text: str,
        metadata: dict[str, Any],
        delivered: bool = False,
    ) -> list[OutboundMessage]:
        token = bind_conversation(conversation_label(conv.channel, conv.external_id))
        usage_token = TURN_CONVERSATION.set(conv.id)
        started = time.perf_counter()
        try:
            answered = await self._csat_answer(conv, inbound_id, context, text, delivered)
            if answered is not None:
                return answered
            queue = await self.desk.queue_state(conv, context.mode)
            if queue.claimed:
                initial = self.engine.new_state().to_dict()
                await record_with_agent(
                    self.store, initial, conv, inbound_id, context, text, started
                )
                return []
            state = DialogueState.from_dict(context.state) if context.state else None
            result = await self._run_engine(conv, state, text, metadata, queue)
            latency_ms = (time.perf_counter() - started) * 1000
            record = self._record(conv, inbound_id, result, latency_ms, delivered)
            ids = await self.store.commit_turn(record)
            await self.desk.record(conv, result)
            metrics.TURNS.labels(result.route).inc()
            metrics.TURN_LATENCY.labels(result.route).observe(latency_ms / 1000)
            turn_fields.count_model_use(record)
            return [
                self._outbound(conv, i, r["text"], r["buttons"], r["metadata"])
                for i, r in zip(ids, record.replies, strict=True)
            ]
        finally:
            TURN_CONVERSATION.reset(usage_token)
            unbind_conversation(token)

    async def _run_engine(
        self,
        conv: ConversationRow,
        state: DialogueState | None,
        text: str,
        metadata: dict[str, Any],
        queue: QueueState,
    ) -> TurnResult:
        parse = await self.parse(text)

        async def history() -> list[dict[str, Any]]:
            return await self.store.events(conv.id, limit=HISTORY_EVENTS)

        return await self.engine.handle(
            state or self.engine.new_state(),
            parse,
            conv.external_id,
            history,
            metadata,
            self.desk.loader(conv, queue),
            queued=queue.queued,
        )

    @tracing.nlu_parse
    async def parse(self, text: str) -> ParseResult:
        """Read a message: a button payload directly, anything else through NLU."""
        direct = parse_payload(text)
        if direct is not None:
            return direct
        if not text.strip() or len(text) > self.engine.settings.max_message_chars:
            return ParseResult(text)
        started = time.perf_counter()
        result = await self.nlu.parse(text)
        metrics.NLU_LATENCY.observe(time.perf_counter() - started)
        return result

    async def _csat_answer(
        self,
        conv: ConversationRow,
        inbound_id: int,
        context: TurnContext,
        text: str,
        delivered: bool,
    ) -> list[OutboundMessage] | None:
        """Record a CSAT score the console asked for and thank the customer.

        Returns ``None`` when ``text`` is not such an answer, so the turn runs.
        """
        score = csat_score(text)
        if score is None or not await self.console.record_csat(conv.id, score):
            return None
        metrics.CONSOLE_CSAT.labels(str(score)).inc()
        meta: dict[str, Any] = {"csat": score}
        reply = {"text": CSAT_THANKS, "buttons": [], "metadata": meta}
        record = TurnRecord(
            conversation_id=conv.id,
            inbound_id=inbound_id,
            state=context.state or self.engine.new_state().to_dict(),
            events=[UserUttered(text).to_dict()],
            replies=[reply],
            route="human",
            delivered=delivered,
        )
        ids = await self.store.commit_turn(record)
        return [self._outbound(conv, ids[0], CSAT_THANKS, [], meta)]

    @staticmethod
    def _record(
        conv: ConversationRow,
        inbound_id: int,
        result: TurnResult,
        latency_ms: float,
        delivered: bool,
    ) -> TurnRecord:
        top = result.events[0] if result.events else None
        intent = top.intent if isinstance(top, UserUttered) else None
        scores = turn_fields.scores(result)
        replies = [
            {
                "text": r.text,
                "buttons": list(r.buttons),
                "metadata": dict[str, Any](response=r.response, **scores),
            }
            for r in result.replies
        ]
        mark_handoff(result, replies)
        return TurnRecord(
            conversation_id=conv.id,
            inbound_id=inbound_id,
            state=result.state.to_dict(),
            events=[e.to_dict() for e in result.events],
            replies=replies,
            route=result.route,
            intent=intent,
            confidence=result.confidence,
            latency_ms=latency_ms,
            flow_id=result.flow_id,
            delivered=delivered,
            **turn_fields.answer_fields(result),
        )

    @staticmethod
    def _outbound(
        conv: ConversationRow,
        message_id: int,
        text: str,
        buttons: list[dict[str, Any]],
        metadata: dict[str, Any],
    ) -> OutboundMessage:
        choices = tuple(Button(b["title"], b.get("payload", b["title"])) for b in buttons)
        meta = {**metadata, "message_id": message_id}
        return OutboundMessage(conv.channel, conv.external_id, text, choices, meta)
