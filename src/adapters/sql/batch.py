"""One transaction for a batch of inbox events: units of work that share it, a savepoint per event.

`ProcessInbox` applies a claimed batch through `SqlBatch`: every unit of work the use cases
open during the batch is the batch's connection, so the batch costs one BEGIN and one COMMIT
(one WAL flush) instead of one connection checkout, BEGIN and COMMIT or ROLLBACK per unit.
A unit's `commit()` is therefore not a commit: nothing is durable before the batch commits.
A unit that rolls back, is left by an exception, or is left with uncommitted writes taints the
event (its partial writes cannot be undone alone); the inbox then rolls the event back to its
savepoint and applies it again on its own, with real transactions.
"""

from __future__ import annotations

from collections.abc import Sequence
from types import TracebackType
from typing import Any, Self, cast

import sqlalchemy as sa
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
from responseiq_billing.application.ports import (
    AuditLog,
    CheckoutRepository,
    CustomerRepository,
    InboxRepository,
    InvoiceRepository,
    QuoteRepository,
    SubscriptionRepository,
    UnitOfWork,
)

# The first key of the batch's advisory locks (`hold`): what the inbox's batches lock is theirs.
_LOCK_SPACE = 0x1B0C

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
        self.tainted = False

    def __enter__(self) -> Self:
        conn = self._engine.connect()
        sa.event.listen(conn, "before_cursor_execute", self._count)
        self._conn = conn
        self._reads = _ReadsReused(conn) if self._reuse_reads else None
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
        COMMIT or ROLLBACK. SQLite has one writer at a time: nothing to hold.
        """
        if not keys or self.connection.dialect.name != "postgresql":
            return set()
        held_elsewhere = self.connection.execute(
            sa.text(
                "SELECT key FROM unnest(CAST(:keys AS text[])) AS key "
                "WHERE NOT pg_try_advisory_xact_lock(:space, hashtext(key))"
            ),
            {"keys": list(keys), "space": _LOCK_SPACE},
        )
        return set(held_elsewhere.scalars())

    def savepoint(self) -> None:
        self.tainted = False
        if self._reads is not None:
            self._reads.forget()
        self.connection.exec_driver_sql(f"SAVEPOINT {_SAVEPOINT}")

    def rollback_to_savepoint(self) -> None:
        if self._reads is not None:
            self._reads.forget()
        self.connection.exec_driver_sql(f"ROLLBACK TO SAVEPOINT {_SAVEPOINT}")

    def commit(self) -> None:
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

    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self._answers: dict[object, sa.FrozenResult[Any]] = {}

    def forget(self) -> None:
        self._answers.clear()

    def execute(self, statement: Any, *args: Any, **kwargs: Any) -> Any:
        key = _key(statement) if not args and not kwargs else None
        if key is None:
            self._answers.clear()
            return self._conn.execute(statement, *args, **kwargs)
        frozen = self._answers.get(key)
        if frozen is None:
            frozen = self._conn.execute(statement).freeze()
            self._answers[key] = frozen
        return frozen()

    def scalar(self, statement: Any, *args: Any, **kwargs: Any) -> Any:
        return self.execute(statement, *args, **kwargs).scalar()

    def scalars(self, statement: Any, *args: Any, **kwargs: Any) -> Any:
        return self.execute(statement, *args, **kwargs).scalars()

    def __getattr__(self, name: str) -> Any:
        self._answers.clear()  # begin_nested, dialect …: whatever follows may write
        return getattr(self._conn, name)


def _key(statement: Any) -> object | None:
    if not isinstance(statement, sa.Select) or statement._for_update_arg is not None:
        return None
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
        self.customers = SqlCustomers(conn)
        self.subscriptions = SqlSubscriptions(conn)
        self.checkouts = SqlCheckouts(conn)
        self.quotes = SqlQuotes(conn)
        self.invoices = SqlInvoices(conn)
        self.audit = SqlAudit(conn)
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


def _conforms(batch: SqlBatch) -> UnitOfWork:
    return _SharedUnitOfWork(batch)  # mypy checks here that the class keeps the port's shape
