"""PostgreSQL announces every committed subscription change (NOTIFY), for the read caches.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02

The payload is the account id. NOTIFY is transactional: it is delivered only if, and after,
the writing transaction commits. SQLite needs nothing: readers ask `PRAGMA data_version`.
"""

from __future__ import annotations

from alembic import op

revision = "0004"
down_revision: str | None = "0003"
branch_labels: str | None = None
depends_on: str | None = None

CHANNEL = "billing_subscriptions"


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(
        f"""
        CREATE FUNCTION subscriptions_notify() RETURNS trigger AS $$
        BEGIN
            IF TG_OP <> 'INSERT' THEN
                PERFORM pg_notify('{CHANNEL}', OLD.account_id);
            END IF;
            IF TG_OP <> 'DELETE' THEN
                PERFORM pg_notify('{CHANNEL}', NEW.account_id);
            END IF;
            RETURN NULL;
        END;
        $$ LANGUAGE plpgsql
        """
    )
    op.execute(
        "CREATE TRIGGER subscriptions_notify AFTER INSERT OR UPDATE OR DELETE ON subscriptions "
        "FOR EACH ROW EXECUTE FUNCTION subscriptions_notify()"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP TRIGGER IF EXISTS subscriptions_notify ON subscriptions")
    op.execute("DROP FUNCTION IF EXISTS subscriptions_notify()")
