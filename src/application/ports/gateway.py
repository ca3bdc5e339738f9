"""The payment gateway port and the values that cross it (checkouts, portal and setup sessions,
refunds)."""

from __future__ import annotations

import enum
from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

import attrs

from responseiq_billing.domain.invoices import Invoice, InvoicePage
from responseiq_billing.domain.money import Money
from responseiq_billing.domain.plans import PlanPrice
from responseiq_billing.domain.subscription import GatewaySubscription, PaymentMethodSummary


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
