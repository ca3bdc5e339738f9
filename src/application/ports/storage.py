"""Persistence ports: the repositories and the unit of work that commits them together."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from types import TracebackType
from typing import Protocol, Self

import attrs

from responseiq_billing.application.ports.events import InboxRepository
from responseiq_billing.application.ports.gateway import CheckoutStatus
from responseiq_billing.domain.invoices import Invoice, InvoicePage
from responseiq_billing.domain.plans import Interval
from responseiq_billing.domain.quotes import Quote
from responseiq_billing.domain.subscription import Subscription


class CustomerRepository(Protocol):
    """Accounts and their gateway customer: at most one customer per account, and vice versa."""

    def get(self, account_id: str) -> str | None:
        """The account's customer reference, if it has one."""
        ...

    def account_for(self, customer_ref: str) -> str | None: ...

    def add(self, account_id: str, customer_ref: str) -> None:
        """Record the pair; an account that already has a different customer is an error."""
        ...

    def accounts(self) -> Sequence[str]:
        """Every account that has a customer, in a stable order (for `reconcile --all`)."""
        ...


class SubscriptionRepository(Protocol):
    """Subscriptions, with optimistic concurrency on `version`."""

    def for_account(self, account_id: str) -> Subscription | None:
        """The account's live subscription, else its most recently ended one, else None."""
        ...

    def by_gateway_ref(self, subscription_ref: str) -> Subscription | None: ...

    def pending_changes_due(self, by: datetime, *, limit: int) -> Sequence[Subscription]:
        """Live subscriptions with a pending change taking effect at or before `by`, soonest
        first, at most `limit` (the downgrades the core keeps, for the worker)."""
        ...

    def add(self, subscription: Subscription) -> None:
        """Insert a new subscription at version 1. An account has at most one live subscription
        and a gateway reference is stored once: a second raises `StaleVersion`."""
        ...

    def save(self, subscription: Subscription) -> None:
        """Write if the stored version still equals `subscription.version`, then bump it by one.

        A stale write raises `StaleVersion` and changes nothing: it never overwrites.
        """
        ...


@attrs.frozen
class CheckoutRecord:
    """A checkout we started for an account: at most one per account is OPEN at any time."""

    id: str  # the gateway's checkout id
    account_id: str
    plan_id: str
    interval: Interval
    status: CheckoutStatus
    created_at: datetime
    closed_at: datetime | None = None


class CheckoutRepository(Protocol):
    """The checkouts we started. The database keeps at most one open checkout per account."""

    def get(self, checkout_id: str) -> CheckoutRecord | None: ...

    def open_for(self, account_id: str) -> CheckoutRecord | None:
        """The account's open checkout, if it has one."""
        ...

    def open(self, checkout: CheckoutRecord) -> CheckoutRecord | None:
        """Record `checkout` (OPEN) as the account's open checkout and close the one open
        before it as EXPIRED in the same transaction; returns that one, closed, for the
        caller to expire at the gateway.

        Starts for one account queue here (SQL locks the account's row first), so each one
        sees the checkout opened before it. The database refuses a second open checkout for
        an account whatever happens: a write that meets one, a checkout id stored twice or
        an account without a customer raises `StaleVersion` and changes nothing.
        """
        ...

    def close(self, checkout_id: str, status: CheckoutStatus, at: datetime) -> bool:
        """Mark an open checkout COMPLETE or EXPIRED; False if it is unknown or not open."""
        ...


class QuoteRepository(Protocol):
    def add(self, quote: Quote) -> None: ...

    def get(self, quote_id: str) -> Quote | None: ...

    def save(self, quote: Quote) -> None: ...


class InvoiceRepository(Protocol):
    """A cache of the gateway's invoices, each tied to the account it belongs to."""

    def upsert(self, account_id: str, invoice: Invoice) -> bool:
        """Hold `invoice`, unless the copy held is at a later stage (`is_older_state`): an
        invoice never moves back, whoever writes it (a late event, a page read from the
        gateway before an event moved it on). One atomic step, so no write between a read
        and this one can be undone by it. True when written."""
        ...

    def get(self, invoice_id: str) -> tuple[str, Invoice] | None:
        """The invoice and the account that owns it."""
        ...

    def list_for_account(
        self, account_id: str, *, limit: int, starting_after: str | None
    ) -> InvoicePage:
        """Newest first, like the gateway's list."""
        ...


@attrs.frozen
class AuditEntry:
    """One billing action or applied gateway event. Inputs never hold card data or secrets."""

    account_id: str
    action: str
    inputs: Mapping[str, str]
    outcome: str
    at: datetime


class AuditLog(Protocol):
    """Append-only: entries are never changed or removed."""

    def append(self, entry: AuditEntry) -> None: ...

    def for_account(self, account_id: str) -> Sequence[AuditEntry]:
        """Oldest first."""
        ...


class UnitOfWork(Protocol):
    """One transaction over every repository: all of a command's writes commit, or none do.

    Leaving the `with` block without `commit()` rolls back.
    """

    @property
    def customers(self) -> CustomerRepository: ...

    @property
    def subscriptions(self) -> SubscriptionRepository: ...

    @property
    def checkouts(self) -> CheckoutRepository: ...

    @property
    def quotes(self) -> QuoteRepository: ...

    @property
    def invoices(self) -> InvoiceRepository: ...

    @property
    def audit(self) -> AuditLog: ...

    @property
    def inbox(self) -> InboxRepository: ...

    def __enter__(self) -> Self: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

    def commit(self) -> None: ...

    def rollback(self) -> None: ...


UnitOfWorkFactory = Callable[[], UnitOfWork]
