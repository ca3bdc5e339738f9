"""The billing schema as SQLAlchemy Core tables on one MetaData; Alembic migrations mirror it."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect

# Stable constraint names, so migrations can refer to them on every dialect.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)

# Statuses after which a subscription no longer belongs to its account (`Status.is_live`).
ENDED_STATUSES = ("canceled", "incomplete_expired")
_LIVE = sa.text("status NOT IN ('canceled', 'incomplete_expired')")
_PENDING = sa.text("pending_effective_at IS NOT NULL")


class UTCDateTime(sa.TypeDecorator[datetime]):
    """Aware UTC in, aware UTC out. SQLite keeps no offset, so it stores naive UTC."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError("naive datetimes are not stored; pass an aware UTC instant")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if not isinstance(value, datetime):
            raise TypeError(f"expected a datetime from the database, got {type(value).__name__}")
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


# SQLite autoincrements only an INTEGER PRIMARY KEY; PostgreSQL gets a 64-bit serial.
_BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def utcnow() -> datetime:
    return datetime.now(UTC)


accounts = sa.Table(
    "accounts",
    metadata,
    sa.Column("account_id", sa.String(64), primary_key=True),
    # One gateway customer per account and one account per customer.
    sa.Column("customer_ref", sa.String(255), nullable=False, unique=True),
    sa.Column("created_at", UTCDateTime(), nullable=False, default=utcnow),
)

subscriptions = sa.Table(
    "subscriptions",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column(
        "account_id",
        sa.String(64),
        sa.ForeignKey("accounts.account_id", ondelete="RESTRICT"),
        nullable=False,
        index=True,
    ),
    sa.Column("subscription_ref", sa.String(255), nullable=False, unique=True),
    sa.Column("customer_ref", sa.String(255), nullable=False, index=True),
    sa.Column("plan_id", sa.String(64), nullable=False),
    sa.Column("interval", sa.String(16), nullable=False),
    sa.Column("status", sa.String(32), nullable=False),
    sa.Column("current_period_start", UTCDateTime(), nullable=False),
    sa.Column("current_period_end", UTCDateTime(), nullable=False),
    sa.Column("cancel_at_period_end", sa.Boolean, nullable=False),
    sa.Column("pending_plan_id", sa.String(64), nullable=True),
    sa.Column("pending_interval", sa.String(16), nullable=True),
    sa.Column("pending_effective_at", UTCDateTime(), nullable=True),
    sa.Column("payment_method_brand", sa.String(32), nullable=True),
    sa.Column("payment_method_last4", sa.CHAR(4), nullable=True),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("synced_at", UTCDateTime(), nullable=True),
    sa.Column("ended_at", UTCDateTime(), nullable=True),
    sa.Column("created_at", UTCDateTime(), nullable=False, default=utcnow),
    sa.Column("updated_at", UTCDateTime(), nullable=False, default=utcnow, onupdate=utcnow),
    sa.Column("cancels_at", UTCDateTime(), nullable=True),
    sa.CheckConstraint("version >= 1", name="version_positive"),
    # A pending change is all three fields or none.
    sa.CheckConstraint(
        "(pending_plan_id IS NULL) = (pending_interval IS NULL)"
        " AND (pending_plan_id IS NULL) = (pending_effective_at IS NULL)",
        name="pending_change_complete",
    ),
    sa.CheckConstraint(
        "(payment_method_brand IS NULL) = (payment_method_last4 IS NULL)",
        name="payment_method_complete",
    ),
    # At most one live subscription per account: the guard against double-booking.
    sa.Index(
        "uq_subscriptions_one_live_per_account",
        "account_id",
        unique=True,
        sqlite_where=_LIVE,
        postgresql_where=_LIVE,
    ),
    # Downgrades the core keeps, by when they fall due (`pending_changes_due`): the worker asks
    # every minute, so it reads the few rows with a change, never the whole table.
    sa.Index(
        "ix_subscriptions_pending_due",
        "pending_effective_at",
        sqlite_where=_PENDING,
        postgresql_where=_PENDING,
    ),
)

# The one checkout per account that can still be paid (`CheckoutStatus.OPEN`).
_OPEN = sa.text("status = 'open'")

checkouts = sa.Table(
    "checkouts",
    metadata,
    sa.Column("id", sa.String(255), primary_key=True),  # the gateway's checkout id
    sa.Column(
        "account_id",
        sa.String(64),
        sa.ForeignKey("accounts.account_id", ondelete="RESTRICT"),
        nullable=False,
        index=True,
    ),
    sa.Column("plan_id", sa.String(64), nullable=False),
    sa.Column("interval", sa.String(16), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("closed_at", UTCDateTime(), nullable=True),
    sa.CheckConstraint("status IN ('open', 'complete', 'expired')", name="status_known"),
    sa.CheckConstraint("(status = 'open') = (closed_at IS NULL)", name="closed_when_not_open"),
    # At most one open checkout per account: two tabs (or twenty) cannot both be payable.
    sa.Index(
        "uq_checkouts_one_open_per_account",
        "account_id",
        unique=True,
        sqlite_where=_OPEN,
        postgresql_where=_OPEN,
    ),
)

quotes = sa.Table(
    "quotes",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("account_id", sa.String(64), nullable=False, index=True),
    sa.Column("subscription_ref", sa.String(255), nullable=False),
    sa.Column("from_plan", sa.String(64), nullable=False),
    sa.Column("from_interval", sa.String(16), nullable=False),
    sa.Column("to_plan", sa.String(64), nullable=False),
    sa.Column("to_interval", sa.String(16), nullable=False),
    sa.Column("timing", sa.String(32), nullable=False),
    sa.Column("amount_due_now", sa.BigInteger, nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("effective_at", UTCDateTime(), nullable=False),
    sa.Column("proration_at", UTCDateTime(), nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("expires_at", UTCDateTime(), nullable=False),
    sa.Column("redeemed_at", UTCDateTime(), nullable=True),
)

invoices = sa.Table(
    "invoices",
    metadata,
    sa.Column("id", sa.String(255), primary_key=True),  # the gateway's reference
    sa.Column("account_id", sa.String(64), nullable=False),
    sa.Column("customer_ref", sa.String(255), nullable=False, index=True),
    sa.Column("subscription_ref", sa.String(255), nullable=True),
    sa.Column("number", sa.String(64), nullable=True),
    sa.Column("status", sa.String(32), nullable=False),
    sa.Column("amount_due", sa.BigInteger, nullable=False),
    sa.Column("amount_paid", sa.BigInteger, nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("created", UTCDateTime(), nullable=False),
    sa.Column("period_start", UTCDateTime(), nullable=False),
    sa.Column("period_end", UTCDateTime(), nullable=False),
    sa.Column("billing_reason", sa.String(32), nullable=False),
    sa.Column("pdf_url", sa.Text, nullable=True),
    sa.Column("hosted_url", sa.Text, nullable=True),
    # The invoice list: one account's invoices, newest first. Both databases scan a b-tree
    # backwards, so an ascending index serves `created DESC` and keeps autogenerate exact.
    sa.Index("ix_invoices_account_created", "account_id", "created"),
)

audit_log = sa.Table(
    "audit_log",
    metadata,
    sa.Column("id", _BIG_ID, primary_key=True, autoincrement=True),
    sa.Column("account_id", sa.String(64), nullable=False, index=True),
    sa.Column("action", sa.String(128), nullable=False),
    sa.Column("inputs", sa.JSON, nullable=False),
    sa.Column("outcome", sa.String(128), nullable=False),
    sa.Column("at", UTCDateTime(), nullable=False),
)

webhook_inbox = sa.Table(
    "webhook_inbox",
    metadata,
    sa.Column("id", _BIG_ID, primary_key=True, autoincrement=True),
    sa.Column("gateway", sa.String(32), nullable=False),
    sa.Column("event_id", sa.String(255), nullable=False, unique=True),
    sa.Column("type", sa.String(128), nullable=False),
    sa.Column("payload", sa.Text, nullable=False),
    sa.Column("received_at", UTCDateTime(), nullable=False),
    sa.Column("applied_at", UTCDateTime(), nullable=True),
    sa.Column("parked_at", UTCDateTime(), nullable=True),
    sa.Column("outcome", sa.String(64), nullable=True),
    sa.Column("attempts", sa.Integer, nullable=False, server_default=sa.text("0")),
    sa.Column("last_error", sa.Text, nullable=True),
    sa.Column("next_attempt_at", UTCDateTime(), nullable=True),
    sa.Column("locked_until", UTCDateTime(), nullable=True),
    sa.Column("locked_by", sa.String(128), nullable=True),
    sa.Column("object_ref", sa.String(255), nullable=True, index=True),
    sa.Column("event_created", UTCDateTime(), nullable=True),
    # Claiming due work: not yet applied, due now.
    sa.Index("ix_webhook_inbox_due", "applied_at", "next_attempt_at"),
)
