"""The ``extractive`` route: a turn answered by quoting the knowledge base.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06
"""

from __future__ import annotations

from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    """Allow ``extractive`` in ``turns.route``."""
    with op.batch_alter_table("turns") as batch:
        batch.drop_constraint("ck_turns_route", type_="check")
        batch.create_check_constraint(
            "ck_turns_route", "route IN ('flow', 'extractive', 'local', 'cloud', 'human')"
        )


def downgrade() -> None:
    """Extractive turns count as local ones (both answered without the cloud)."""
    op.execute("UPDATE turns SET route = 'local' WHERE route = 'extractive'")
    with op.batch_alter_table("turns") as batch:
        batch.drop_constraint("ck_turns_route", type_="check")
        batch.create_check_constraint(
            "ck_turns_route", "route IN ('flow', 'local', 'cloud', 'human')"
        )
