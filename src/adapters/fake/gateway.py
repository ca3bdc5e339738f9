"""The sandbox payment gateway: an in-memory Stripe, stateful, with a clock and failure injection.

INTERFACE STUB: the helper building the fake fills in every method; the names, signatures and
promises below are what the BDD steps, the HTTP sandbox pages and the contract suite rely on.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

import attrs

from adapters.fake.clock import ControllableClock
from application.ports import (
    CheckoutOutcome,
    CheckoutSession,
    GatewayEvent,
    PortalFlow,
    PortalSession,
    SetupSession,
    UiMode,
)
from domain.invoices import Invoice, InvoicePage
from domain.money import Money
from domain.plans import Catalog, Interval, PlanPrice
from domain.subscription import GatewaySubscription, PaymentMethodSummary

# Stripe's test cards, by the brand/last4 they produce. The sandbox never sees a card number:
# the sandbox checkout page offers these as buttons, as Stripe's test mode offers test tokens.
TEST_CARDS: dict[str, PaymentMethodSummary] = {
    "visa": PaymentMethodSummary("visa", "4242"),
    "mastercard": PaymentMethodSummary("mastercard", "4444"),
    "amex": PaymentMethodSummary("amex", "8431"),
}


@attrs.frozen
class Call:
    """One call made to the gateway, for assertions (`fake.calls`)."""

    name: str
    kwargs: dict[str, object]


class FakeGateway:
    """Implements `application.ports.PaymentGateway` in memory, behaving like Stripe.

    Test and sandbox controls (not part of the port):
    - `complete_checkout(checkout_id, outcome="succeeded", card="visa")`: the customer pays
      (or is declined) on the hosted page; on success a subscription starts now with a paid
      `subscription_create` invoice. Returns the checkout outcome.
    - `complete_setup(setup_id, outcome="succeeded", card="mastercard")`: a payment method is
      collected in setup mode (it becomes default only via `complete_payment_method_setup`,
      as in Stripe, where the customer's default is set by a separate call).
    - `portal_change_plan(customer_ref, plan, interval)`, `portal_cancel(customer_ref)`,
      `portal_resume(customer_ref)`, `portal_update_payment_method(customer_ref, card)`:
      what the customer does in the hosted portal, applying the portal's rules (upgrades
      now and invoiced, downgrades scheduled at period end, cancel at period end).
    - `advance(delta)` / `advance_to(moment)`: move the clock; renewals, scheduled changes and
      period-end cancellations happen in order, each emitting events in Stripe's order.
    - `decline_next_payment()`, `require_action_next_payment()`, `fail_next_call()`.
    - `calls`: every port call, in order. `events`: every gateway event emitted, in order.
    - `subscribe(callback)`: called with each `GatewayEvent` as it is emitted (the sandbox's
      stand-in for webhook delivery).
    - `render_invoice_pdf(invoice_id) -> bytes`: a real PDF document of the invoice.
    """

    def __init__(
        self,
        catalog: Catalog,
        clock: ControllableClock,
        *,
        public_url: str = "http://127.0.0.1:8000",
    ) -> None:
        raise NotImplementedError

    # test & sandbox controls
    calls: list[Call]
    events: list[GatewayEvent]

    def subscribe(self, callback: Callable[[GatewayEvent], None]) -> None: ...
    def complete_checkout(
        self, checkout_id: str, *, outcome: str = "succeeded", card: str = "visa"
    ) -> CheckoutOutcome: ...
    def complete_setup(
        self, setup_id: str, *, outcome: str = "succeeded", card: str = "mastercard"
    ) -> None: ...
    def portal_change_plan(self, customer_ref: str, plan: str, interval: Interval) -> None: ...
    def portal_cancel(self, customer_ref: str) -> None: ...
    def portal_resume(self, customer_ref: str) -> None: ...
    def portal_update_payment_method(self, customer_ref: str, card: str) -> None: ...
    def advance(self, delta: timedelta) -> datetime: ...
    def advance_to(self, moment: datetime) -> datetime: ...
    def decline_next_payment(self) -> None: ...
    def require_action_next_payment(self) -> None: ...
    def fail_next_call(self) -> None: ...
    def render_invoice_pdf(self, invoice_id: str) -> bytes: ...
    def portal_session_customer(self, portal_session_id: str) -> str: ...
    def checkout_account(self, checkout_id: str) -> str | None: ...

    # the port (see application.ports.PaymentGateway for the promises)
    def ensure_customer(self, account_id: str, *, idempotency_key: str) -> str: ...
    def start_checkout(self, *, customer_ref: str, account_id: str, price: PlanPrice,
                       success_url: str, cancel_url: str, ui_mode: UiMode,
                       idempotency_key: str) -> CheckoutSession: ...
    def get_checkout(self, checkout_id: str) -> CheckoutOutcome: ...
    def open_portal(self, *, customer_ref: str, return_url: str, flow: PortalFlow | None,
                    subscription_ref: str | None, idempotency_key: str) -> PortalSession: ...
    def start_payment_method_setup(self, *, customer_ref: str, success_url: str,
                                   cancel_url: str, idempotency_key: str) -> SetupSession: ...
    def complete_payment_method_setup(self, setup_id: str, *,
                                      idempotency_key: str) -> PaymentMethodSummary | None: ...
    def preview_plan_change(self, *, subscription_ref: str, target: PlanPrice,
                            proration_at: datetime) -> Money: ...
    def upgrade(self, *, subscription_ref: str, target: PlanPrice, proration_at: datetime,
                idempotency_key: str) -> GatewaySubscription: ...
    def schedule_downgrade(self, *, subscription_ref: str, target: PlanPrice,
                           idempotency_key: str) -> GatewaySubscription: ...
    def withdraw_scheduled_change(self, *, subscription_ref: str,
                                  idempotency_key: str) -> GatewaySubscription: ...
    def cancel_at_period_end(self, *, subscription_ref: str,
                             idempotency_key: str) -> GatewaySubscription: ...
    def resume(self, *, subscription_ref: str, idempotency_key: str) -> GatewaySubscription: ...
    def get_subscription(self, subscription_ref: str) -> GatewaySubscription: ...
    def list_subscriptions(self, customer_ref: str) -> Sequence[GatewaySubscription]: ...
    def list_invoices(self, *, customer_ref: str, limit: int,
                      starting_after: str | None) -> InvoicePage: ...
    def get_invoice(self, invoice_id: str) -> Invoice: ...
