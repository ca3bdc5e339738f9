"""The sandbox gateway's billing engine: charges, invoices, the subscription lifecycle, renewals.

What Stripe does behind its API, on the records `state.py` holds: a charge succeeds, is
declined or waits for the bank; invoices are created, finalized and paid in Stripe's order of
events; upgrades, scheduled downgrades, cancellations and resumptions change a subscription;
and as the clock passes a period's end, subscriptions renew, change plan or end.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

import attrs

from responseiq_billing.adapters.fake.records import (
    AUTHENTICATION_CARD,
    PENDING_UPDATE_TTL,
    Action,
    Checkout,
    Customer,
    Failure,
    InvoiceRecord,
    Line,
    Sub,
    cut_short_at,
    due_at,
)
from responseiq_billing.adapters.fake.state import GatewayState
from responseiq_billing.application.ids import new_id
from responseiq_billing.application.ports import CheckoutStatus, GatewayEventKind
from responseiq_billing.domain.errors import (
    CurrencyMismatch,
    GatewayRejected,
    PaymentActionRequired,
    PaymentDeclined,
)
from responseiq_billing.domain.invoices import BillingReason, Invoice, InvoiceStatus
from responseiq_billing.domain.money import Money
from responseiq_billing.domain.periods import period_end
from responseiq_billing.domain.plans import PlanPrice
from responseiq_billing.domain.rules import prorate
from responseiq_billing.domain.subscription import PaymentMethodSummary, PendingChange, Status

# Statuses whose subscription Stripe still lets you update (items, schedules, cancellation).
_UPDATABLE = (Status.ACTIVE, Status.TRIALING, Status.PAST_DUE)


def _time_share(amount: Money, part: timedelta, whole: timedelta) -> Money:
    """`amount * part / whole` to the second, rounded half up: Stripe's classic proration of
    one line (the same arithmetic as `domain.rules.prorate`)."""
    seconds, total = int(part.total_seconds()), int(whole.total_seconds())
    return Money((2 * amount.amount * seconds + total) // (2 * total), amount.currency)


class BillingEngine(GatewayState):
    """Stripe's billing behind the API, for the port (`gateway.py`) and the controls (`sandbox.py`).

    Called with the lock held. Each change emits its events as Stripe would, in Stripe's order.
    """

    # -- payments and invoices ---------------------------------------------------------------------

    def _apply_balance(
        self, customer: Customer, total: Money, *, commit: bool
    ) -> tuple[Money, int]:
        """Amount due after the customer balance; a negative total becomes credit (Stripe)."""
        combined = total.amount + customer.balance
        if commit:
            customer.balance = min(combined, 0)
        return Money(max(combined, 0), total.currency), min(combined, 0)

    def _attempt_charge(
        self, customer: Customer, due: Money, *, authenticated: bool = False
    ) -> Failure | None:
        """Charge the default payment method; None when paid. A zero invoice needs no charge.
        `authenticated`: the customer has just confirmed this payment with the bank."""
        if due.amount <= 0:
            return None
        failure, self._next_failure = self._next_failure, None
        if failure is not None:
            return failure
        if customer.default_payment_method is None:
            return Failure.DECLINE  # Stripe: "This customer has no attached payment source"
        if customer.default_payment_method == AUTHENTICATION_CARD and not authenticated:
            return Failure.ACTION
        return None

    def _issue_invoice(
        self,
        sub: Sub,
        reason: BillingReason,
        lines: Sequence[Line],
        period: tuple[datetime, datetime],
        failure: Failure | None,
    ) -> InvoiceRecord:
        """Create, finalize and pay (or fail to pay) one invoice, emitting Stripe's events.

        Stripe's order: invoice.created (draft), invoice.finalized (numbered, with its PDF),
        then invoice.paid or invoice.payment_failed / invoice.payment_action_required.
        """
        customer = self._customers[sub.customer_ref]
        currency = lines[0].amount.currency
        total = Money(sum(line.amount.amount for line in lines), currency)
        due, _ = self._apply_balance(customer, total, commit=True)
        invoice_id = new_id("in")
        draft = Invoice(
            id=invoice_id,
            customer_ref=customer.id,
            subscription_ref=sub.id,
            number=None,
            status=InvoiceStatus.DRAFT,
            amount_due=due,
            amount_paid=Money.zero(currency),
            created=self._now(),
            period_start=period[0],
            period_end=period[1],
            billing_reason=reason,
            pdf_url=None,  # Stripe has no invoice_pdf until the invoice is finalized
            hosted_url=None,
        )
        record = InvoiceRecord(draft, tuple(lines), None, self._next_seq())
        self._invoices[invoice_id] = record
        self._emit_invoice(record, "invoice.created")

        self._invoice_number += 1
        record.invoice = attrs.evolve(
            draft,
            number=f"RIQ-{self._invoice_number:04d}",
            status=InvoiceStatus.OPEN,
            pdf_url=f"{self._public_url}/sandbox/invoices/{invoice_id}.pdf",
            hosted_url=f"{self._public_url}/sandbox/invoices/{invoice_id}",
        )
        self._emit_invoice(record, "invoice.finalized")

        if due.amount > 0:
            record.payment_method = customer.default_payment_method
        if failure is None:
            record.invoice = attrs.evolve(
                record.invoice, status=InvoiceStatus.PAID, amount_paid=due
            )
            self._emit_invoice(record, "invoice.paid")
        else:
            self._emit_invoice(record, failure.value)
        return record

    def _set_default_payment_method(
        self, customer: Customer, summary: PaymentMethodSummary
    ) -> None:
        # The sandbox keeps one default per customer, used by every subscription. In Stripe a
        # subscription's own default_payment_method (set by Checkout) wins over the customer's
        # invoice_settings default, so the Stripe adapter must update both.
        if customer.default_payment_method == summary:
            return
        customer.default_payment_method = summary
        self._emit(
            GatewayEventKind.PAYMENT_METHOD_CHANGED,
            "customer.updated",
            customer_ref=customer.id,
            account_id=customer.account_id,
            payment_method=summary,
            default_payment_method_changed=True,
        )

    # -- subscription lifecycle ------------------------------------------------------------------

    def _require_updatable(self, sub: Sub) -> None:
        if sub.status not in _UPDATABLE:
            # Stripe: "A canceled subscription can only update its cancellation_details..."
            raise GatewayRejected(f"The subscription is {sub.status.value} and cannot be changed.")

    def _start_subscription(self, checkout: Checkout, card: PaymentMethodSummary) -> None:
        now = self._now()
        customer = self._customers[checkout.customer_ref]
        customer.default_payment_method = card
        price = checkout.price
        sub = Sub(
            id=new_id("sub"),
            customer_ref=customer.id,
            account_id=checkout.account_id,
            plan_id=price.plan_id,
            interval=price.interval,
            status=Status.ACTIVE,
            period_start=now,
            period_end=period_end(now, price.interval, now.day),
            anchor_day=now.day,
            created=now,
            seq=self._next_seq(),
        )
        self._subs[sub.id] = sub
        checkout.status = CheckoutStatus.COMPLETE
        checkout.subscription_ref = sub.id
        # Stripe's order for a subscription Checkout: the subscription is created `incomplete`,
        # its first invoice is created, finalized and paid, the subscription turns `active`,
        # and checkout.session.completed comes last.
        self._emit_subscription(sub, "customer.subscription.created", status=Status.INCOMPLETE)
        line = Line(f"{self._describe(price)} ({self._span(sub)})", price.amount)
        self._issue_invoice(
            sub, BillingReason.SUBSCRIPTION_CREATE, [line], (sub.period_start, sub.period_end), None
        )
        self._emit_subscription(sub, "customer.subscription.updated")
        self._emit(
            GatewayEventKind.CHECKOUT_COMPLETED,
            "checkout.session.completed",
            customer_ref=customer.id,
            account_id=checkout.account_id,
            subscription_ref=sub.id,
            checkout_id=checkout.id,
        )

    def _proration_total(self, sub: Sub, target: PlanPrice, proration_at: datetime) -> Money:
        return sum(
            (line.amount for line in self._proration_lines(sub, target, proration_at)),
            Money.zero(target.amount.currency),
        )

    def _proration_lines(self, sub: Sub, target: PlanPrice, proration_at: datetime) -> list[Line]:
        """Stripe's proration lines, computed by the domain's own `prorate`."""
        current = self._catalog.price(sub.plan_id, sub.interval)
        if not sub.period_start <= proration_at <= sub.period_end:
            # Stripe refuses a proration_date outside the current period.
            raise GatewayRejected("The proration date must lie within the current period.")
        try:
            proration = prorate(
                current,
                target,
                period_start=sub.period_start,
                period_end_at=sub.period_end,
                at=proration_at,
                anchor_day=proration_at.day,
            )
        except CurrencyMismatch as error:
            raise GatewayRejected(error.message) from error
        since = f"{proration_at:%d %b %Y}"
        if target.interval is current.interval:
            charge_text = f"Remaining time on {self._describe(target)} after {since}"
        else:
            charge_text = f"{self._describe(target)} from {since}"
        return [
            Line(f"Unused time on {self._describe(current)} after {since}", proration.credit),
            Line(charge_text, proration.charge),
        ]

    def _apply_upgrade(
        self, sub: Sub, target: PlanPrice, proration_at: datetime, *, authenticated: bool = False
    ) -> None:
        """An immediate, invoiced change with Stripe's `payment_behavior="pending_if_incomplete"`.

        The new price applies only if the proration invoice is paid. In Stripe a failed payment
        leaves an open invoice and a `pending_update` until it expires; the port promises that
        nothing changed, so the sandbox models the state after the pending update is dropped:
        no invoice, no event, the plan unchanged.
        """
        self._require_updatable(sub)
        if (target.plan_id, target.interval) == (sub.plan_id, sub.interval):
            return  # Stripe: updating to the price already in force changes nothing
        lines = self._proration_lines(sub, target, proration_at)
        customer = self._customers[sub.customer_ref]
        total = Money(sum(line.amount.amount for line in lines), target.amount.currency)
        due, _ = self._apply_balance(customer, total, commit=False)
        failure = self._attempt_charge(customer, due, authenticated=authenticated)
        if failure is Failure.DECLINE:
            raise PaymentDeclined()
        if failure is Failure.ACTION:
            # Stripe keeps a pending update for 23 hours while the invoice waits on its
            # hosted page; the sandbox's stand-in is its authentication page.
            action_id = new_id("auth")
            self._actions[action_id] = Action(
                sub.id, target, proration_at, self._now() + PENDING_UPDATE_TTL
            )
            raise PaymentActionRequired(
                hosted_invoice_url=f"{self._public_url}/sandbox/authenticate/{action_id}"
            )
        now = self._now()
        self._release_schedule(sub)  # a scheduled downgrade is dropped first
        if target.interval is not sub.interval:
            # Changing the interval resets Stripe's billing_cycle_anchor to now: a new period
            # starts, billed in full (less the credit for the unused old period).
            sub.period_start = now
            sub.period_end = period_end(now, target.interval, now.day)
            sub.anchor_day = now.day
        sub.plan_id, sub.interval = target.plan_id, target.interval
        self._issue_invoice(
            sub,
            BillingReason.SUBSCRIPTION_UPDATE,
            lines,
            (proration_at, sub.period_end),
            None,
        )
        self._emit_subscription(sub, "customer.subscription.updated")

    def _apply_schedule(self, sub: Sub, target: PlanPrice) -> None:
        """A downgrade at period end: Stripe's subscription schedule with a second phase."""
        self._require_updatable(sub)
        if sub.cancel_at_period_end:
            raise GatewayRejected("The subscription is set to cancel; renew it first.")
        replacing = sub.pending is not None
        sub.pending = PendingChange(target.plan_id, target.interval, sub.period_end)
        self._emit_schedule(
            sub, "subscription_schedule.updated" if replacing else "subscription_schedule.created"
        )
        self._emit_subscription(sub, "customer.subscription.updated")

    def _release_schedule(self, sub: Sub) -> bool:
        """Drop a scheduled change (Stripe: subscription_schedules.release). Returns if one was."""
        if sub.pending is None:
            return False
        sub.pending = None
        self._emit_schedule(sub, "subscription_schedule.released")
        return True

    def _apply_cancel(self, sub: Sub) -> None:
        self._require_updatable(sub)
        if sub.cancel_at_period_end:
            return  # setting cancel_at_period_end again is a no-op in Stripe
        self._release_schedule(sub)  # cancel supersedes a scheduled downgrade
        cut_before = cut_short_at(sub)
        sub.cancel_at_period_end = True
        sub.cancel_at = None  # Stripe: cancel_at_period_end replaces a date set before
        self._prorate_cancellation(sub, cut_before)
        self._emit_subscription(sub, "customer.subscription.updated")

    def _prorate_cancellation(self, sub: Sub, cut_before: datetime | None) -> None:
        """Stripe's prorations for a moved cancellation date: the time a date used to cut off
        the current period is charged back, the time the new one cuts off is credited."""
        cut_after = cut_short_at(sub)
        if cut_after == cut_before:
            return
        price = self._catalog.price(sub.plan_id, sub.interval)
        whole = sub.period_end - sub.period_start
        if cut_before is not None:
            back = _time_share(price.amount, sub.period_end - cut_before, whole)
            since = f"{cut_before:%d %b %Y}"
            sub.prorations.append(
                Line(f"Remaining time on {self._describe(price)} after {since}", back)
            )
        if cut_after is not None:
            credit = _time_share(price.amount, sub.period_end - cut_after, whole)
            since = f"{cut_after:%d %b %Y}"
            sub.prorations.append(
                Line(f"Unused time on {self._describe(price)} after {since}", -credit)
            )

    def _end_now(self, sub: Sub) -> None:
        """Stripe's `subscriptions.cancel` without `prorate` or `invoice_now`: the subscription
        ends now, nothing is credited or invoiced (pending prorations are removed), and an
        attached schedule is canceled."""
        if sub.pending is not None:
            sub.pending = None
            self._emit_schedule(sub, "subscription_schedule.canceled")
        sub.prorations.clear()
        sub.status = Status.CANCELED
        sub.ended_at = self._now()
        self._emit_subscription(sub, "customer.subscription.deleted")

    def _apply_resume(self, sub: Sub) -> None:
        self._require_updatable(sub)
        if not sub.cancel_at_period_end and sub.cancel_at is None:
            return
        cut_before = cut_short_at(sub)
        sub.cancel_at_period_end = False
        sub.cancel_at = None  # the adapter's resume clears a date as well (`cancel_at: ""`)
        self._prorate_cancellation(sub, cut_before)
        self._emit_subscription(sub, "customer.subscription.updated")

    # -- time ----------------------------------------------------------------------------------------

    def _catch_up(self) -> None:
        self._process_until(self._clock.now())

    def _process_until(self, moment: datetime) -> None:
        """Handle every period boundary up to `moment`, earliest first, across all subscriptions."""
        while True:
            due = [s for s in self._subs.values() if s.status.is_live and due_at(s) <= moment]
            if not due:
                return
            sub = min(due, key=lambda s: (due_at(s), s.seq))
            boundary = due_at(sub)
            if boundary > self._clock.now():
                self._clock.set(boundary)  # a test clock stops at each boundary
            self._at = boundary
            try:
                if sub.cancel_at is not None and sub.cancel_at <= sub.period_end:
                    self._end_on_date(sub)
                else:
                    self._period_end(sub)
            finally:
                self._at = None

    def _end_on_date(self, sub: Sub) -> None:
        """Stripe ends a subscription at its `cancel_at`, then a final invoice collects the
        pending prorations: a credit for the unused time becomes the customer's balance
        (nothing due, nothing paid back to the card)."""
        assert sub.cancel_at is not None
        if sub.pending is not None:
            sub.pending = None
            self._emit_schedule(sub, "subscription_schedule.canceled")
        sub.status = Status.CANCELED
        sub.ended_at = sub.cancel_at
        self._emit_subscription(sub, "customer.subscription.deleted")
        self._invoice_prorations(sub, (sub.cancel_at, sub.period_end))

    def _invoice_prorations(self, sub: Sub, period: tuple[datetime, datetime]) -> None:
        """The final invoice of an ended subscription's pending prorations, if it has any."""
        if not sub.prorations:
            return
        lines, sub.prorations = list(sub.prorations), []
        self._issue_invoice(sub, BillingReason.SUBSCRIPTION_CYCLE, lines, period, None)

    def _period_end(self, sub: Sub) -> None:
        at = sub.period_end
        if sub.cancel_at_period_end:
            # Stripe ends the subscription at the period end and sends
            # customer.subscription.deleted; a final invoice only collects pending prorations.
            sub.status = Status.CANCELED
            sub.ended_at = at
            sub.pending = None
            self._emit_subscription(sub, "customer.subscription.deleted")
            self._invoice_prorations(sub, (at, at))
            return
        if sub.pending is not None and sub.pending.effective_at <= at:
            # The schedule's next phase starts: the new price, with proration_behavior "none".
            sub.plan_id, sub.interval = sub.pending.plan_id, sub.pending.interval
            sub.pending = None
        sub.period_start = at
        sub.period_end = period_end(at, sub.interval, sub.anchor_day)
        price = self._catalog.price(sub.plan_id, sub.interval)
        customer = self._customers[sub.customer_ref]
        cut = cut_short_at(sub)
        if cut is None:
            line = Line(f"{self._describe(price)} ({self._span(sub)})", price.amount)
            until = sub.period_end
        else:
            # A cancellation date inside the new period: Stripe bills only the time until it.
            amount = _time_share(price.amount, cut - at, sub.period_end - at)
            line = Line(f"{self._describe(price)} ({at:%d %b %Y} - {cut:%d %b %Y})", amount)
            until = cut
        lines, sub.prorations = [line, *sub.prorations], []
        total = sum((entry.amount for entry in lines), Money.zero(price.amount.currency))
        due, _ = self._apply_balance(customer, total, commit=False)
        failure = self._attempt_charge(customer, due)
        self._issue_invoice(
            sub,
            BillingReason.SUBSCRIPTION_CYCLE,
            lines,
            (sub.period_start, until),
            failure,
        )
        # Stripe: a failed renewal payment turns the subscription past_due (Smart Retries then
        # run; the sandbox does not retry); a paid renewal brings a past_due one back to active.
        sub.status = Status.ACTIVE if failure is None else Status.PAST_DUE
        self._emit_subscription(sub, "customer.subscription.updated")
