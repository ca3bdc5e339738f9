"""Find the downgrades the core keeps by when they fall due: a partial index on
`pending_effective_at` (only rows with a pending change), for the worker's `pending_changes_due`.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision: str | None = "0005"
branch_labels: str | None = None
depends_on: str | None = None

_PENDING = sa.text("pending_effective_at IS NOT NULL")


def upgrade() -> None:
    op.create_index(
        "ix_subscriptions_pending_due",
        "subscriptions",
        ["pending_effective_at"],
        unique=False,
        sqlite_where=_PENDING,
        postgresql_where=_PENDING,
    )


def downgrade() -> None:
    op.drop_index("ix_subscriptions_pending_due", table_name="subscriptions")
