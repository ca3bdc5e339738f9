"""The driver seam: what the Gherkin steps may ask of the billing service, in business terms."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

# Where the host application shows billing: every driver returns the customer there.
BILLING_PAGE = "https://app.responseiq.test/settings/billing"
INVOICE_PAGE_SIZE = 100  # the page size a driver lists invoices by, page after page


class Rejected(Exception):
    """The service refused a request; `code` is its stable machine code (`plan.unknown`, ...).

    Every driver raises this and only this for a refusal, whatever the transport.
    """

    def __init__(self, code: str, message: str = "") -> None:
        super().__init__(f"{code}: {message}" if message else code)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Card:
    """A payment method as a customer sees it on the billing page."""

    brand: str  # visa | mastercard | amex
    last4: str


@dataclass(frozen=True)
class ScheduledChange:
    plan: str
    interval: str  # month | year
    effective_at: datetime


@dataclass(frozen=True)
class SubscriptionFacts:
    plan: str
    interval: str  # month | year
    status: str  # active, past_due, canceled, ... (Stripe's words)
    period_start: datetime
    period_end: datetime  # the renewal date, or the last day of access when cancelling
    cancel_at_period_end: bool
    scheduled_change: ScheduledChange | None
    card: Card | None


@dataclass(frozen=True)
class EntitlementFacts:
    """What the account may use right now. `plan` is None when it has no access."""

    plan: str | None
    seats: int | None  # None: unlimited
    monthly_responses: int | None
    flags: frozenset[str]
    access_until: datetime | None  # None while it keeps renewing


@dataclass(frozen=True)
class QuoteFacts:
    """A preview of a plan change."""

    id: str
    plan: str  # the plan and interval the preview is for
    interval: str
    takes_effect: str  # now | end_of_period
    amount_due_now: int  # cents
    currency: str
    effective_at: datetime
    expires_at: datetime


@dataclass(frozen=True)
class InvoiceFacts:
    id: str
    created: datetime
    amount_due: int  # cents
    amount_paid: int  # cents
    currency: str
    status: str  # draft | open | paid | uncollectible | void
    reason: str  # subscription_create | subscription_cycle | subscription_update | ...
    has_pdf: bool


@dataclass(frozen=True)
class PortalFacts:
    """A Manage Billing session: where it opens and whose billing it shows."""

    url: str
    account: str | None
    # Where leaving the portal takes the customer back to; None when the portal has no way
    # back of its own (Paddle's): the customer closes the tab Manage Billing opened it in.
    returns_to: str | None


class BillingDriver(Protocol):
    """One way of reaching the billing service (use cases in-process, HTTP, real Stripe).

    Accounts are plain ids (the signed-in account); plans are catalog ids (`growth`);
    intervals are `month` / `year`; cards are test brands (`visa`, `mastercard`, `amex`).
    A refusal raises `Rejected(code)`; anything else raised is a failure of the driver.
    """

    # -- time and the payment network -----------------------------------------------------
    def now(self) -> datetime: ...

    def advance_to(self, moment: datetime) -> None:
        """Let time pass to `moment`: renewals, scheduled changes and period ends happen,
        and whatever the gateway reports about them has reached the service on return."""
        ...

    def decline_next_payment(self) -> None:
        """The bank declines the next payment the gateway attempts."""
        ...

    # -- starting and changing a subscription -----------------------------------------------
    def subscribe(self, account: str, plan: str, interval: str, card: str) -> SubscriptionFacts:
        """Checkout: the customer pays with `card` on the gateway's page and comes back."""
        ...

    def preview(self, account: str, plan: str, interval: str) -> QuoteFacts: ...

    def change_plan(
        self, account: str, plan: str, interval: str, *, quote_id: str | None = None
    ) -> SubscriptionFacts:
        """Upgrade now or schedule a downgrade, as the service decides; redeem a quote if given."""
        ...

    def cancel_scheduled_change(self, account: str) -> SubscriptionFacts: ...

    def cancel(self, account: str) -> SubscriptionFacts: ...

    def resume(self, account: str) -> SubscriptionFacts: ...

    def update_payment_method(self, account: str, card: str) -> Card | None:
        """Replace the card from our billing page (the gateway's setup page, then back)."""
        ...

    # -- the customer portal (Manage Billing) ---------------------------------------------
    def open_billing_portal(self, account: str) -> PortalFacts: ...

    def portal_change_plan(self, account: str, plan: str, interval: str) -> None: ...

    def portal_cancel(self, account: str) -> None: ...

    def portal_resume(self, account: str) -> None: ...

    def portal_update_payment_method(self, account: str, card: str) -> None: ...

    # -- reading ---------------------------------------------------------------------------
    def subscription(self, account: str) -> SubscriptionFacts:
        """The account's subscription; `Rejected("subscription.not_found")` if it never had one."""
        ...

    def entitlements(self, account: str) -> EntitlementFacts: ...

    def invoices(self, account: str) -> list[InvoiceFacts]:
        """Every invoice of the account, newest first."""
        ...

    def invoice_pdf(self, account: str, invoice_id: str) -> bytes:
        """The invoice's PDF document as the account downloads it."""
        ...
