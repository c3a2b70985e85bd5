"""The store: conversations, the inbox, turns, the outbox, events and orders.

Every public call is atomic: one transaction, or, where nothing needs one
around it, statements that commit on their own (one round trip each; on
PostgreSQL a turn's receive and commit are single statements, see
:mod:`bot.storage.pg_path`). Transient failures (a
database that restarts, lock contention, a dropped connection) are retried a
few times with exponential backoff; everything else is translated to
:class:`bot.errors.StorageError` here and nowhere else.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from bot import metrics
from bot.errors import StorageError
from bot.lifecycle import Service
from bot.storage import engine as _engine
from bot.storage import limits, migrate, outbox_queries, pg_path, queries
from bot.storage.queries import MESSAGES
from bot.storage.records import Received, TurnContext
from bot.storage.store_extras import ModelAndOrderCalls

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Iterable

    from sqlalchemy import ColumnElement
    from sqlalchemy.ext.asyncio import AsyncConnection

    from bot.storage.records import ConversationRow, Mode, StoredMessage, TurnRecord
    from bot.storage.runner import Runner


_LOGGER = logging.getLogger(__name__)
_T = TypeVar("_T")


async def _ping(conn: AsyncConnection) -> None:
    await conn.execute(text("SELECT 1"))


def _select(
    *where: ColumnElement[bool],
) -> Callable[[AsyncConnection], Awaitable[list[StoredMessage]]]:
    async def op(conn: AsyncConnection) -> list[StoredMessage]:
        return await queries.select_messages(conn, *where)

    return op


class Store(ModelAndOrderCalls, Service):
    """Async persistence for Helpline over SQLite or PostgreSQL.

    Use it as an async context manager, or call :meth:`start` and
    :meth:`stop`. Call :meth:`upgrade` once to apply the migrations.

    Args:
        url: A SQLAlchemy URL: ``sqlite+aiosqlite:///var/helpline.db`` (the
            default) or ``postgresql+asyncpg://user:pass@host/db``.
        retries: How many times a transient failure is retried.
        retry_delay: The first backoff in seconds; it doubles each retry.
    """

    def __init__(
        self, url: str = _engine.DEFAULT_URL, *, retries: int = 3, retry_delay: float = 0.2
    ) -> None:
        self._url = _engine.parse_url(url)
        self._retries = retries
        self._retry_delay = retry_delay
        self._engine: Runner | None = None
        self._reply_claim: tuple[str, float] | None = None

    def claim_new_replies(self, owner: str, lease_s: float) -> None:
        """Store each new pending reply already claimed by replica ``owner`` for ``lease_s``.

        The replica that wrote a reply delivers it next; born claimed, it
        needs no claiming round trip first (see :mod:`bot.storage.claims`).
        """
        self._reply_claim = (owner, lease_s)

    @property
    def url(self) -> str:
        """The database URL with its password masked."""
        return _engine.safe_url(self._url)

    @property
    def dialect(self) -> str:
        """The backend name: ``sqlite`` or ``postgresql``."""
        return self._url.get_backend_name()

    async def start(self) -> None:
        """Create the engine and check that the database answers.

        Raises:
            StorageError: The database cannot be reached; the message names
                the URL without its password.
        """
        if self._engine is not None:
            return
        try:
            self._engine = await asyncio.to_thread(_engine.create_runner, self._url)
        except OSError as exc:
            raise _engine.translate(exc, "start", self._url) from exc
        try:
            await self._run("start", _ping)
        except BaseException:
            await self.stop()
            raise
        _LOGGER.info("Connected to the database at %s.", self.url)

    async def stop(self) -> None:
        """Close every pooled connection; the store can be started again."""
        engine, self._engine = self._engine, None
        if engine is not None:
            await engine.dispose()

    async def ping(self) -> None:
        """Check that the database answers; raise :class:`StorageError` if not."""
        await self._run("ping", _ping, autocommit=True)

    async def upgrade(self) -> None:
        """Apply the packaged Alembic migrations up to the newest revision."""

        async def run(conn: AsyncConnection) -> None:
            await conn.run_sync(migrate.upgrade)

        await self._run("upgrade", run)

    async def run(
        self, what: str, op: Callable[[AsyncConnection], Awaitable[_T]], *, autocommit: bool = False
    ) -> _T:
        """Run ``op`` in one transaction with the store's retries and error translation.

        For statements that live outside this class; ``what`` names the call
        in errors. ``autocommit``: ``op`` needs no transaction around its
        statements (see :class:`bot.storage.runner.Runner`).
        """
        return await self._run(what, op, autocommit=autocommit)

    async def _run(
        self, what: str, op: Callable[[AsyncConnection], Awaitable[_T]], *, autocommit: bool = False
    ) -> _T:
        """Run ``op`` in a transaction, retrying transient failures."""
        engine = self._engine
        if engine is None:
            raise StorageError(f"The store for {self.url} is not started; call start() first.")
        delay = self._retry_delay
        attempt = 0
        while True:
            try:
                return await engine.run(op, autocommit=autocommit)
            except (SQLAlchemyError, OSError) as exc:
                if attempt >= self._retries or not _engine.is_transient(exc):
                    raise _engine.translate(exc, what, self._url) from exc
                attempt += 1
                metrics.BACKEND_RETRIES.labels("database").inc()
                _LOGGER.warning(
                    "Storage call %s failed (%s); retry %d of %d in %.2f s.",
                    what,
                    type(exc).__name__,
                    attempt,
                    self._retries,
                    delay,
                )
            await asyncio.sleep(delay)
            delay *= 2

    async def receive(
        self,
        channel: str,
        external_id: str,
        sender: str,
        message_id: str | None,
        text: str,
        metadata: dict[str, Any] | None = None,
    ) -> Received:
        """Store an inbound message (idempotent on its conversation + message id).

        An empty ``message_id`` means no idempotency, like ``None``. A message
        the schema cannot hold raises :class:`~bot.errors.InvalidInput` before
        any database call (see :mod:`bot.storage.limits`).

        The conversation is created when it is new, in one transaction with
        the message. For a known conversation no transaction is needed (the
        message insert is atomic by itself): on PostgreSQL it is one
        statement, one round trip (see :mod:`bot.storage.pg_path`).
        The result also holds the message's status and the conversation's
        mode and state.
        """
        message_id = message_id or None
        limits.check_inbound(channel, external_id, sender, message_id, text, metadata or {})
        args: dict[str, Any] = {
            "channel": channel,
            "external_id": external_id,
            "message_id": message_id,
            "text": text,
            "metadata": dict(metadata or {}),
        }
        op = functools.partial(queries.receive, sender=sender, **args)
        known: Callable[[AsyncConnection], Awaitable[Any]] = functools.partial(op, create=False)
        if self.dialect == "postgresql":  # one statement (see pg_path)
            known = functools.partial(pg_path.receive, **args)
        found = await self._run("receive", known, autocommit=True)
        if found is None:
            found = await self._run("receive", op)
        assert found is not None  # created
        conversation, inbound_id, created, context = found
        return Received(conversation, inbound_id, created, TurnContext(*context))

    async def turn_context(self, inbound_id: int) -> TurnContext:
        """Return the message's status and its conversation's mode and state."""
        op = functools.partial(queries.turn_context, inbound_id=inbound_id)
        status, mode, state = await self._run("turn_context", op, autocommit=True)
        return TurnContext(status, mode, state)

    async def turn_input(self, inbound_id: int) -> tuple[TurnContext, str, dict[str, Any]]:
        """Return :meth:`turn_context` plus the message's text and metadata, in one read."""
        op = functools.partial(queries.turn_input, inbound_id=inbound_id)
        context, text, metadata = await self._run("turn_input", op, autocommit=True)
        return TurnContext(*context), text, metadata

    async def conversation(self, channel: str, external_id: str, sender: str) -> ConversationRow:
        """Return the conversation, creating it when it is new (race-safe)."""
        op = functools.partial(
            queries.get_or_create_conversation,
            channel=channel,
            external_id=external_id,
            sender=sender,
        )
        return await self._run("conversation", op)

    async def conversation_by_id(self, conversation_id: int) -> ConversationRow | None:
        """Return the conversation with the store id ``conversation_id``, or ``None``."""
        op = functools.partial(queries.conversation_by_id, conversation_id=conversation_id)
        return await self._run("conversation_by_id", op, autocommit=True)

    async def record_inbound(
        self,
        conversation_id: int,
        channel: str,
        external_id: str | None,
        text: str,
        metadata: dict[str, Any] | None = None,
    ) -> tuple[int, bool]:
        """Persist an inbound message, once per ``(channel, external_id)``.

        Returns:
            The message id, and whether this call created it (``False`` for a
            retried delivery of a message stored before). Messages without an
            external id are always created.
        """
        op = functools.partial(
            queries.record_inbound,
            conversation_id=conversation_id,
            channel=channel,
            external_id=external_id,
            text=text,
            metadata=dict(metadata or {}),
        )
        return await self._run("record_inbound", op)

    async def record_outbound(
        self, conversation_id: int, reply: dict[str, Any], in_reply_to: int | None = None
    ) -> int:
        """Put a message outside any bot turn (e.g. a human agent's) in the outbox.

        Args:
            conversation_id: The store id of the conversation.
            reply: ``{"text", "buttons", "metadata"}``; only ``text`` is required.
            in_reply_to: The inbound message it answers, if any.

        Returns:
            The id of the pending outbound message.
        """
        op = functools.partial(
            outbox_queries.insert_outbound,
            conversation_id=conversation_id,
            reply=reply,
            in_reply_to=in_reply_to,
            claim=self._reply_claim,
        )
        return await self._run("record_outbound", op)

    async def message(self, message_id: int) -> StoredMessage:
        """Return one stored message by its store id.

        Raises:
            StorageError: There is no such message.
        """
        rows = await self._run("message", _select(MESSAGES.c.id == message_id), autocommit=True)
        if not rows:
            raise StorageError(f"there is no message {message_id}")
        return rows[0]

    async def reply_source(self, message_id: int) -> tuple[int, dict[str, Any] | None]:
        """Return a reply's conversation id and the metadata of the message it answers.

        The metadata is ``None`` when it answers none (an agent's reply).

        Raises:
            StorageError: There is no such outbound message.
        """
        op = functools.partial(outbox_queries.reply_source, message_id=message_id)
        return await self._run("reply_source", op, autocommit=True)

    async def replies_to(self, inbound_id: int) -> list[StoredMessage]:
        """Return the outbound messages that answer ``inbound_id``, in order."""
        where = (MESSAGES.c.in_reply_to == inbound_id, MESSAGES.c.direction == "out")
        return await self._run("replies_to", _select(*where), autocommit=True)

    async def inbound_status(self, inbound_id: int) -> str:
        """Return ``pending`` or ``processed`` for an inbound message."""
        op = functools.partial(queries.inbound_status, inbound_id=inbound_id)
        return await self._run("inbound_status", op, autocommit=True)

    async def pending_inbound(self, conversation_id: int | None = None) -> list[StoredMessage]:
        """Return inbound messages no turn has processed yet, oldest first.

        After a restart these are the messages to run turns for.
        """
        m = MESSAGES.c
        where = [m.direction == "in", m.status == "pending"]
        if conversation_id is not None:
            where.append(m.conversation_id == conversation_id)
        return await self._run("pending_inbound", _select(*where), autocommit=True)

    async def load_state(self, conversation_id: int) -> dict[str, Any] | None:
        """Return the stored dialogue state, or ``None`` before the first turn."""
        op = functools.partial(queries.load_state, conversation_id=conversation_id)
        return await self._run("load_state", op, autocommit=True)

    async def commit_turn(self, turn: TurnRecord) -> list[int]:
        """Store everything a turn produced, in one transaction.

        The new state, the events, the outbound messages (``pending``), the
        turn row and the inbound message's ``processed`` mark are written
        together or not at all.

        Returns:
            The ids of the outbound messages, in the order of ``turn.replies``.

        Raises:
            StorageError: The inbound message is not pending (it was processed
                already, or belongs elsewhere), or the database refused a row.
        """
        if self.dialect == "postgresql":  # one statement, atomic by itself
            op = functools.partial(pg_path.commit_turn, turn=turn, claim=self._reply_claim)
            return await self._run("commit_turn", op, autocommit=True)
        op = functools.partial(queries.commit_turn, turn=turn, claim=self._reply_claim)
        return await self._run("commit_turn", op)

    async def mark_delivered(self, ids: Iterable[int]) -> None:
        """Mark outbound messages as delivered."""
        op = functools.partial(outbox_queries.mark_delivered, ids=list(ids))
        await self._run("mark_delivered", op, autocommit=True)

    async def undelivered(self, channel: str) -> list[StoredMessage]:
        """Return the channel's outbound messages not delivered yet, oldest first."""
        m = MESSAGES.c
        where = (m.channel == channel, m.direction == "out", m.status == "pending")
        return await self._run("undelivered", _select(*where), autocommit=True)

    async def transcript(self, conversation_id: int) -> list[StoredMessage]:
        """Return every message of a conversation, both ways, in order."""
        where = MESSAGES.c.conversation_id == conversation_id
        return await self._run("transcript", _select(where), autocommit=True)

    async def events(self, conversation_id: int, limit: int | None = None) -> list[dict[str, Any]]:
        """Return the conversation's tracker events in order (the last ``limit`` if given)."""
        op = functools.partial(queries.events, conversation_id=conversation_id, limit=limit)
        return await self._run("events", op, autocommit=True)

    async def turns(self, conversation_id: int) -> list[dict[str, Any]]:
        """Return the conversation's turns (route, confidence, latency, cost...), oldest first."""
        op = functools.partial(queries.turns, conversation_id=conversation_id)
        return await self._run("turns", op, autocommit=True)

    async def set_mode(self, conversation_id: int, mode: Mode) -> None:
        """Hand a conversation to a human (``human``) or back to the bot (``bot``)."""
        op = functools.partial(queries.set_mode, conversation_id=conversation_id, mode=mode)
        await self._run("set_mode", op, autocommit=True)

    async def route_counts(self) -> dict[str, int]:
        """Count the turns per route (``flow``, ``local``, ``cloud``, ``human``)."""
        return await self._run("route_counts", queries.route_counts, autocommit=True)
