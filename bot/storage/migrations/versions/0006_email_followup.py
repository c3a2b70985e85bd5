"""Handoffs nobody could take: an email follow-up address, and leaving the queue.

An inbox row keeps the address a customer left (or the email sender's) for an
agent's reply, and a customer who goes back to the bot before anyone claimed
the conversation leaves it ``withdrawn``.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    """Add ``followup_email`` and allow the ``withdrawn`` status."""
    with op.batch_alter_table("inbox") as batch:
        batch.add_column(sa.Column("followup_email", sa.String(320), nullable=True))
        batch.drop_constraint("ck_inbox_status", type_="check")
        batch.create_check_constraint(
            "ck_inbox_status", "status IN ('open', 'resolved', 'withdrawn')"
        )


def downgrade() -> None:
    """Drop the address; withdrawn rows count as resolved."""
    op.execute("UPDATE inbox SET status = 'resolved' WHERE status = 'withdrawn'")
    with op.batch_alter_table("inbox") as batch:
        batch.drop_constraint("ck_inbox_status", type_="check")
        batch.create_check_constraint("ck_inbox_status", "status IN ('open', 'resolved')")
        batch.drop_column("followup_email")
