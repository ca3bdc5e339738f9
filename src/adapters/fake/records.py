"""The sandbox gateway's records: the objects it stores, as Stripe stores them, and its test cards.

Plain data, no behaviour but two small facts about a subscription's dates. `FakeGateway`
(`gateway.py`) keeps these in its dictionaries; nothing outside the fake package sees them.
"""

from __future__ import annotations

import enum
from datetime import datetime, timedelta

import attrs

from responseiq_billing.application.ports import CheckoutStatus, PortalFlow, Refund, UiMode
from responseiq_billing.domain.invoices import Invoice
from responseiq_billing.domain.money import Money
from responseiq_billing.domain.plans import Interval, PlanPrice
from responseiq_billing.domain.subscription import PaymentMethodSummary, PendingChange, Status

# Stripe's test cards, by the brand/last4 they produce. The sandbox never sees a card number:
# the sandbox checkout page offers these as buttons, as Stripe's test mode offers test tokens.
TEST_CARDS: dict[str, PaymentMethodSummary] = {
    "visa": PaymentMethodSummary("visa", "4242"),
    "mastercard": PaymentMethodSummary("mastercard", "4444"),
    "amex": PaymentMethodSummary("amex", "8431"),
    # Stripe's 4000 0027 6000 3184: the bank asks for 3-D Secure on every charge. A page the
    # customer is on (checkout, setup) runs the check there; a charge made without them (an
    # upgrade, a renewal) waits for them on the authentication page.
    "authenticate": PaymentMethodSummary("visa", "3184"),
}
AUTHENTICATION_CARD = TEST_CARDS["authenticate"]

# Stripe drops a pending update (an upgrade waiting for payment) after 23 hours.
PENDING_UPDATE_TTL = timedelta(hours=23)


@attrs.frozen
class Call:
    """One call made to the gateway, for assertions (`fake.calls`)."""

    name: str
    kwargs: dict[str, object]


class Failure(enum.Enum):
    """How the next charge fails; the value is the invoice event Stripe sends for it."""

    DECLINE = "invoice.payment_failed"
    ACTION = "invoice.payment_action_required"


@attrs.frozen
class Line:
    """One line of an invoice: an item, a proration or a credit."""

    description: str
    amount: Money


@attrs.define
class Customer:
    id: str
    account_id: str
    created: datetime
    default_payment_method: PaymentMethodSummary | None = None
    # Stripe's customer balance in minor units: negative is credit applied to the next invoice.
    balance: int = 0


@attrs.define
class Checkout:
    id: str
    customer_ref: str
    account_id: str
    price: PlanPrice
    success_url: str
    cancel_url: str
    ui_mode: UiMode
    created: datetime
    expires_at: datetime
    client_secret: str | None
    status: CheckoutStatus = CheckoutStatus.OPEN
    subscription_ref: str | None = None


@attrs.define
class Portal:
    id: str
    customer_ref: str
    return_url: str
    flow: PortalFlow | None
    subscription_ref: str | None
    created: datetime


@attrs.define
class Setup:
    id: str
    customer_ref: str
    success_url: str
    cancel_url: str
    created: datetime
    status: CheckoutStatus = CheckoutStatus.OPEN
    payment_method: PaymentMethodSummary | None = None


@attrs.define
class Sub:
    id: str
    customer_ref: str
    account_id: str
    plan_id: str
    interval: Interval
    status: Status
    period_start: datetime
    period_end: datetime
    # Stripe's billing_cycle_anchor, as the day of month: a cycle started on the 31st renews on
    # the last day of shorter months and returns to the 31st afterwards.
    anchor_day: int
    created: datetime
    seq: int
    cancel_at_period_end: bool = False
    pending: PendingChange | None = None
    ended_at: datetime | None = None
    # Stripe's `cancel_at`: a cancellation on a date (set in the Dashboard), not at period end.
    cancel_at: datetime | None = None
    # Stripe's pending proration invoice items: the lines the next invoice of this
    # subscription collects (a renewal, or the final invoice when it ends on a date).
    prorations: list[Line] = attrs.field(factory=list)


@attrs.define
class InvoiceRecord:
    invoice: Invoice
    lines: tuple[Line, ...]
    payment_method: PaymentMethodSummary | None
    seq: int
    # Stripe keeps a refunded invoice `paid`; the refund is its own object on the payment.
    refund: Refund | None = None


@attrs.frozen
class Action:
    """An upgrade whose payment waits for the customer's bank (Stripe's pending update)."""

    subscription_ref: str
    target: PlanPrice
    proration_at: datetime
    expires_at: datetime


def due_at(sub: Sub) -> datetime:
    """The next moment the sandbox must act on a subscription: its renewal or its end date."""
    if sub.cancel_at is not None and sub.cancel_at <= sub.period_end:
        return sub.cancel_at
    return sub.period_end


def cut_short_at(sub: Sub) -> datetime | None:
    """The instant a cancellation date cuts the current period short; None if none does."""
    at = sub.cancel_at
    return at if at is not None and sub.period_start < at < sub.period_end else None
