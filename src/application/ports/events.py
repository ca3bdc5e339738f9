"""Events arriving from the gateway, and the webhook inbox that stores them until applied."""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Protocol

import attrs

from responseiq_billing.domain.invoices import Invoice
from responseiq_billing.domain.subscription import GatewaySubscription, PaymentMethodSummary


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


class EventDecoder(Protocol):
    """Turns one gateway's stored payload into the core's `GatewayEvent` (pure, no network)."""

    def decode(self, payload: str) -> GatewayEvent: ...


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
class InboxBacklog:
    """The events not applied yet: what `/metrics` shows. Counted over those rows only, so
    reading it costs what the backlog holds, not the inbox's whole history."""

    pending: int
    oldest_pending_age_seconds: float | None
    parked: int


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

    def newest_applied_many(self, object_refs: Sequence[str]) -> dict[str, datetime]:
        """`newest_applied` for several objects in one read: each of `object_refs` that has an
        applied event, to the gateway time of its newest."""
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

    def stats(self, now: datetime) -> InboxStats:
        """Every count, applied events included: reads the whole inbox (`billing inbox stats`)."""
        ...

    def backlog(self, now: datetime) -> InboxBacklog:
        """The unapplied events only: work bounded by the backlog, not by the inbox's history."""
        ...
