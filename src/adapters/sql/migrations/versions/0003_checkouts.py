"""The checkouts we started: at most one open checkout per account (a partial unique index).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision: str | None = "0002"
branch_labels: str | None = None
depends_on: str | None = None

_OPEN = sa.text("status = 'open'")


def upgrade() -> None:
    op.create_table(
        "checkouts",
        sa.Column("id", sa.String(length=255), nullable=False),
        sa.Column("account_id", sa.String(length=64), nullable=False),
        sa.Column("plan_id", sa.String(length=64), nullable=False),
        sa.Column("interval", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "status IN ('open', 'complete', 'expired')",
            name=op.f("ck_checkouts_status_known"),
        ),
        sa.CheckConstraint(
            "(status = 'open') = (closed_at IS NULL)",
            name=op.f("ck_checkouts_closed_when_not_open"),
        ),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.account_id"],
            name=op.f("fk_checkouts_account_id_accounts"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_checkouts")),
    )
    op.create_index(op.f("ix_checkouts_account_id"), "checkouts", ["account_id"], unique=False)
    op.create_index(
        "uq_checkouts_one_open_per_account",
        "checkouts",
        ["account_id"],
        unique=True,
        sqlite_where=_OPEN,
        postgresql_where=_OPEN,
    )


def downgrade() -> None:
    op.drop_table("checkouts")  # dropping a table drops its indexes too
