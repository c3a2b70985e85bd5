"""The agent console: agents, sessions, login failures, inbox, notes, canned, audit.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | None = None
depends_on: str | None = None


def _tz() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def _fk(column: str, table: str, target: str, referred: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        [column], [f"{referred}.{target}"], name=f"fk_{table}_{column}_{referred}"
    )


def _agents() -> None:
    op.create_table(
        "agents",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("email", sa.String(255), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("password_hash", sa.String(255), nullable=False),
        sa.Column("presence", sa.String(16), nullable=False),
        sa.Column("disabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", _tz(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_agents"),
        sa.UniqueConstraint("email", name="uq_agents_email"),
        sa.CheckConstraint("role IN ('agent', 'admin')", name="ck_agents_role"),
        sa.CheckConstraint("presence IN ('online', 'away')", name="ck_agents_presence"),
    )
    op.create_table(
        "agent_sessions",
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("agent_id", sa.Integer(), nullable=False),
        sa.Column("csrf_token", sa.String(64), nullable=False),
        sa.Column("created_at", _tz(), nullable=False),
        sa.Column("expires_at", _tz(), nullable=False),
        sa.Column("last_seen_at", _tz(), nullable=False),
        _fk("agent_id", "agent_sessions", "id", "agents"),
        sa.PrimaryKeyConstraint("token_hash", name="pk_agent_sessions"),
    )
    op.create_index("ix_agent_sessions_agent_id", "agent_sessions", ["agent_id"])
    op.create_table(
        "login_failures",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("email", sa.String(255), nullable=False),
        sa.Column("ip", sa.String(64), nullable=False),
        sa.Column("at", _tz(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_login_failures"),
    )
    op.create_index("ix_login_failures_email", "login_failures", ["email"])
    op.create_index("ix_login_failures_ip", "login_failures", ["ip"])


def _inbox() -> None:
    op.create_table(
        "inbox",
        sa.Column("conversation_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("handoff_reason", sa.String(64), nullable=True),
        sa.Column("handoff_at", _tz(), nullable=False),
        sa.Column("assignee_id", sa.Integer(), nullable=True),
        sa.Column("claimed_at", _tz(), nullable=True),
        sa.Column("first_human_reply_at", _tz(), nullable=True),
        sa.Column("resolved_at", _tz(), nullable=True),
        sa.Column("csat", sa.Integer(), nullable=True),
        sa.Column("csat_requested_at", _tz(), nullable=True),
        sa.Column("notified_at", _tz(), nullable=True),
        sa.Column("updated_at", _tz(), nullable=False),
        _fk("conversation_id", "inbox", "id", "conversations"),
        _fk("assignee_id", "inbox", "id", "agents"),
        sa.PrimaryKeyConstraint("conversation_id", name="pk_inbox"),
        sa.CheckConstraint("status IN ('open', 'resolved')", name="ck_inbox_status"),
    )
    op.create_index("ix_inbox_assignee_id", "inbox", ["assignee_id"])


def _others() -> None:
    op.create_table(
        "notes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("conversation_id", sa.Integer(), nullable=False),
        sa.Column("agent_id", sa.Integer(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("created_at", _tz(), nullable=False),
        _fk("conversation_id", "notes", "id", "conversations"),
        _fk("agent_id", "notes", "id", "agents"),
        sa.PrimaryKeyConstraint("id", name="pk_notes"),
    )
    op.create_index("ix_notes_conversation_id", "notes", ["conversation_id"])
    op.create_table(
        "canned_responses",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("shortcut", sa.String(64), nullable=False),
        sa.Column("title", sa.String(255), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_canned_responses"),
        sa.UniqueConstraint("shortcut", name="uq_canned_responses_shortcut"),
    )
    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("agent_id", sa.Integer(), nullable=True),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("conversation_id", sa.Integer(), nullable=True),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.Column("at", _tz(), nullable=False),
        _fk("agent_id", "audit_log", "id", "agents"),
        _fk("conversation_id", "audit_log", "id", "conversations"),
        sa.PrimaryKeyConstraint("id", name="pk_audit_log"),
    )
    op.create_index("ix_audit_log_at", "audit_log", ["at"])


def upgrade() -> None:
    """Create the console's tables."""
    _agents()
    _inbox()
    _others()


def downgrade() -> None:
    """Drop what :func:`upgrade` created."""
    for index, table in (
        ("ix_audit_log_at", "audit_log"),
        ("ix_notes_conversation_id", "notes"),
        ("ix_inbox_assignee_id", "inbox"),
        ("ix_login_failures_ip", "login_failures"),
        ("ix_login_failures_email", "login_failures"),
        ("ix_agent_sessions_agent_id", "agent_sessions"),
    ):
        op.drop_index(index, table_name=table)
    for table in (
        "audit_log",
        "canned_responses",
        "notes",
        "inbox",
        "login_failures",
        "agent_sessions",
        "agents",
    ):
        op.drop_table(table)
