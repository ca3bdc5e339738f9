"""When a scheduled cancellation ends a subscription (`cancels_at`): the period end or a set date.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02

Nullable, so existing rows need no value: one set to cancel shows its period end until the
gateway's next view (an event or `billing reconcile`) fills it in.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision: str | None = "0004"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.add_column(
        "subscriptions", sa.Column("cancels_at", sa.DateTime(timezone=True), nullable=True)
    )


def downgrade() -> None:
    op.drop_column("subscriptions", "cancels_at")
