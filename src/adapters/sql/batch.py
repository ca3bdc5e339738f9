"""One transaction for a batch of inbox events: units of work that share it, a savepoint per event.

`ProcessInbox` applies a claimed batch through `SqlBatch`: every unit of work the use cases
open during the batch is the batch's connection, so the batch costs one BEGIN and one COMMIT
(one WAL flush) instead of one connection checkout, BEGIN and COMMIT or ROLLBACK per unit.
A unit's `commit()` is therefore not a commit: nothing is durable before the batch commits.
A unit that rolls back, is left by an exception, or is left with uncommitted writes taints the
event (its partial writes cannot be undone alone); the inbox then rolls the event back to its
savepoint and applies it again on its own, with real transactions.

Fewer round trips per event: account links (never changed once written) are read once per
batch, and audit entries are held and written in one INSERT when the batch commits (or before
the audit log is read in it); an event rolled back to its savepoint drops both.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Self, cast

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Connection, Engine

from responseiq_billing.adapters.sql.inbox import SqlInbox
from responseiq_billing.adapters.sql.repositories import (
    SqlAudit,
    SqlCheckouts,
    SqlCustomers,
    SqlInvoices,
    SqlQuotes,
    SqlSubscriptions,
)
from responseiq_billing.adapters.sql.rows import (
    audit_entry_to_row,
    subscription_from_row,
    subscription_to_row,
)
from responseiq_billing.adapters.sql.tables import accounts, audit_log, subscriptions
from responseiq_billing.application.ports import (
    AuditEntry,
    AuditLog,
    CheckoutRepository,
    CustomerRepository,
    InboxRepository,
    InvoiceRepository,
    QuoteRepository,
    SubscriptionRepository,
    UnitOfWork,
)
from responseiq_billing.domain.errors import StaleVersion
from responseiq_billing.domain.subscription import Subscription

# The first key of the batch's advisory locks (`hold`): what the inbox's batches lock is theirs.
_LOCK_SPACE = 0x1B0C


def _with_copies(key: sa.ColumnElement[str], held: sa.FromClause) -> sa.Select:
    """Each customer held, with its account link and its subscriptions (one row each, or
    one with NULLs)."""
    return sa.select(
        key.label("held_key"), accounts.c.account_id.label("linked_account"), *subscriptions.c
    ).select_from(held.outerjoin(subscriptions, subscriptions.c.customer_ref == key))


_WANTED = (
    sa.func.unnest(sa.bindparam("keys", type_=postgresql.ARRAY(sa.String)))
    .table_valued("key")
    .render_derived(name="wanted")
)
# PostgreSQL: the customers locked now (a CTE with a volatile function runs once per key)
_MINE = (
    sa.select(_WANTED.c.key)
    .where(sa.func.pg_try_advisory_xact_lock(_LOCK_SPACE, sa.func.hashtext(_WANTED.c.key)))
    .cte("mine")
)
_HOLD = _with_copies(_MINE.c.key, _MINE.outerjoin(accounts, accounts.c.customer_ref == _MINE.c.key))
# SQLite: nothing to lock; the customers with an account link
_LINKED = _with_copies(accounts.c.customer_ref, accounts).where(
    accounts.c.customer_ref.in_(sa.bindparam("keys", expanding=True))
)

_SAVEPOINT = "inbox_event"  # one name, declared again per event: PostgreSQL and SQLite keep
# the newest of a name, so no RELEASE round trip is needed between events


class SqlBatch:
    """What `application.inbox.InboxBatch` asks for, on one connection of `engine`."""

    inbox: InboxRepository

    def __init__(self, engine: Engine, *, reuse_reads: bool = True) -> None:
        self._engine = engine
        self._conn: Connection | None = None
        self._reads: _ReadsReused | None = None
        self._reuse_reads = reuse_reads
        self._writes = 0
        self._event_began = 0  # `_writes` when the current event began
        self.guarded = True  # the current event began after a savepoint
        self.tainted = False
        self.links = _Links()  # account links read or written in this batch
        self._versions: dict[str, int] = {}  # our copies the current event wrote
        # Our copies of the held customers' subscriptions, read with the hold, as the batch
        # then wrote them (see `copy_of`)
        self._copies: dict[str, Any] = {}
        # Audit entries held until the batch commits; those from `_audit_mark` on are the
        # current event's (see `_BatchAudit`)
        self._audit: list[dict[str, Any]] = []
        self._audit_mark = 0
        # Earlier events' entries written after the current savepoint (for a read of the log):
        # a rollback to it undoes that INSERT, so they are held again
        self._audit_rewritten: list[dict[str, Any]] = []

    def __enter__(self) -> Self:
        conn = self._engine.connect()
        sa.event.listen(conn, "before_cursor_execute", self._count)
        self._conn = conn
        self._reads = _ReadsReused(conn, self) if self._reuse_reads else None
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

    def _count(self, _conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if not statement.lstrip()[:6].upper().startswith("SELECT"):
            self._writes += 1

    @property
    def connection(self) -> Connection:
        if self._conn is None:
            raise RuntimeError("use the batch in a `with` block")
        return self._conn

    @property
    def repository_connection(self) -> Connection:
        """What the units' repositories use: the connection, reusing reads if asked."""
        conn = self.connection
        return conn if self._reads is None else cast(Connection, self._reads)

    @property
    def writes(self) -> int:
        return self._writes

    def unit_of_work(self) -> UnitOfWork:
        return _SharedUnitOfWork(self)

    def hold(self, keys: Sequence[str]) -> set[str]:
        """Lock each key for this transaction without waiting; return the keys another holds.

        PostgreSQL: a transaction-scoped advisory lock per key (in the inbox's own lock space,
        the key hashed: a collision only makes a key look held), released by the batch's
        COMMIT or ROLLBACK. SQLite has one writer at a time: nothing to hold. The account
        links of the customers held (see `_BatchCustomers`) and their subscriptions (see
        `copy_of`) are read in the same statement.
        """
        if not keys:
            return set()
        postgres = self.connection.dialect.name == "postgresql"
        rows = self.connection.execute(_HOLD if postgres else _LINKED, {"keys": list(keys)})
        mine: set[str] = set()
        self._copies = {}
        for row in rows.mappings():
            mine.add(row["held_key"])
            if row["linked_account"] is not None:
                self.links.put(row["linked_account"], row["held_key"])
            if row["subscription_ref"] is not None:
                self._copies[row["subscription_ref"]] = row
        return set(keys) - mine if postgres else set()

    def copy_of(self, subscription_ref: str) -> Subscription | None:
        """Our copy of a held customer's subscription as `hold` read it, or as the batch
        last wrote it, for an event that runs unguarded (None: read it).

        The same bet as reads reused within an event (`_ReadsReused`), over the batch: no
        other batch writes these rows (the hold), and a request that writes one meanwhile is
        caught where it matters, by the version check of our write (`StaleVersion` taints
        the event; the batch runs again guarded, where every read is made afresh). An event
        that writes nothing on an older copy leaves the newer one as it is.
        """
        if self.guarded:
            return None
        row = self._copies.get(subscription_ref)
        return None if row is None else subscription_from_row(row)

    @property
    def wrote(self) -> bool:
        return self._writes != self._event_began

    @property
    def versions_written(self) -> Mapping[str, int]:
        return self._versions

    def next_event(self) -> None:
        self.guarded = False
        self.tainted = False
        self._event_began = self._writes
        self._versions = {}
        if self._reads is not None:
            self._reads.forget()
        self._audit_mark = len(self._audit)
        self._audit_rewritten = []
        self.links.savepoint()

    def savepoint(self) -> None:
        self.next_event()
        self.guarded = True
        self.connection.exec_driver_sql(f"SAVEPOINT {_SAVEPOINT}")

    def rollback_to_savepoint(self) -> None:
        if self._reads is not None:
            self._reads.forget()
        self._versions = {}
        self.links.rollback()
        self._audit[:] = self._audit_rewritten + self._audit[: self._audit_mark]
        self._audit_mark = len(self._audit)
        self._audit_rewritten = []
        self.connection.exec_driver_sql(f"ROLLBACK TO SAVEPOINT {_SAVEPOINT}")

    def written(self, subscription: Subscription) -> None:
        """Our copy of `subscription` was written in the current event, at its version: what a
        read of it now returns (datetimes as the database gives them back: UTC)."""
        ref = subscription.subscription_ref
        self._versions[ref] = subscription.version
        row = subscription_to_row(subscription) | {"version": subscription.version}
        self._copies[ref] = {
            name: value.astimezone(UTC) if isinstance(value, datetime) else value
            for name, value in row.items()
        }

    def hold_audit(self, entry: AuditEntry) -> None:
        """An audit entry, written with the batch: counted as a write of the unit that holds it
        (a unit left with it uncommitted taints the event, as a written row would)."""
        self._writes += 1
        self._audit.append(audit_entry_to_row(entry))

    def write_audit(self) -> None:
        """The held audit entries, in one INSERT (the current event's, written after its
        savepoint, are undone by a rollback to it)."""
        if self._audit:
            self.connection.execute(audit_log.insert(), self._audit)
            self._audit_rewritten += self._audit[: self._audit_mark]
            self._audit.clear()
        self._audit_mark = 0

    def commit(self) -> None:
        self.write_audit()
        self.connection.commit()


class _ReadsReused:
    """The batch's connection as the repositories see it: a SELECT repeated within one event,
    with no write of that event in between, is answered from the first answer.

    `ApplyGatewayEvent` reads the subscription row three times per event (judging the view,
    admitting it, rechecking before the write), each in its own unit of work by design. In a
    batch the units share one transaction, and a concurrent change between those reads is
    still caught where it matters: the write's version check (`UPDATE … WHERE version = …`)
    raises `StaleVersion`, which taints the event, and it runs again on its own with fresh
    reads. Any statement other than a SELECT, or any other use of the connection, forgets
    every answer; so does each event's savepoint and its rollback.
    """

    def __init__(self, conn: Connection, batch: SqlBatch) -> None:
        self._conn = conn
        self._batch = batch
        self._answers: dict[object, sa.FrozenResult[Any]] = {}

    def forget(self) -> None:
        self._answers.clear()

    def execute(self, statement: Any, *args: Any, **kwargs: Any) -> Any:
        key = _key(statement, args, kwargs)
        if key is None:
            self._answers.clear()
            return self._conn.execute(statement, *args, **kwargs)
        frozen = self._answers.get(key)
        if frozen is None:
            frozen = self._conn.execute(statement, *args).freeze()
            self._answers[key] = frozen
        return frozen()

    def scalar(self, statement: Any, *args: Any, **kwargs: Any) -> Any:
        return self.execute(statement, *args, **kwargs).scalar()

    def scalars(self, statement: Any, *args: Any, **kwargs: Any) -> Any:
        return self.execute(statement, *args, **kwargs).scalars()

    def begin_nested(self) -> Any:
        """A repository's own savepoint (a write that may conflict). An unguarded event takes
        none (two round trips): a failed write there taints the event, and the inbox rolls the
        whole transaction back and runs its events again guarded, where it is taken."""
        self._answers.clear()
        if self._batch.guarded:
            return self._conn.begin_nested()
        return _taint_on_error(self._batch)

    def __getattr__(self, name: str) -> Any:
        self._answers.clear()  # dialect …: whatever follows may write
        return getattr(self._conn, name)


@contextmanager
def _taint_on_error(batch: SqlBatch) -> Iterator[None]:
    try:
        yield
    except BaseException:
        batch.tainted = True
        raise


def _key(statement: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> object | None:
    """What identifies a read: a SELECT (not FOR UPDATE) with its values, whether they are in
    it or bound at the call (one dict of them)."""
    if not isinstance(statement, sa.Select) or statement._for_update_arg is not None or kwargs:
        return None
    if args:
        if len(args) != 1 or not isinstance(args[0], dict):
            return None
        # Built once and bound at each call: the statement object itself tells it apart (kept
        # in the key, so no other statement can take its identity while the answer is kept)
        return (statement, tuple(sorted((k, repr(v)) for k, v in args[0].items())))
    cache_key = statement._generate_cache_key()
    if cache_key is None:
        return None
    values = tuple(repr(b.effective_value) for b in cache_key.bindparams)
    return (cache_key.key, values)


class _SharedUnitOfWork:
    """A unit of work inside the batch's transaction: its commit only says "keep my writes"."""

    customers: CustomerRepository
    subscriptions: SubscriptionRepository
    checkouts: CheckoutRepository
    quotes: QuoteRepository
    invoices: InvoiceRepository
    audit: AuditLog
    inbox: InboxRepository

    def __init__(self, batch: SqlBatch) -> None:
        self._batch = batch
        self._kept = 0

    def __enter__(self) -> Self:
        conn = self._batch.repository_connection
        self.customers = _BatchCustomers(conn, self._batch.links)
        self.subscriptions = _BatchSubscriptions(conn, self._batch)
        self.checkouts = SqlCheckouts(conn)
        self.quotes = SqlQuotes(conn)
        self.invoices = SqlInvoices(conn)
        self.audit = _BatchAudit(conn, self._batch)
        self.inbox = SqlInbox(conn)
        self._kept = self._batch.writes
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is not None or self._batch.writes != self._kept:
            self._batch.tainted = True

    def commit(self) -> None:
        self._kept = self._batch.writes

    def rollback(self) -> None:
        self._batch.tainted = True


class _Links:
    """Account links (account id to customer ref and back) known in a batch. A link is never
    changed or removed once written, so one read in the batch stays true to its end, unless
    the current event wrote it and is rolled back to its savepoint: those are dropped."""

    def __init__(self) -> None:
        self._customer: dict[str, str] = {}
        self._account: dict[str, str] = {}
        self._since_savepoint: list[tuple[str, str]] = []

    def customer(self, account_id: str) -> str | None:
        return self._customer.get(account_id)

    def account(self, customer_ref: str) -> str | None:
        return self._account.get(customer_ref)

    def put(self, account_id: str, customer_ref: str) -> None:
        if self._customer.get(account_id) == customer_ref:
            return
        self._customer[account_id] = customer_ref
        self._account[customer_ref] = account_id
        self._since_savepoint.append((account_id, customer_ref))

    def savepoint(self) -> None:
        self._since_savepoint.clear()

    def rollback(self) -> None:
        self.undo(0)

    def mark(self) -> int:
        """Where a write that may be undone alone begins (see `undo`)."""
        return len(self._since_savepoint)

    def undo(self, mark: int) -> None:
        """Forget the links put since `mark`: their write was undone."""
        for account_id, customer_ref in self._since_savepoint[mark:]:
            self._customer.pop(account_id, None)
            self._account.pop(customer_ref, None)
        del self._since_savepoint[mark:]


class _BatchCustomers(SqlCustomers):
    """Account links through the batch's `_Links`: read once per batch; only found links are
    kept (one may be written meanwhile)."""

    def __init__(self, conn: Connection, links: _Links) -> None:
        super().__init__(conn)
        self._links = links

    def get(self, account_id: str) -> str | None:
        customer_ref = self._links.customer(account_id) or super().get(account_id)
        if customer_ref is not None:
            self._links.put(account_id, customer_ref)
        return customer_ref

    def account_for(self, customer_ref: str) -> str | None:
        account_id = self._links.account(customer_ref) or super().account_for(customer_ref)
        if account_id is not None:
            self._links.put(account_id, customer_ref)
        return account_id

    def add(self, account_id: str, customer_ref: str) -> None:
        super().add(account_id, customer_ref)
        self._links.put(account_id, customer_ref)


class _BatchSubscriptions(SqlSubscriptions):
    """Subscriptions, each write's new version kept for the batch (`versions_written`)."""

    def __init__(self, conn: Connection, batch: SqlBatch) -> None:
        super().__init__(conn)
        self._batch = batch

    def _customers(self) -> SqlCustomers:
        return _BatchCustomers(self._conn, self._batch.links)

    def add(self, subscription: Subscription) -> None:
        links = self._batch.links.mark()
        try:
            super().add(subscription)
        except StaleVersion:
            self._batch.links.undo(links)  # its link was undone with the insert
            raise
        self._batch.written(subscription)

    def by_gateway_ref(self, subscription_ref: str) -> Subscription | None:
        held = self._batch.copy_of(subscription_ref)
        return held if held is not None else super().by_gateway_ref(subscription_ref)

    def save(self, subscription: Subscription) -> None:
        super().save(subscription)
        self._batch.written(subscription)


class _BatchAudit(SqlAudit):
    """Appends held by the batch (`SqlBatch.hold_audit`); reading the log writes them first."""

    def __init__(self, conn: Connection, batch: SqlBatch) -> None:
        super().__init__(conn)
        self._batch = batch

    def append(self, entry: AuditEntry) -> None:
        self._batch.hold_audit(entry)

    def for_account(self, account_id: str) -> Sequence[AuditEntry]:
        self._batch.write_audit()
        return super().for_account(account_id)


def _conforms(batch: SqlBatch) -> UnitOfWork:
    return _SharedUnitOfWork(batch)  # mypy checks here that the class keeps the port's shape
