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

from types import TracebackType
from typing import Any, Self

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from adapters.sql.inbox import SqlInbox
from adapters.sql.repositories import (
    SqlAudit,
    SqlCheckouts,
    SqlCustomers,
    SqlInvoices,
    SqlQuotes,
    SqlSubscriptions,
)
from application.ports import (
    AuditLog,
    CheckoutRepository,
    CustomerRepository,
    InboxRepository,
    InvoiceRepository,
    QuoteRepository,
    SubscriptionRepository,
    UnitOfWork,
)

_SAVEPOINT = "inbox_event"  # one name, declared again per event: PostgreSQL and SQLite keep
# the newest of a name, so no RELEASE round trip is needed between events


class SqlBatch:
    """What `application.inbox.InboxBatch` asks for, on one connection of `engine`."""

    inbox: InboxRepository

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._conn: Connection | None = None
        self._writes = 0
        self.tainted = False

    def __enter__(self) -> Self:
        conn = self._engine.connect()
        sa.event.listen(conn, "before_cursor_execute", self._count)
        self._conn = conn
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
    def writes(self) -> int:
        return self._writes

    def unit_of_work(self) -> UnitOfWork:
        return _SharedUnitOfWork(self)

    def savepoint(self) -> None:
        self.tainted = False
        self.connection.exec_driver_sql(f"SAVEPOINT {_SAVEPOINT}")

    def rollback_to_savepoint(self) -> None:
        self.connection.exec_driver_sql(f"ROLLBACK TO SAVEPOINT {_SAVEPOINT}")

    def commit(self) -> None:
        self.connection.commit()


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
        conn = self._batch.connection
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
