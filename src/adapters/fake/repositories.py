"""In-memory repositories and unit of work, with the same transaction and version rules as SQL.

A unit of work works on a private copy of the store and swaps it in on commit, under one lock,
so a rolled-back unit leaves nothing behind and a stale write fails exactly as in SQL.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Sequence
from datetime import datetime
from types import TracebackType
from typing import Self

import attrs

from responseiq_billing.adapters.fake.inbox import InMemoryInbox
from responseiq_billing.application.ports import (
    AuditEntry,
    CheckoutRecord,
    CheckoutStatus,
    InboxEvent,
)
from responseiq_billing.domain.errors import StaleVersion
from responseiq_billing.domain.invoices import Invoice, InvoicePage, is_older_state
from responseiq_billing.domain.quotes import Quote
from responseiq_billing.domain.subscription import Subscription


@attrs.define
class _Data:
    customers: dict[str, str] = attrs.field(factory=dict)  # account -> customer
    subscriptions: dict[str, Subscription] = attrs.field(factory=dict)  # gateway ref -> sub
    quotes: dict[str, Quote] = attrs.field(factory=dict)
    invoices: dict[str, tuple[str, Invoice]] = attrs.field(factory=dict)
    audit: list[AuditEntry] = attrs.field(factory=list)
    inbox: dict[str, InboxEvent] = attrs.field(factory=dict)
    checkouts: dict[str, CheckoutRecord] = attrs.field(factory=dict)
    # account -> its open checkout's id (None once closed). Keyed by account so that two units
    # opening a checkout for one account change the same key and the later commit conflicts,
    # as the partial unique index makes the later one fail in SQL.
    open_checkouts: dict[str, str | None] = attrs.field(factory=dict)

    def copy(self) -> _Data:
        return _Data(
            dict(self.customers),
            dict(self.subscriptions),
            dict(self.quotes),
            dict(self.invoices),
            list(self.audit),
            dict(self.inbox),
            dict(self.checkouts),
            dict(self.open_checkouts),
        )


def _copy_sub(sub: Subscription) -> Subscription:
    clone = copy.copy(sub)
    clone.events = []
    return clone


class InMemoryStore:
    """The committed state shared by every unit of work made from it."""

    def __init__(self) -> None:
        self.data = _Data()
        self.lock = threading.RLock()

    def unit_of_work(self) -> InMemoryUnitOfWork:
        return InMemoryUnitOfWork(self)


class InMemoryCustomers:
    def __init__(self, data: _Data) -> None:
        self._data = data

    def get(self, account_id: str) -> str | None:
        return self._data.customers.get(account_id)

    def account_for(self, customer_ref: str) -> str | None:
        for account, customer in self._data.customers.items():
            if customer == customer_ref:
                return account
        return None

    def add(self, account_id: str, customer_ref: str) -> None:
        existing = self._data.customers.get(account_id)
        owner = self.account_for(customer_ref)
        if (existing is not None and existing != customer_ref) or (
            owner is not None and owner != account_id
        ):
            raise StaleVersion("This account or customer is already linked to another one.")
        self._data.customers[account_id] = customer_ref

    def accounts(self) -> Sequence[str]:
        return sorted(self._data.customers)


class InMemorySubscriptions:
    def __init__(self, data: _Data) -> None:
        self._data = data

    def for_account(self, account_id: str) -> Subscription | None:
        mine = [s for s in self._data.subscriptions.values() if s.account_id == account_id]
        if not mine:
            return None
        live = [s for s in mine if s.status.is_live]
        # Ties on the period start go to the one stored last, as in SQL (`ORDER BY id DESC`).
        candidates = list(enumerate(live or mine))
        _, pick = max(candidates, key=lambda pair: (pair[1].current_period_start, pair[0]))
        return _copy_sub(pick)

    def by_gateway_ref(self, subscription_ref: str) -> Subscription | None:
        found = self._data.subscriptions.get(subscription_ref)
        return _copy_sub(found) if found is not None else None

    def pending_changes_due(self, by: datetime, *, limit: int) -> Sequence[Subscription]:
        due = [
            s
            for s in self._data.subscriptions.values()
            if s.status.is_live and s.pending_change is not None
            and s.pending_change.effective_at <= by
        ]  # fmt: skip
        due.sort(key=lambda s: s.pending_change.effective_at if s.pending_change else by)
        return [_copy_sub(s) for s in due[:limit]]

    def add(self, subscription: Subscription) -> None:
        if subscription.subscription_ref in self._data.subscriptions:
            raise StaleVersion("This subscription is already stored.")
        if subscription.status.is_live and any(
            s.account_id == subscription.account_id and s.status.is_live
            for s in self._data.subscriptions.values()
        ):
            raise StaleVersion("This account already has a live subscription.")
        # The account is linked to the subscription's customer if it has no customer yet
        # (SQL needs the account row for its foreign key); a customer of another account is
        # a conflict.
        if subscription.account_id not in self._data.customers:
            InMemoryCustomers(self._data).add(subscription.account_id, subscription.customer_ref)
        subscription.version = 1
        self._data.subscriptions[subscription.subscription_ref] = _copy_sub(subscription)

    def save(self, subscription: Subscription) -> None:
        stored = self._data.subscriptions.get(subscription.subscription_ref)
        if stored is None or stored.version != subscription.version:
            raise StaleVersion()
        if subscription.status.is_live and any(
            s.account_id == subscription.account_id
            and s.status.is_live
            and s.subscription_ref != subscription.subscription_ref
            for s in self._data.subscriptions.values()
        ):
            raise StaleVersion("This account already has a live subscription.")
        subscription.version += 1
        self._data.subscriptions[subscription.subscription_ref] = _copy_sub(subscription)


class InMemoryCheckouts:
    def __init__(self, data: _Data) -> None:
        self._data = data

    def get(self, checkout_id: str) -> CheckoutRecord | None:
        return self._data.checkouts.get(checkout_id)

    def open_for(self, account_id: str) -> CheckoutRecord | None:
        checkout_id = self._data.open_checkouts.get(account_id)
        return self._data.checkouts[checkout_id] if checkout_id is not None else None

    def open(self, checkout: CheckoutRecord) -> CheckoutRecord | None:
        if checkout.status is not CheckoutStatus.OPEN:
            raise ValueError("only an open checkout is opened")
        if checkout.id in self._data.checkouts:
            raise StaleVersion("This checkout is already stored.")
        if checkout.account_id not in self._data.customers:
            raise StaleVersion("This account has no customer yet.")
        before = self.open_for(checkout.account_id)
        closed = None
        if before is not None:
            closed = attrs.evolve(
                before, status=CheckoutStatus.EXPIRED, closed_at=checkout.created_at
            )
            self._data.checkouts[before.id] = closed
        self._data.checkouts[checkout.id] = checkout
        self._data.open_checkouts[checkout.account_id] = checkout.id
        return closed

    def close(self, checkout_id: str, status: CheckoutStatus, at: datetime) -> bool:
        if status is CheckoutStatus.OPEN:
            raise ValueError("a checkout is closed as complete or expired")
        found = self._data.checkouts.get(checkout_id)
        if found is None or found.status is not CheckoutStatus.OPEN:
            return False
        self._data.checkouts[checkout_id] = attrs.evolve(found, status=status, closed_at=at)
        if self._data.open_checkouts.get(found.account_id) == checkout_id:
            self._data.open_checkouts[found.account_id] = None
        return True


class InMemoryQuotes:
    def __init__(self, data: _Data) -> None:
        self._data = data

    def add(self, quote: Quote) -> None:
        if quote.id in self._data.quotes:
            raise StaleVersion("This quote is already stored.")
        self._data.quotes[quote.id] = quote

    def get(self, quote_id: str) -> Quote | None:
        return self._data.quotes.get(quote_id)

    def save(self, quote: Quote) -> None:
        self._data.quotes[quote.id] = quote


class InMemoryInvoices:
    def __init__(self, data: _Data) -> None:
        self._data = data

    def upsert(self, account_id: str, invoice: Invoice) -> bool:
        held = self._data.invoices.get(invoice.id)
        if held is not None and is_older_state(invoice, held[1]):
            return False
        self._data.invoices[invoice.id] = (account_id, invoice)
        return True

    def get(self, invoice_id: str) -> tuple[str, Invoice] | None:
        return self._data.invoices.get(invoice_id)

    def list_for_account(
        self, account_id: str, *, limit: int, starting_after: str | None
    ) -> InvoicePage:
        mine = sorted(
            (inv for acct, inv in self._data.invoices.values() if acct == account_id),
            key=lambda inv: (inv.created, inv.id),
            reverse=True,
        )
        if starting_after is not None:
            ids = [inv.id for inv in mine]
            mine = mine[ids.index(starting_after) + 1 :] if starting_after in ids else []
        return InvoicePage(tuple(mine[:limit]), has_more=len(mine) > limit)


class InMemoryAudit:
    def __init__(self, data: _Data) -> None:
        self._data = data

    def append(self, entry: AuditEntry) -> None:
        self._data.audit.append(entry)

    def for_account(self, account_id: str) -> Sequence[AuditEntry]:
        return [e for e in self._data.audit if e.account_id == account_id]


class InMemoryUnitOfWork:
    """A transaction over the in-memory store: copy on enter, swap in on commit."""

    def __init__(self, store: InMemoryStore) -> None:
        self._store = store

    def __enter__(self) -> Self:
        with self._store.lock:
            self._base = self._store.data
            self._work = self._base.copy()
        self._rebind()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.rollback()

    def commit(self) -> None:
        """Swap this unit's changes in; a key someone else changed since we began is a conflict."""
        with self._store.lock:
            current = self._store.data
            merged = current.copy()
            names = ("customers", "subscriptions", "quotes", "invoices", "inbox")
            for name in (*names, "checkouts", "open_checkouts"):
                base, work, now = (getattr(d, name) for d in (self._base, self._work, current))
                target = getattr(merged, name)
                for key, value in work.items():
                    if base.get(key) is value:
                        continue
                    if now.get(key) is not base.get(key):
                        raise StaleVersion()
                    target[key] = value
            merged.audit.extend(self._work.audit[len(self._base.audit) :])
            self._store.data = merged
            self._base = merged
            self._work = merged.copy()
            self._rebind()

    def _rebind(self) -> None:
        self.customers = InMemoryCustomers(self._work)
        self.subscriptions = InMemorySubscriptions(self._work)
        self.checkouts = InMemoryCheckouts(self._work)
        self.quotes = InMemoryQuotes(self._work)
        self.invoices = InMemoryInvoices(self._work)
        self.audit = InMemoryAudit(self._work)
        self.inbox = InMemoryInbox(self._work.inbox)

    def rollback(self) -> None:
        self._work = self._base.copy()
        self._rebind()
