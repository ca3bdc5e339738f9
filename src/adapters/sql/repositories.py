"""SQL repositories and unit of work: one transaction per unit.

Each repository maps its rows to domain objects and back explicitly, with the functions in
`adapters.sql.rows`.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from types import TracebackType
from typing import Any, Self

import attrs
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine

from responseiq_billing.adapters.sql.inbox import SqlInbox
from responseiq_billing.adapters.sql.rows import (
    audit_entry_to_row,
    checkout_from_row,
    checkout_to_row,
    invoice_from_row,
    invoice_to_row,
    quote_from_row,
    quote_to_row,
    subscription_from_row,
    subscription_to_row,
)
from responseiq_billing.adapters.sql.tables import (
    accounts,
    audit_log,
    checkouts,
    invoices,
    quotes,
    subscriptions,
    utcnow,
)
from responseiq_billing.application.ports import (
    AuditEntry,
    AuditLog,
    CheckoutRecord,
    CheckoutRepository,
    CheckoutStatus,
    CustomerRepository,
    InboxRepository,
    InvoiceRepository,
    QuoteRepository,
    SubscriptionRepository,
    UnitOfWork,
)
from responseiq_billing.domain.errors import StaleVersion
from responseiq_billing.domain.invoices import Invoice, InvoicePage, InvoiceStatus
from responseiq_billing.domain.quotes import Quote
from responseiq_billing.domain.subscription import Status, Subscription


@contextmanager
def _conflicts_are_stale(conn: Connection, message: str) -> Iterator[None]:
    """Run a write in a savepoint; a constraint violation becomes `StaleVersion`.

    The savepoint keeps the unit of work usable after the conflict, as PostgreSQL would
    otherwise refuse every later statement of the aborted transaction.
    """
    try:
        with conn.begin_nested():
            yield
    except sa.exc.IntegrityError as exc:
        raise StaleVersion(message) from exc


def _upsert(conn: Connection, table: sa.Table, values: Mapping[str, Any], key: str) -> None:
    """INSERT ... ON CONFLICT (key) DO UPDATE, in the dialect's own syntax."""
    conn.execute(_upsert_statement(conn.dialect.name, table, tuple(values), key), dict(values))


@functools.cache
def _upsert_statement(dialect: str, table: sa.Table, columns: tuple[str, ...], key: str) -> Any:
    """Built once per table and set of columns, the values bound at each call: building it
    (the `excluded` columns above all) cost more than running it."""
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = insert(table)
    changes = {name: stmt.excluded[name] for name in columns if name != key}
    return stmt.on_conflict_do_update(index_elements=[table.c[key]], set_=changes)


# -- customers --------------------------------------------------------------------------------

# The reads every applied event makes, built once (their values bound at each call): building
# a statement cost about as much as the round trip.
_CUSTOMER_OF = sa.select(accounts.c.customer_ref).where(
    accounts.c.account_id == sa.bindparam("account_id")
)
_ACCOUNT_OF = sa.select(accounts.c.account_id).where(
    accounts.c.customer_ref == sa.bindparam("customer_ref")
)


class SqlCustomers:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def get(self, account_id: str) -> str | None:
        return self._conn.scalar(_CUSTOMER_OF, {"account_id": account_id})

    def account_for(self, customer_ref: str) -> str | None:
        return self._conn.scalar(_ACCOUNT_OF, {"customer_ref": customer_ref})

    def accounts(self) -> Sequence[str]:
        # Sorted in Python: PostgreSQL's collation may order ids differently from code points.
        return sorted(self._conn.scalars(sa.select(accounts.c.account_id)))

    def add(self, account_id: str, customer_ref: str) -> None:
        existing = self.get(account_id)
        if existing == customer_ref:
            return
        owner = self.account_for(customer_ref)
        if existing is not None or (owner is not None and owner != account_id):
            raise StaleVersion("This account or customer is already linked to another one.")
        with _conflicts_are_stale(
            self._conn, "This account or customer is already linked to another one."
        ):
            self._conn.execute(
                accounts.insert().values(
                    account_id=account_id, customer_ref=customer_ref, created_at=utcnow()
                )
            )


# -- subscriptions ----------------------------------------------------------------------------


# A connection execution option: the unit only reads, so SQLite begins it deferred (database.py).
READ_ONLY = "billing_read_only"
_LIVE = subscriptions.c.status.not_in([s.value for s in Status if not s.is_live])
# The live one first (there is at most one), else the one that started last.
_ACCOUNTS_SUBSCRIPTION = (
    sa.select(subscriptions)
    .where(subscriptions.c.account_id == sa.bindparam("account_id"))
    .order_by(
        sa.case((_LIVE, 0), else_=1),
        subscriptions.c.current_period_start.desc(),
        subscriptions.c.id.desc(),
    )
    .limit(1)
)
_SUBSCRIPTION_BY_REF = sa.select(subscriptions).where(
    subscriptions.c.subscription_ref == sa.bindparam("subscription_ref")
)


# Writes of every applied event, built once; the values are bound at each call (a statement
# built with .values(...) is keyed, looked up and often compiled again on every call).
_ADD_SUBSCRIPTION = subscriptions.insert()
_SAVE_SUBSCRIPTION = (
    subscriptions.update()
    .where(
        subscriptions.c.subscription_ref == sa.bindparam("held_ref"),
        subscriptions.c.version == sa.bindparam("held_version"),  # optimistic concurrency
    )
    .values(version=subscriptions.c.version + 1)
)


class SqlSubscriptions:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def for_account(self, account_id: str) -> Subscription | None:
        row = (
            self._conn.execute(_ACCOUNTS_SUBSCRIPTION, {"account_id": account_id})
            .mappings()
            .first()
        )
        return subscription_from_row(row) if row is not None else None

    def by_gateway_ref(self, subscription_ref: str) -> Subscription | None:
        row = (
            self._conn.execute(_SUBSCRIPTION_BY_REF, {"subscription_ref": subscription_ref})
            .mappings()
            .first()
        )
        return subscription_from_row(row) if row is not None else None

    def pending_changes_due(self, by: datetime, *, limit: int) -> Sequence[Subscription]:
        # Served by the partial index `ix_subscriptions_pending_due`.
        rows = self._conn.execute(
            sa.select(subscriptions)
            .where(subscriptions.c.pending_effective_at.is_not(None))
            .where(subscriptions.c.pending_effective_at <= by)
            .where(_LIVE)
            .order_by(subscriptions.c.pending_effective_at, subscriptions.c.id)
            .limit(limit)
        ).mappings()
        return [subscription_from_row(row) for row in rows]

    def add(self, subscription: Subscription) -> None:
        now = utcnow()
        with _conflicts_are_stale(
            self._conn, "This subscription is already stored, or the account has a live one."
        ):
            self._link_account(subscription)  # undone with the insert if that fails
            row = subscription_to_row(subscription)
            self._conn.execute(
                _ADD_SUBSCRIPTION, {**row, "version": 1, "created_at": now, "updated_at": now}
            )
        subscription.version = 1

    def _customers(self) -> SqlCustomers:
        """The account links `_link_account` reads and writes."""
        return SqlCustomers(self._conn)

    def _link_account(self, subscription: Subscription) -> None:
        """A subscription's account is linked to its customer if it has none yet."""
        customers = self._customers()
        if customers.get(subscription.account_id) is None:
            customers.add(subscription.account_id, subscription.customer_ref)

    def save(self, subscription: Subscription) -> None:
        expected = subscription.version
        with _conflicts_are_stale(self._conn, "This account already has a live subscription."):
            row = subscription_to_row(subscription)
            result = self._conn.execute(
                _SAVE_SUBSCRIPTION,
                {
                    **row,
                    "updated_at": utcnow(),
                    "held_ref": row["subscription_ref"],
                    "held_version": expected,
                },
            )
        if result.rowcount != 1:
            raise StaleVersion()
        subscription.version = expected + 1


# -- checkouts --------------------------------------------------------------------------------


_OPEN_CHECKOUT = checkouts.c.status == CheckoutStatus.OPEN.value


_CLOSE_CHECKOUT = checkouts.update().where(
    checkouts.c.id == sa.bindparam("checkout_id"), _OPEN_CHECKOUT
)


class SqlCheckouts:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def _one(self, *where: sa.ColumnElement[bool]) -> CheckoutRecord | None:
        row = self._conn.execute(sa.select(checkouts).where(*where)).mappings().first()
        return checkout_from_row(row) if row is not None else None

    def get(self, checkout_id: str) -> CheckoutRecord | None:
        return self._one(checkouts.c.id == checkout_id)

    def open_for(self, account_id: str) -> CheckoutRecord | None:
        return self._one(checkouts.c.account_id == account_id, _OPEN_CHECKOUT)

    def open(self, checkout: CheckoutRecord) -> CheckoutRecord | None:
        if checkout.status is not CheckoutStatus.OPEN:
            raise ValueError("only an open checkout is opened")
        with _conflicts_are_stale(
            self._conn, "This checkout is stored already, or the account has another open one."
        ):
            # Starts for one account queue on the account's row (PostgreSQL; SQLite's
            # BEGIN IMMEDIATE already serialises writers), so each one reads the checkout the
            # one before it opened instead of racing it into the unique index. NO KEY: the
            # foreign-key checks of other writes for the account are not held up.
            locked = self._conn.scalar(
                sa.select(accounts.c.account_id)
                .where(accounts.c.account_id == checkout.account_id)
                .with_for_update(key_share=True)
            )
            if locked is None:
                raise StaleVersion("This account has no customer yet.")
            before = self.open_for(checkout.account_id)
            closed = None
            if before is not None:
                closed = attrs.evolve(
                    before, status=CheckoutStatus.EXPIRED, closed_at=checkout.created_at
                )
                self._close(before.id, CheckoutStatus.EXPIRED, checkout.created_at)
            self._conn.execute(checkouts.insert().values(**checkout_to_row(checkout)))
        return closed

    def _close(self, checkout_id: str, status: CheckoutStatus, at: datetime) -> bool:
        values = {"checkout_id": checkout_id, "status": status.value, "closed_at": at}
        return self._conn.execute(_CLOSE_CHECKOUT, values).rowcount == 1

    def close(self, checkout_id: str, status: CheckoutStatus, at: datetime) -> bool:
        if status is CheckoutStatus.OPEN:
            raise ValueError("a checkout is closed as complete or expired")
        return self._close(checkout_id, status, at)


# -- quotes -----------------------------------------------------------------------------------


class SqlQuotes:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def add(self, quote: Quote) -> None:
        with _conflicts_are_stale(self._conn, "This quote is already stored."):
            self._conn.execute(quotes.insert().values(**quote_to_row(quote)))

    def get(self, quote_id: str) -> Quote | None:
        row = (
            self._conn.execute(sa.select(quotes).where(quotes.c.id == quote_id)).mappings().first()
        )
        return quote_from_row(row) if row is not None else None

    def save(self, quote: Quote) -> None:
        _upsert(self._conn, quotes, quote_to_row(quote), "id")


# -- invoices ---------------------------------------------------------------------------------


_INVOICE = sa.select(invoices).where(invoices.c.id == sa.bindparam("invoice_id"))


def _stage(status: Any) -> Any:
    """`InvoiceStatus.stage` in SQL, of a status column."""
    return sa.case({s.value: s.stage for s in InvoiceStatus}, value=status)


@functools.cache
def _invoice_upsert(dialect: str) -> Any:
    """INSERT, or UPDATE unless the row held is at a later stage; RETURNING says which
    happened. One statement: the stage is compared under the row's lock, so nothing written
    between our read and our write is undone."""
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = insert(invoices)
    return stmt.on_conflict_do_update(
        index_elements=[invoices.c.id],
        set_={c.name: stmt.excluded[c.name] for c in invoices.c if c.name != "id"},
        where=_stage(invoices.c.status) <= _stage(stmt.excluded.status),
    ).returning(invoices.c.id)


class SqlInvoices:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def upsert(self, account_id: str, invoice: Invoice) -> bool:
        row = invoice_to_row(account_id, invoice)
        return self._conn.execute(_invoice_upsert(self._conn.dialect.name), row).first() is not None

    def get(self, invoice_id: str) -> tuple[str, Invoice] | None:
        row = self._conn.execute(_INVOICE, {"invoice_id": invoice_id}).mappings().first()
        return (row["account_id"], invoice_from_row(row)) if row is not None else None

    def list_for_account(
        self, account_id: str, *, limit: int, starting_after: str | None
    ) -> InvoicePage:
        # Newest first, ties broken by id (descending), exactly like the in-memory list.
        query = sa.select(invoices).where(invoices.c.account_id == account_id)
        if starting_after is not None:
            cursor = self._conn.execute(
                sa.select(invoices.c.created, invoices.c.id).where(
                    invoices.c.account_id == account_id, invoices.c.id == starting_after
                )
            ).first()
            if cursor is None:
                return InvoicePage((), has_more=False)
            created, last_id = cursor
            query = query.where(
                sa.or_(
                    invoices.c.created < created,
                    sa.and_(invoices.c.created == created, invoices.c.id < last_id),
                )
            )
        rows = (
            self._conn.execute(
                query.order_by(invoices.c.created.desc(), invoices.c.id.desc()).limit(limit + 1)
            )
            .mappings()
            .all()
        )
        items = tuple(invoice_from_row(r) for r in rows[:limit])
        return InvoicePage(items, has_more=len(rows) > limit)


# -- audit ------------------------------------------------------------------------------------


class SqlAudit:
    """Append-only: this class has no statement that updates or deletes an entry."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def append(self, entry: AuditEntry) -> None:
        self._conn.execute(audit_log.insert().values(**audit_entry_to_row(entry)))

    def for_account(self, account_id: str) -> Sequence[AuditEntry]:
        rows = (
            self._conn.execute(
                sa.select(audit_log)
                .where(audit_log.c.account_id == account_id)
                .order_by(audit_log.c.id)
            )
            .mappings()
            .all()
        )
        return [
            AuditEntry(r["account_id"], r["action"], dict(r["inputs"]), r["outcome"], r["at"])
            for r in rows
        ]


# -- the unit of work -------------------------------------------------------------------------


class SqlUnitOfWork:
    """One connection and one transaction; leaving without `commit()` rolls back.

    The transaction begins with the first statement and a new one after each commit, so a
    unit that only commits once holds locks only between its first statement and the commit.
    """

    customers: CustomerRepository
    subscriptions: SubscriptionRepository
    checkouts: CheckoutRepository
    quotes: QuoteRepository
    invoices: InvoiceRepository
    audit: AuditLog
    inbox: InboxRepository

    def __init__(self, engine: Engine, *, read_only: bool = False) -> None:
        self._engine = engine
        self._conn: Connection | None = None
        self._read_only = read_only

    def __enter__(self) -> Self:
        if self._conn is not None:
            raise RuntimeError("this unit of work is already open")
        conn = self._engine.connect()
        if self._read_only:
            conn.execution_options(**{READ_ONLY: True})
        self._conn = conn
        self.customers = SqlCustomers(conn)
        self.subscriptions = SqlSubscriptions(conn)
        self.checkouts = SqlCheckouts(conn)
        self.quotes = SqlQuotes(conn)
        self.invoices = SqlInvoices(conn)
        self.audit = SqlAudit(conn)
        self.inbox = SqlInbox(conn)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        try:
            conn.rollback()
        finally:
            conn.close()

    def _open(self) -> Connection:
        if self._conn is None:
            raise RuntimeError("use the unit of work in a `with` block")
        return self._conn

    def commit(self) -> None:
        if self._read_only:
            raise RuntimeError("a read-only unit of work cannot commit")
        self._open().commit()

    def rollback(self) -> None:
        self._open().rollback()


def _conforms(engine: Engine) -> UnitOfWork:
    return SqlUnitOfWork(engine)  # mypy checks here that the class keeps the port's shape
