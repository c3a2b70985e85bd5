"""Idempotency keys scoped to their conversation; failed turns and attempt counts.

A channel's message id was unique per channel, so one client's id could hit
another customer's message. It is now unique per conversation (channel and
sender). An inbound message also counts the turns that tried it, so a message
that keeps failing is quarantined as ``failed`` instead of crash-looping.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    """Rescope the message key, allow ``failed`` and add ``attempts``."""
    with op.batch_alter_table("messages") as batch:
        batch.drop_constraint("uq_messages_channel_direction_external_id", type_="unique")
        batch.create_unique_constraint(
            "uq_messages_conversation_id_direction_external_id",
            ["conversation_id", "direction", "external_id"],
        )
        batch.drop_constraint("ck_messages_status", type_="check")
        batch.create_check_constraint(
            "ck_messages_status", "status IN ('pending', 'processed', 'delivered', 'failed')"
        )
        batch.add_column(sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"))


def downgrade() -> None:
    """Restore the channel-wide key and the three statuses."""
    with op.batch_alter_table("messages") as batch:
        batch.drop_column("attempts")
        batch.drop_constraint("ck_messages_status", type_="check")
        batch.create_check_constraint(
            "ck_messages_status", "status IN ('pending', 'processed', 'delivered')"
        )
        batch.drop_constraint("uq_messages_conversation_id_direction_external_id", type_="unique")
        batch.create_unique_constraint(
            "uq_messages_channel_direction_external_id", ["channel", "direction", "external_id"]
        )
