"""Ports: what the billing core needs from the world, each with the promise an adapter keeps."""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from types import TracebackType
from typing import Protocol, Self

import attrs

from responseiq_billing.domain.invoices import Invoice, InvoicePage
from responseiq_billing.domain.money import Money
from responseiq_billing.domain.plans import Interval, PlanPrice
from responseiq_billing.domain.quotes import Quote
from responseiq_billing.domain.subscription import (
    GatewaySubscription,
    PaymentMethodSummary,
    Subscription,
)


class Clock(Protocol):
    """The time. Use cases read it once per command and pass it into the domain."""

    def now(self) -> datetime:
        """The current instant, timezone-aware (UTC)."""
        ...


# -- the payment gateway ------------------------------------------------------------------


class UiMode(enum.Enum):
    HOSTED = "hosted"  # a redirect to the gateway's own page
    EMBEDDED = "embedded"  # the gateway's UI inside ours (Stripe Elements / embedded Checkout)


class PortalFlow(enum.Enum):
    """Deep links into the customer portal."""

    PAYMENT_METHOD_UPDATE = "payment_method_update"
    SUBSCRIPTION_UPDATE = "subscription_update"
    SUBSCRIPTION_CANCEL = "subscription_cancel"


class ScheduledChanges(enum.Enum):
    """Who keeps a plan change that waits for the period end (a downgrade).

    GATEWAY: the gateway schedules it itself (Stripe's subscription schedules) and applies it
    at the renewal. CORE: the gateway cannot schedule an item change (Paddle), so the core keeps
    the pending change and applies it at the gateway shortly before the renewal with
    `apply_plan_for_renewal` (`application.scheduled_changes`).
    """

    GATEWAY = "gateway"
    CORE = "core"


@attrs.frozen
class CheckoutSession:
    id: str
    url: str | None
    client_secret: str | None
    expires_at: datetime | None


class CheckoutStatus(enum.Enum):
    OPEN = "open"
    COMPLETE = "complete"
    EXPIRED = "expired"


@attrs.frozen
class CheckoutOutcome:
    """A checkout session as it stands; `subscription` is set once it completed."""

    id: str
    status: CheckoutStatus
    account_id: str | None
    customer_ref: str | None
    subscription: GatewaySubscription | None


@attrs.frozen
class Refund:
    """Money given back to the card that paid an invoice. The invoice itself stays `paid`."""

    id: str
    invoice_id: str
    amount: Money


@attrs.frozen
class PortalSession:
    id: str
    url: str


@attrs.frozen
class SetupSession:
    id: str
    url: str | None
    client_secret: str | None


class PaymentGateway(Protocol):
    """A payment processor (Stripe, or the in-memory sandbox).

    Promises every adapter keeps, checked by the contract suite in `tests/contract/`:
    - it speaks domain types only; gateway objects and errors never cross this port;
    - a call that creates or changes something does so at most once per `idempotency_key`:
      repeating the call with the same key returns the first result and changes nothing more;
    - failures are domain errors: `PaymentDeclined`, `PaymentActionRequired`,
      `GatewayUnavailable` (retryable) and `GatewayRejected`; on any of them nothing changed;
    - card data never passes through it: checkout and setup hand back a URL or a client
      secret for the gateway's own UI, and payment methods come back as brand and last4 only;
    - every returned `GatewaySubscription` is the gateway's state after the call, with
      `as_of` set to the gateway's time of that state.
    """

    # Who keeps a downgrade until the period end; with CORE, `schedule_downgrade` and
    # `withdraw_scheduled_change` are never called (the gateway refuses them).
    scheduled_changes: ScheduledChanges
    # True when an invoice's `pdf_url` is a short-lived signed link (Paddle): a download then
    # asks the gateway for a fresh one instead of using the link stored with the invoice.
    invoice_links_expire: bool

    def ensure_customer(self, account_id: str, *, idempotency_key: str) -> str:
        """The gateway customer for an account: created once, its opaque reference returned."""
        ...

    def start_checkout(
        self,
        *,
        customer_ref: str,
        account_id: str,
        price: PlanPrice,
        success_url: str,
        cancel_url: str,
        ui_mode: UiMode,
        idempotency_key: str,
    ) -> CheckoutSession:
        """A checkout for a new subscription to `price`; the customer pays in the gateway's UI.

        `success_url` may contain `{CHECKOUT_SESSION_ID}`, which the gateway fills in.
        """
        ...

    def get_checkout(self, checkout_id: str) -> CheckoutOutcome:
        """The checkout's state; raises `CheckoutNotFound` for an unknown id."""
        ...

    def expire_checkout(self, checkout_id: str, *, idempotency_key: str) -> CheckoutStatus:
        """Make a checkout impossible to complete; returns its status afterwards.

        An open checkout becomes EXPIRED: its page says so and takes no payment. One that the
        customer already completed stays COMPLETE (its subscription exists; see `cancel_now`)
        and one already expired stays EXPIRED; neither is an error. Raises `CheckoutNotFound`
        for an unknown id.
        """
        ...

    def open_portal(
        self,
        *,
        customer_ref: str,
        return_url: str,
        flow: PortalFlow | None,
        subscription_ref: str | None,
        idempotency_key: str,
    ) -> PortalSession:
        """A short-lived customer-portal session (Manage Billing) for this customer only."""
        ...

    def start_payment_method_setup(
        self, *, customer_ref: str, success_url: str, cancel_url: str, idempotency_key: str
    ) -> SetupSession:
        """A session in which the customer adds a payment method in the gateway's UI."""
        ...

    def complete_payment_method_setup(
        self, setup_id: str, *, customer_ref: str, idempotency_key: str
    ) -> PaymentMethodSummary | None:
        """Make the method collected by a completed setup the default for the next charge.

        Returns its summary, or None while the setup has not completed. A setup that belongs
        to another customer raises `CheckoutNotFound` and changes nothing.
        """
        ...

    def use_customer_payment_method(
        self, *, subscription_ref: str, idempotency_key: str
    ) -> GatewaySubscription:
        """Make the subscription's next charge use its customer's default payment method.

        Called after the customer's default was replaced outside the service (a hosted portal's
        card update), where a method of the subscription's own would otherwise still win.
        Returns the view as it is then; changes nothing when the next charge already uses the
        customer's default or the customer has none.
        """
        ...

    def preview_plan_change(
        self, *, subscription_ref: str, target: PlanPrice, proration_at: datetime
    ) -> Money:
        """What an immediate change to `target` would charge now, prorated at `proration_at`."""
        ...

    def upgrade(
        self,
        *,
        subscription_ref: str,
        target: PlanPrice,
        proration_at: datetime,
        idempotency_key: str,
    ) -> GatewaySubscription:
        """Switch to `target` now and charge the proration at once.

        The switch happens only if the proration invoice is paid: on a decline it raises
        `PaymentDeclined` and the subscription stays on its plan. A scheduled change is
        dropped first. Charges the same amount `preview_plan_change` showed for the same
        `proration_at`.
        """
        ...

    def schedule_downgrade(
        self, *, subscription_ref: str, target: PlanPrice, idempotency_key: str
    ) -> GatewaySubscription:
        """Switch to `target` at the current period end; nothing is charged now.

        Replaces an earlier scheduled change. The returned view shows it as `pending_change`.
        """
        ...

    def withdraw_scheduled_change(
        self, *, subscription_ref: str, idempotency_key: str
    ) -> GatewaySubscription:
        """Drop a scheduled change; the subscription renews on its current plan."""
        ...

    def apply_plan_for_renewal(
        self, *, subscription_ref: str, target: PlanPrice, idempotency_key: str
    ) -> GatewaySubscription:
        """Switch the subscription's price to `target` now, billing nothing and crediting
        nothing: the next renewal is the first charge at the new price.

        How a CORE-scheduling gateway carries out a downgrade the core kept, shortly before the
        renewal. Retrying, or applying the price it already has, changes nothing.
        """
        ...

    def cancel_at_period_end(
        self, *, subscription_ref: str, idempotency_key: str
    ) -> GatewaySubscription:
        """End the subscription when the period ends; a scheduled change is dropped first."""
        ...

    def resume(self, *, subscription_ref: str, idempotency_key: str) -> GatewaySubscription:
        """Undo `cancel_at_period_end` before the period ends."""
        ...

    def cancel_now(self, *, subscription_ref: str, idempotency_key: str) -> GatewaySubscription:
        """End the subscription at once, not at the period end: it never renews or charges again.

        Nothing is prorated or credited for the unused time (`refund_invoice` gives money
        back); a scheduled change is dropped. A subscription that has already ended is
        returned as it is, so repeating the call changes nothing.
        """
        ...

    def refund_invoice(self, *, invoice_id: str, idempotency_key: str) -> Refund:
        """Give back the whole amount paid on a paid invoice, to the card that paid it.

        At most once per key: a repeat returns the first refund. An invoice with nothing to
        refund (unknown, unpaid, or refunded in full already) raises `GatewayRejected`.
        """
        ...

    def get_subscription(self, subscription_ref: str) -> GatewaySubscription:
        """The subscription as the gateway has it now; raises `SubscriptionNotFound`."""
        ...

    def list_subscriptions(self, customer_ref: str) -> Sequence[GatewaySubscription]:
        """Every subscription of a customer, newest first (for reconciliation)."""
        ...

    def list_invoices(
        self, *, customer_ref: str, limit: int, starting_after: str | None
    ) -> InvoicePage:
        """A customer's invoices, newest first; `starting_after` is the last id of the page before."""
        ...

    def get_invoice(self, invoice_id: str) -> Invoice:
        """One invoice; raises `InvoiceNotFound`."""
        ...


# -- events arriving from the gateway -----------------------------------------------------


class GatewayEventKind(enum.Enum):
    """The gateway's events, normalised by its adapter to what the core acts on."""

    CHECKOUT_COMPLETED = "checkout.completed"
    SETUP_COMPLETED = "setup.completed"
    SUBSCRIPTION_CHANGED = "subscription.changed"  # created, updated, deleted, pending updates
    SCHEDULE_CHANGED = "subscription.schedule_changed"  # re-read the subscription
    INVOICE_CHANGED = "invoice.changed"  # finalized, paid, payment failed, action required
    PAYMENT_METHOD_CHANGED = "payment_method.changed"
    IGNORED = "ignored"


@attrs.frozen
class GatewayEvent:
    """One gateway event in the core's terms. `gateway_type` keeps the original name."""

    id: str
    kind: GatewayEventKind
    gateway_type: str
    created: datetime
    customer_ref: str | None = None
    account_id: str | None = None
    subscription_ref: str | None = None
    subscription: GatewaySubscription | None = None
    invoice: Invoice | None = None
    payment_method: PaymentMethodSummary | None = None
    checkout_id: str | None = None
    # The customer's default payment method was replaced (a portal or setup flow): from now
    # on the subscription must be charged to it (`PaymentGateway.use_customer_payment_method`).
    default_payment_method_changed: bool = False

    @property
    def object_ref(self) -> str | None:
        """The gateway object the event is about, for ordering events of one object."""
        if self.invoice is not None:
            return self.invoice.id
        return self.subscription_ref or self.checkout_id or self.customer_ref


# -- persistence ----------------------------------------------------------------------------


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

    def upsert(self, account_id: str, invoice: Invoice) -> None: ...

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


# -- the webhook inbox ------------------------------------------------------------------------


class InboxStatus(enum.Enum):
    PENDING = "pending"
    APPLIED = "applied"
    PARKED = "parked"


@attrs.frozen
class InboxEvent:
    """One stored delivery. `payload` is the gateway's raw event, exactly as received."""

    event_id: str
    gateway: str
    type: str
    payload: str
    received_at: datetime
    event_created: datetime | None = None
    object_ref: str | None = None
    attempts: int = 0
    next_attempt_at: datetime | None = None
    applied_at: datetime | None = None
    parked_at: datetime | None = None
    outcome: str | None = None
    last_error: str | None = None
    locked_by: str | None = None
    locked_until: datetime | None = None

    @property
    def status(self) -> InboxStatus:
        if self.applied_at is not None:
            return InboxStatus.APPLIED
        if self.parked_at is not None:
            return InboxStatus.PARKED
        return InboxStatus.PENDING


@attrs.frozen
class InboxStats:
    pending: int
    oldest_pending_age_seconds: float | None
    parked: int
    applied: int


class LeaseLost(Exception):
    """The worker no longer holds an event's lease (it expired and another worker claimed it)."""


class InboxRepository(Protocol):
    """Stored gateway events. Lives in the unit of work so applying and marking commit together."""

    def add(self, event: InboxEvent) -> bool:
        """Store a delivery; False (and nothing changed) when its `event_id` is already stored."""
        ...

    def add_many(self, events: Sequence[InboxEvent]) -> list[bool]:
        """Store deliveries in one statement; for each, whether it was stored (False: its
        `event_id` was already stored, or came earlier in `events`)."""
        ...

    def claim(
        self, *, worker: str, now: datetime, lease: timedelta, limit: int
    ) -> Sequence[InboxEvent]:
        """Lease up to `limit` due events to `worker`, oldest event first, counting an attempt.

        Due: not applied, not parked, `next_attempt_at` passed, and no live lease. Two
        workers never hold the same event at once (PostgreSQL: `FOR UPDATE SKIP LOCKED`).
        """
        ...

    def mark_applied(self, event_id: str, *, worker: str, at: datetime, outcome: str) -> None:
        """Mark applied; raises `LeaseLost` if `worker` no longer holds the lease."""
        ...

    def mark_applied_many(self, outcomes: Mapping[str, str], *, worker: str, at: datetime) -> None:
        """Mark a batch applied (event id -> outcome) in one call; raises `LeaseLost`, marking
        none, unless `worker` still holds every one of their leases."""
        ...

    def mark_failed(
        self, event_id: str, *, worker: str, at: datetime, error: str, retry_at: datetime | None
    ) -> None:
        """Record a failure and release the lease; `retry_at=None` parks the event."""
        ...

    def release(self, event_ids: Sequence[str], *, worker: str) -> None:
        """Give back `worker`'s leases without counting the attempt: events held back behind
        an older event of their object that failed in the same pass."""
        ...

    def newest_applied(self, object_ref: str, *, excluding: str) -> datetime | None:
        """The gateway time of the newest applied event about `object_ref`, other than `excluding`."""
        ...

    def get(self, event_id: str) -> InboxEvent | None: ...

    def list(self, status: InboxStatus | None, *, limit: int) -> Sequence[InboxEvent]:
        """Newest received first."""
        ...

    def requeue(self, event_id: str, *, at: datetime) -> bool:
        """Make a parked or failing event due now again; False if unknown or applied."""
        ...

    def park(self, event_id: str, *, at: datetime, reason: str) -> bool:
        """Set an unapplied event aside; False if unknown or applied."""
        ...

    def stats(self, now: datetime) -> InboxStats: ...


class EventDecoder(Protocol):
    """Turns one gateway's stored payload into the core's `GatewayEvent` (pure, no network)."""

    def decode(self, payload: str) -> GatewayEvent: ...


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
