"""The sandbox gateway's controls: what happens outside the port, and what the pages read.

The customer on the hosted pages (paying at checkout, saving a card, confirming with the bank,
using the portal), an operator in the Dashboard, the test clock and the failure switches; and
the lookups the sandbox pages make, none of them logged as port calls. See `FakeGateway`.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from responseiq_billing.adapters.fake.engine import BillingEngine
from responseiq_billing.adapters.fake.pdf import render_text_pdf
from responseiq_billing.adapters.fake.records import Failure, cut_short_at
from responseiq_billing.application.ports import (
    CheckoutOutcome,
    CheckoutStatus,
    GatewayEvent,
    GatewayEventKind,
    Refund,
)
from responseiq_billing.domain.errors import CheckoutNotFound, GatewayRejected, InvoiceNotFound
from responseiq_billing.domain.invoices import Invoice, InvoiceStatus
from responseiq_billing.domain.plans import Interval, PlanPrice
from responseiq_billing.domain.rules import ChangeTiming, classify_change
from responseiq_billing.domain.subscription import GatewaySubscription, PaymentMethodSummary


class SandboxControls(BillingEngine):
    """The test and sandbox controls of `FakeGateway` (listed in its docstring), outside the port."""

    # -- test & sandbox controls ---------------------------------------------------------------

    def subscribe(self, callback: Callable[[GatewayEvent], None]) -> None:
        with self._lock:
            self._subscribers.append(callback)

    def decline_next_payment(self) -> None:
        """The next charge (checkout, upgrade or renewal) is declined, like Stripe's 4000 0000 0000 0002."""
        with self._lock:
            self._next_failure = Failure.DECLINE

    def require_action_next_payment(self) -> None:
        """The next off-session charge needs 3-D Secure, like Stripe's 4000 0027 6000 3184.

        Checkout is on-session and completes authentication in its own page, so this flag
        waits for the next upgrade or renewal.
        """
        with self._lock:
            self._next_failure = Failure.ACTION

    def confirm_payment_action(self, action_id: str) -> GatewaySubscription:
        """The customer confirms an upgrade's payment with the bank (3-D Secure) on its page.

        Like paying Stripe's open invoice, which applies the pending update
        (`customer.subscription.pending_update_applied`). After 23 hours the pending update
        has expired and the page takes no payment: `GatewayRejected`, the plan unchanged.
        """
        with self._operation():
            action = self._actions.pop(action_id, None)
            if action is None:
                raise GatewayRejected("There is no payment waiting for confirmation.")
            sub = self._sub(action.subscription_ref)
            if self._now() >= action.expires_at:
                raise GatewayRejected("The payment expired unconfirmed; nothing was changed.")
            self._apply_upgrade(sub, action.target, action.proration_at, authenticated=True)
            return self._view(sub)

    def payment_action_open(self, action_id: str) -> bool:
        """Whether an authentication page still takes a confirmation (sandbox page lookup)."""
        with self._lock:
            action = self._actions.get(action_id)
            return action is not None and self._clock.now() < action.expires_at

    def fail_next_call(self) -> None:
        """The next port call raises `GatewayUnavailable` and changes nothing (a timeout)."""
        with self._lock:
            self._fail_next_call = True

    def advance(self, delta: timedelta) -> datetime:
        return self.advance_to(self._clock.now() + delta)

    def advance_to(self, moment: datetime) -> datetime:
        """Move the clock to `moment`, handling every period boundary on the way in time order.

        Like a Stripe test clock: the clock stops at each boundary, so each event's `created`
        is the time it happened.
        """
        with self._operation():
            if moment < self._clock.now():
                raise ValueError("the clock never goes backwards")
            self._process_until(moment)
            self._clock.set(moment)
            return moment

    def complete_checkout(
        self, checkout_id: str, *, outcome: str = "succeeded", card: str = "visa"
    ) -> CheckoutOutcome:
        """The customer finishes the hosted checkout page: `succeeded`, `declined` or `expired`."""
        with self._operation():
            self._catch_up()
            checkout = self._checkout(checkout_id)
            if checkout.status is CheckoutStatus.COMPLETE:
                return self._outcome(checkout)
            if checkout.status is CheckoutStatus.EXPIRED:
                raise GatewayRejected("This checkout session has expired.")
            if outcome == "expired":
                checkout.status = CheckoutStatus.EXPIRED
                self._emit_checkout_expired(checkout)
                return self._outcome(checkout)
            if outcome not in ("succeeded", "declined"):
                raise ValueError(f"unknown checkout outcome {outcome!r}")
            summary = self._test_card(card)
            if outcome == "declined" or self._next_failure is Failure.DECLINE:
                # Stripe Checkout shows the decline on its page and lets the customer try
                # another card: the session stays open and nothing is created.
                if self._next_failure is Failure.DECLINE:
                    self._next_failure = None
                return self._outcome(checkout)
            self._start_subscription(checkout, summary)
            return self._outcome(checkout)

    def complete_setup(
        self, setup_id: str, *, outcome: str = "succeeded", card: str = "mastercard"
    ) -> None:
        """The customer adds a card in setup mode; it is attached, not yet the default."""
        with self._operation():
            self._catch_up()
            setup = self._setup(setup_id)
            if setup.status is not CheckoutStatus.OPEN:
                return
            if outcome not in ("succeeded", "declined"):
                raise ValueError(f"unknown setup outcome {outcome!r}")
            summary = self._test_card(card)
            if outcome == "declined" or self._next_failure is Failure.DECLINE:
                if self._next_failure is Failure.DECLINE:
                    self._next_failure = None
                return
            setup.status = CheckoutStatus.COMPLETE
            setup.payment_method = summary
            customer = self._customers[setup.customer_ref]
            self._emit(
                GatewayEventKind.IGNORED,
                "payment_method.attached",
                customer_ref=customer.id,
                account_id=customer.account_id,
                payment_method=summary,
            )
            # Stripe: checkout.session.completed for a session in setup mode.
            self._emit(
                GatewayEventKind.SETUP_COMPLETED,
                "checkout.session.completed",
                customer_ref=customer.id,
                account_id=customer.account_id,
                checkout_id=setup.id,
            )

    def portal_change_plan(self, customer_ref: str, plan: str, interval: Interval) -> None:
        """A plan change in the hosted portal, by the same rule as ours.

        The portal is configured with `proration_behavior="always_invoice"` and
        `schedule_at_period_end` on `decreasing_item_amount` / `shortening_interval`, which is
        what `classify_change` encodes: upgrades now and invoiced, downgrades at period end.
        """
        with self._operation():
            self._catch_up()
            sub = self._customer_live_sub(customer_ref)
            target = self._price(plan, interval)
            current = self._catalog.price(sub.plan_id, sub.interval)
            if classify_change(current, target) is ChangeTiming.IMMEDIATE:
                self._apply_upgrade(sub, target, self._now())
            else:
                self._apply_schedule(sub, target)

    def portal_cancel(self, customer_ref: str) -> None:
        """Cancel in the portal: `subscription_cancel.mode = "at_period_end"`."""
        with self._operation():
            self._catch_up()
            self._apply_cancel(self._customer_live_sub(customer_ref))

    def portal_resume(self, customer_ref: str) -> None:
        """The portal's "Renew plan" button on a subscription set to cancel."""
        with self._operation():
            self._catch_up()
            self._apply_resume(self._customer_live_sub(customer_ref))

    def dashboard_cancel_at(self, customer_ref: str, moment: datetime) -> None:
        """An operator sets "Cancel on a custom date" in the Dashboard (Stripe's `cancel_at`,
        default `proration_behavior=create_prorations`): the subscription renews as usual
        until `moment` (a renewal into the period holding it bills only the time until it)
        and ends then. A date inside the current period credits the time after it: a pending
        proration that the final invoice collects, its negative total becoming the
        customer's balance. Like the portal's cancel, it drops a scheduled change first."""
        with self._operation():
            self._catch_up()
            sub = self._customer_live_sub(customer_ref)
            self._require_updatable(sub)
            if moment <= self._now():
                raise GatewayRejected("A cancellation date must be in the future.")
            self._release_schedule(sub)
            cut_before = cut_short_at(sub)
            sub.cancel_at_period_end = False
            sub.cancel_at = moment
            self._prorate_cancellation(sub, cut_before)
            self._emit_subscription(sub, "customer.subscription.updated")

    def portal_update_payment_method(self, customer_ref: str, card: str) -> None:
        """A new card in the portal becomes the customer's default at once."""
        with self._operation():
            self._catch_up()
            customer = self._customer(customer_ref)
            summary = self._test_card(card)
            self._emit(
                GatewayEventKind.IGNORED,
                "payment_method.attached",
                customer_ref=customer.id,
                account_id=customer.account_id,
                payment_method=summary,
            )
            self._set_default_payment_method(customer, summary)

    def render_invoice_pdf(self, invoice_id: str) -> bytes:
        """The invoice as a PDF document (Stripe's `invoice_pdf`), for finalized invoices."""
        with self._lock:
            record = self._invoice(invoice_id)
            invoice = record.invoice
            if invoice.status is InvoiceStatus.DRAFT or invoice.number is None:
                raise InvoiceNotFound("A draft invoice has no PDF yet.")
            customer = self._customers[invoice.customer_ref]
            lines = [
                f"Invoice number: {invoice.number}",
                f"Status: {invoice.status.value}",
                f"Date: {invoice.created:%Y-%m-%d %H:%M} UTC",
                f"Billed to: account {customer.account_id} (customer {customer.id})",
                f"Subscription: {invoice.subscription_ref or '-'}",
                f"Billing reason: {invoice.billing_reason.value}",
                f"Period: {invoice.period_start:%Y-%m-%d} to {invoice.period_end:%Y-%m-%d}",
                "",
                "Items:",
                *(f"  {line.description}: {line.amount}" for line in record.lines),
                "",
                f"Amount due: {invoice.amount_due}",
                f"Amount paid: {invoice.amount_paid}",
            ]
            if record.payment_method is not None and invoice.status is InvoiceStatus.PAID:
                pm = record.payment_method
                lines.append(f"Paid with: {pm.brand} ending in {pm.last4}")
            if record.refund is not None:
                lines.append(f"Refunded: {record.refund.amount} (refund {record.refund.id})")
            return render_text_pdf(
                title=f"Invoice {invoice.number}",
                heading=f"ResponseIQ invoice {invoice.number}",
                lines=lines,
                created=invoice.created,
            )

    # -- lookups for the sandbox pages ---------------------------------------------------------

    def portal_session_customer(self, portal_session_id: str) -> str:
        """The customer a portal session was opened for; an unknown id is not found."""
        with self._lock:
            portal = self._portals.get(portal_session_id)
            if portal is None:
                raise CheckoutNotFound("There is no such portal session.")
            return portal.customer_ref

    def portal_return_url(self, portal_session_id: str) -> str:
        with self._lock:
            portal = self._portals.get(portal_session_id)
            if portal is None:
                raise CheckoutNotFound("There is no such portal session.")
            return portal.return_url

    def checkout_account(self, checkout_id: str) -> str | None:
        """The account a checkout was started for (Stripe's `client_reference_id`)."""
        with self._lock:
            return self._checkout(checkout_id).account_id

    def checkout_price(self, checkout_id: str) -> PlanPrice:
        with self._lock:
            return self._checkout(checkout_id).price

    def checkout_return_url(self, checkout_id: str) -> str:
        """Where the checkout page sends the customer: success (id filled in) once complete."""
        with self._lock:
            checkout = self._checkout(checkout_id)
            if checkout.status is CheckoutStatus.COMPLETE:
                return checkout.success_url.replace("{CHECKOUT_SESSION_ID}", checkout.id)
            return checkout.cancel_url

    def setup_return_url(self, setup_id: str) -> str:
        with self._lock:
            setup = self._setup(setup_id)
            if setup.status is CheckoutStatus.COMPLETE:
                return setup.success_url.replace("{CHECKOUT_SESSION_ID}", setup.id)
            return setup.cancel_url

    def customer_subscription(self, customer_ref: str) -> GatewaySubscription | None:
        """The customer's live subscription, else its newest one, or None."""
        with self._lock:
            self._customer(customer_ref)
            subs = self._subs_of(customer_ref)
            live = [sub for sub in subs if sub.status.is_live]
            return self._view((live or subs)[0]) if subs else None

    def customer_subscriptions(self, customer_ref: str) -> list[GatewaySubscription]:
        """Every subscription of the customer, newest first, live or not."""
        with self._lock:
            self._customer(customer_ref)
            return [self._view(sub) for sub in self._subs_of(customer_ref)]

    def customer_invoices(self, customer_ref: str) -> list[Invoice]:
        with self._lock:
            self._customer(customer_ref)
            return [r.invoice for r in self._invoices_of(customer_ref)]

    def customer_payment_method(self, customer_ref: str) -> PaymentMethodSummary | None:
        with self._lock:
            return self._customer(customer_ref).default_payment_method

    def invoice_payment_method(self, invoice_id: str) -> PaymentMethodSummary | None:
        """The payment method an invoice was charged to (None if nothing was charged)."""
        with self._lock:
            return self._invoice(invoice_id).payment_method

    def invoice_refund(self, invoice_id: str) -> Refund | None:
        """The refund given for an invoice's payment, if any."""
        with self._lock:
            return self._invoice(invoice_id).refund

    def customer_balance(self, customer_ref: str) -> int:
        """Stripe's customer balance in minor units: negative is credit for the next invoice."""
        with self._lock:
            return self._customer(customer_ref).balance
