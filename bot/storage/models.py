"""The relational schema of Helpline, as SQLAlchemy declarative models.

The models are the source of truth that the hand-written Alembic migrations
must match; ``tests/bot/storage/test_migrations.py`` compares the two so that
drift is caught.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

if TYPE_CHECKING:
    from sqlalchemy.engine import Dialect

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    """Return the current time as an aware UTC datetime."""
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware timestamp that always reads back as aware UTC.

    SQLite keeps no offset, so naive values read from it are tagged as UTC;
    PostgreSQL's ``timestamptz`` values are converted to UTC.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Store aware values in UTC; naive values are taken to be UTC already."""
        if value is None or value.tzinfo is None:
            return value
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Return an aware UTC datetime."""
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class Base(DeclarativeBase):
    """Declarative base holding the shared metadata and naming convention."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON, datetime: UTCDateTime}


class Conversation(Base):
    """One conversation on one channel, with its dialogue state."""

    __tablename__ = "conversations"
    __table_args__ = (
        UniqueConstraint("channel", "external_id"),
        CheckConstraint("mode IN ('bot', 'human')", name="mode"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    channel: Mapped[str] = mapped_column(String(64))
    external_id: Mapped[str] = mapped_column(String(255))
    sender: Mapped[str] = mapped_column(String(255))
    mode: Mapped[str] = mapped_column(String(16), default="bot")
    state: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Message(Base):
    """One inbound or outbound message; outbound rows double as the outbox."""

    __tablename__ = "messages"
    __table_args__ = (
        UniqueConstraint("conversation_id", "direction", "external_id"),
        CheckConstraint("direction IN ('in', 'out')", name="direction"),
        CheckConstraint("status IN ('pending', 'processed', 'delivered', 'failed')", name="status"),
        Index(None, "conversation_id", "id"),
        Index(None, "direction", "status", "channel"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id"))
    channel: Mapped[str] = mapped_column(String(64))
    direction: Mapped[str] = mapped_column(String(3))
    external_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    text: Mapped[str] = mapped_column(Text)
    buttons: Mapped[list[Any]] = mapped_column(JSON, default=list)
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", JSON, default=dict)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    # Turns that started on this inbound message; past the limit it is ``failed``.
    attempts: Mapped[int] = mapped_column(Integer, server_default="0")
    in_reply_to: Mapped[int | None] = mapped_column(
        ForeignKey("messages.id"), nullable=True, index=True
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    delivered_at: Mapped[datetime | None] = mapped_column(nullable=True)
    # A replica delivering this reply holds it until ``claimed_until`` (see
    # bot/storage/claims.py); a crashed replica's claim simply expires.
    claimed_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    claimed_until: Mapped[datetime | None] = mapped_column(nullable=True)


class Turn(Base):
    """One bot turn: which route answered an inbound message, and how."""

    __tablename__ = "turns"
    __table_args__ = (
        UniqueConstraint("inbound_message_id"),
        CheckConstraint("route IN ('flow', 'extractive', 'local', 'cloud', 'human')", name="route"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id"), index=True)
    inbound_message_id: Mapped[int | None] = mapped_column(ForeignKey("messages.id"), nullable=True)
    route: Mapped[str] = mapped_column(String(16))
    intent: Mapped[str | None] = mapped_column(String(255), nullable=True)
    confidence: Mapped[float | None] = mapped_column(Float, nullable=True)
    latency_ms: Mapped[float | None] = mapped_column(Float, nullable=True)
    flow_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    provider: Mapped[str | None] = mapped_column(String(64), nullable=True)
    tokens_in: Mapped[int | None] = mapped_column(Integer, nullable=True)
    tokens_out: Mapped[int | None] = mapped_column(Integer, nullable=True)
    cost_usd: Mapped[float | None] = mapped_column(Float, nullable=True)
    citations: Mapped[list[Any] | None] = mapped_column(JSON, nullable=True)


class EventRow(Base):
    """One tracker event of a conversation, numbered by ``seq``."""

    __tablename__ = "events"
    __table_args__ = (UniqueConstraint("conversation_id", "seq"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id"))
    turn_id: Mapped[int | None] = mapped_column(ForeignKey("turns.id"), nullable=True)
    seq: Mapped[int] = mapped_column(Integer)
    type: Mapped[str] = mapped_column(String(64))
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Order(Base):
    """A (demo) shop order that the order-status and refund flows look up."""

    __tablename__ = "orders"

    order_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    email: Mapped[str] = mapped_column(String(255), index=True)
    status: Mapped[str] = mapped_column(String(32))
    items: Mapped[list[Any]] = mapped_column(JSON, default=list)
    total_cents: Mapped[int] = mapped_column(Integer)
    currency: Mapped[str] = mapped_column(String(3), default="USD")
    placed_at: Mapped[datetime] = mapped_column()
    delivered_at: Mapped[datetime | None] = mapped_column(nullable=True)
    shipping_address: Mapped[str | None] = mapped_column(Text, nullable=True)
    returnable: Mapped[bool] = mapped_column(Boolean, default=True)


class KBChunk(Base):
    """One embedded passage of a knowledge-base article."""

    __tablename__ = "kb_chunks"
    __table_args__ = (UniqueConstraint("source", "chunk_index"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    source: Mapped[str] = mapped_column(String(255), index=True)
    chunk_index: Mapped[int] = mapped_column(Integer)
    title: Mapped[str] = mapped_column(String(255))
    heading: Mapped[str] = mapped_column(String(255), default="")
    text: Mapped[str] = mapped_column(Text)
    embedding: Mapped[bytes] = mapped_column(LargeBinary)
    model: Mapped[str] = mapped_column(String(64))
    content_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class LLMUsage(Base):
    """One call to a cloud (or local) model: tokens and cost, for the budget."""

    __tablename__ = "llm_usage"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    month: Mapped[str] = mapped_column(String(7), index=True)
    provider: Mapped[str] = mapped_column(String(64))
    model: Mapped[str] = mapped_column(String(128))
    tokens_in: Mapped[int] = mapped_column(Integer, default=0)
    tokens_out: Mapped[int] = mapped_column(Integer, default=0)
    cost_usd: Mapped[float] = mapped_column(Float, default=0.0)
    conversation_id: Mapped[int | None] = mapped_column(
        ForeignKey("conversations.id"), nullable=True
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


# The agent console (issue 5): agents, their sessions, the human inbox.


class Agent(Base):
    """A person who answers handed-off conversations in the console."""

    __tablename__ = "agents"
    __table_args__ = (
        UniqueConstraint("email"),
        CheckConstraint("role IN ('agent', 'admin')", name="role"),
        CheckConstraint("presence IN ('online', 'away')", name="presence"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    email: Mapped[str] = mapped_column(String(255))
    name: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16), default="agent")
    password_hash: Mapped[str] = mapped_column(String(255))
    presence: Mapped[str] = mapped_column(String(16), default="away")
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class AgentSession(Base):
    """A console login; only the SHA-256 of its token is stored."""

    __tablename__ = "agent_sessions"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    agent_id: Mapped[int] = mapped_column(ForeignKey("agents.id"), index=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column()
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow)


class LoginFailure(Base):
    """A failed console login, counted for throttling across replicas."""

    __tablename__ = "login_failures"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    email: Mapped[str] = mapped_column(String(255), index=True)
    ip: Mapped[str] = mapped_column(String(64), index=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)


#: An inbox row is ``open`` (queued or with an agent), ``resolved`` by an agent,
#: or ``withdrawn`` by a customer who went back to the bot before anyone claimed it.
INBOX_STATUSES = ("open", "resolved", "withdrawn")


class InboxRow(Base):
    """A conversation handed to people: its queue position, owner and outcome."""

    __tablename__ = "inbox"
    __table_args__ = (
        CheckConstraint(
            "status IN (" + ", ".join(f"'{s}'" for s in INBOX_STATUSES) + ")", name="status"
        ),
    )

    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id"), primary_key=True)
    status: Mapped[str] = mapped_column(String(16), default="open")
    handoff_reason: Mapped[str | None] = mapped_column(String(64), nullable=True)
    handoff_at: Mapped[datetime] = mapped_column(default=utcnow)
    assignee_id: Mapped[int | None] = mapped_column(
        ForeignKey("agents.id"), nullable=True, index=True
    )
    claimed_at: Mapped[datetime | None] = mapped_column(nullable=True)
    first_human_reply_at: Mapped[datetime | None] = mapped_column(nullable=True)
    resolved_at: Mapped[datetime | None] = mapped_column(nullable=True)
    csat: Mapped[int | None] = mapped_column(Integer, nullable=True)
    csat_requested_at: Mapped[datetime | None] = mapped_column(nullable=True)
    notified_at: Mapped[datetime | None] = mapped_column(nullable=True)
    followup_email: Mapped[str | None] = mapped_column(String(320), nullable=True)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class Note(Base):
    """An agent's private note on a conversation; never sent to the customer."""

    __tablename__ = "notes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id"), index=True)
    agent_id: Mapped[int] = mapped_column(ForeignKey("agents.id"))
    text: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class CannedResponse(Base):
    """A reusable answer; ``{slot}`` placeholders are filled per conversation."""

    __tablename__ = "canned_responses"
    __table_args__ = (UniqueConstraint("shortcut"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    shortcut: Mapped[str] = mapped_column(String(64))
    title: Mapped[str] = mapped_column(String(255))
    text: Mapped[str] = mapped_column(Text)


class AuditEntry(Base):
    """One agent action (login, claim, reply, admin change...)."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id"), nullable=True)
    action: Mapped[str] = mapped_column(String(64))
    conversation_id: Mapped[int | None] = mapped_column(
        ForeignKey("conversations.id"), nullable=True
    )
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
