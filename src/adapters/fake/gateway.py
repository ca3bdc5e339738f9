"""The sandbox payment gateway: an in-memory Stripe, stateful, with a clock and failure injection.

`FakeGateway` is built in layers, one module each: `records.py` (what it stores, and the test
cards), `state.py` (the lock, lookups, views and events), `engine.py` (charges, invoices, the
subscription lifecycle and renewals), `sandbox.py` (the controls outside the port) and this
module (the port itself, with Stripe's idempotency keys from `idempotency.py`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import TypeVar

from responseiq_billing.adapters.fake.records import (
    AUTHENTICATION_CARD,
    PENDING_UPDATE_TTL,
    TEST_CARDS,
    Call,
    Checkout,
    Customer,
    Portal,
    Setup,
)
from responseiq_billing.adapters.fake.sandbox import SandboxControls
from responseiq_billing.application.ids import new_id
from responseiq_billing.application.ports import (
    CheckoutOutcome,
    CheckoutSession,
    CheckoutStatus,
    GatewayEventKind,
    PaymentGateway,
    PortalFlow,
    PortalSession,
    Refund,
    ScheduledChanges,
    SetupSession,
    UiMode,
)
from responseiq_billing.domain.errors import (
    CheckoutNotFound,
    GatewayRejected,
    GatewayUnavailable,
    InvoiceNotFound,
    SubscriptionNotFound,
)
from responseiq_billing.domain.invoices import Invoice, InvoicePage, InvoiceStatus
from responseiq_billing.domain.money import Money
from responseiq_billing.domain.plans import PlanPrice
from responseiq_billing.domain.subscription import GatewaySubscription, PaymentMethodSummary

__all__ = [
    "AUTHENTICATION_CARD",
    "CHECKOUT_TTL",
    "MAX_PAGE",
    "PENDING_UPDATE_TTL",
    "TEST_CARDS",
    "Call",
    "FakeGateway",
]

T = TypeVar("T")

# Stripe Checkout sessions expire 24 hours after creation unless `expires_at` says otherwise.
CHECKOUT_TTL = timedelta(hours=24)
MAX_PAGE = 100  # Stripe's list endpoints accept limit 1..100


class FakeGateway(SandboxControls):
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

    Lookups for the sandbox pages, none of them logged as port calls: `checkout_account`,
    `checkout_price`, `checkout_return_url`, `setup_return_url`, `portal_session_customer`,
    `portal_return_url`, `customer_subscription`, `customer_subscriptions`,
    `customer_invoices`, `customer_payment_method`, `invoice_payment_method`, `invoice_refund`,
    `customer_balance`.

    Time: every call first catches up with the clock (renewals due by now happen before the
    call is served, as they would have in Stripe), so moving the shared clock directly is safe.
    Events are delivered to subscribers after the call's state change, outside the lock, so a
    subscriber may call the gateway back (as a webhook handler re-reads a subscription).
    """

    # -- the port (see application.ports.PaymentGateway for the promises) ----------------------

    def ensure_customer(self, account_id: str, *, idempotency_key: str) -> str:
        def create() -> str:
            customer = Customer(new_id("cus"), account_id, self._now())
            self._customers[customer.id] = customer
            self._emit(
                GatewayEventKind.IGNORED,
                "customer.created",
                customer_ref=customer.id,
                account_id=account_id,
            )
            return customer.id

        return self._idempotent_call(
            "ensure_customer", idempotency_key, {"account_id": account_id}, create
        )

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
        def create() -> CheckoutSession:
            self._customer(customer_ref)
            checked = self._price(price.plan_id, price.interval)
            if checked != price:
                raise GatewayRejected("No such price.")  # Stripe: price ids name exact amounts
            now = self._now()
            checkout_id = new_id("cs")
            secret = new_id(f"{checkout_id}_secret")
            checkout = Checkout(
                id=checkout_id,
                customer_ref=customer_ref,
                account_id=account_id,
                price=price,
                success_url=success_url,
                cancel_url=cancel_url,
                ui_mode=ui_mode,
                created=now,
                expires_at=now + CHECKOUT_TTL,
                # Stripe: `ui_mode="embedded"` answers a client_secret and no url; hosted the reverse.
                client_secret=secret if ui_mode is UiMode.EMBEDDED else None,
            )
            self._checkouts[checkout_id] = checkout
            return self._session(checkout)

        params = {
            "customer_ref": customer_ref,
            "account_id": account_id,
            "price": price,
            "success_url": success_url,
            "cancel_url": cancel_url,
            "ui_mode": ui_mode,
        }
        return self._idempotent_call("start_checkout", idempotency_key, params, create)

    def get_checkout(self, checkout_id: str) -> CheckoutOutcome:
        with self._operation():
            self._port_call("get_checkout", checkout_id=checkout_id)
            return self._outcome(self._checkout(checkout_id))

    def expire_checkout(self, checkout_id: str, *, idempotency_key: str) -> CheckoutStatus:
        def expire() -> CheckoutStatus:
            checkout = self._checkout(checkout_id)
            # Stripe expires only open sessions; the adapter reads one that is not open.
            if checkout.status is CheckoutStatus.OPEN:
                checkout.status = CheckoutStatus.EXPIRED
                self._emit_checkout_expired(checkout)
            return checkout.status

        params = {"checkout_id": checkout_id}
        return self._idempotent_call("expire_checkout", idempotency_key, params, expire)

    def open_portal(
        self,
        *,
        customer_ref: str,
        return_url: str,
        flow: PortalFlow | None,
        subscription_ref: str | None,
        idempotency_key: str,
    ) -> PortalSession:
        def create() -> PortalSession:
            self._customer(customer_ref)
            if subscription_ref is not None:
                sub = self._sub(subscription_ref)
                if sub.customer_ref != customer_ref:
                    raise SubscriptionNotFound()
            if flow in (PortalFlow.SUBSCRIPTION_UPDATE, PortalFlow.SUBSCRIPTION_CANCEL) and (
                subscription_ref is None
            ):
                # Stripe: flow_data.subscription_update.subscription is required.
                raise GatewayRejected("This portal flow needs a subscription.")
            portal = Portal(
                new_id("bps"), customer_ref, return_url, flow, subscription_ref, self._now()
            )
            self._portals[portal.id] = portal
            return PortalSession(portal.id, f"{self._public_url}/sandbox/portal/{portal.id}")

        params = {
            "customer_ref": customer_ref,
            "return_url": return_url,
            "flow": flow,
            "subscription_ref": subscription_ref,
        }
        return self._idempotent_call("open_portal", idempotency_key, params, create)

    def start_payment_method_setup(
        self, *, customer_ref: str, success_url: str, cancel_url: str, idempotency_key: str
    ) -> SetupSession:
        def create() -> SetupSession:
            self._customer(customer_ref)
            # Stripe: a Checkout Session in `mode="setup"`, hence the `cs_` prefix.
            setup = Setup(new_id("cs"), customer_ref, success_url, cancel_url, self._now())
            self._setups[setup.id] = setup
            return SetupSession(setup.id, f"{self._public_url}/sandbox/setup/{setup.id}", None)

        params = {
            "customer_ref": customer_ref,
            "success_url": success_url,
            "cancel_url": cancel_url,
        }
        return self._idempotent_call("start_payment_method_setup", idempotency_key, params, create)

    def complete_payment_method_setup(
        self, setup_id: str, *, customer_ref: str, idempotency_key: str
    ) -> PaymentMethodSummary | None:
        def complete() -> PaymentMethodSummary | None:
            setup = self._setup(setup_id)
            if setup.customer_ref != customer_ref:
                raise CheckoutNotFound()  # Stripe: another customer's session is not found
            if setup.status is not CheckoutStatus.COMPLETE or setup.payment_method is None:
                return None
            # Stripe: customers.update(invoice_settings={"default_payment_method": pm}).
            customer = self._customers[setup.customer_ref]
            self._set_default_payment_method(customer, setup.payment_method)
            return setup.payment_method

        return self._idempotent_call(
            "complete_payment_method_setup",
            idempotency_key,
            {"setup_id": setup_id, "customer_ref": customer_ref},
            complete,
        )

    def preview_plan_change(
        self, *, subscription_ref: str, target: PlanPrice, proration_at: datetime
    ) -> Money:
        with self._operation():
            self._port_call(
                "preview_plan_change",
                subscription_ref=subscription_ref,
                target=target,
                proration_at=proration_at,
            )
            sub = self._sub(subscription_ref)
            self._require_updatable(sub)
            total = self._proration_total(sub, target, proration_at)
            # Stripe's invoices.create_preview applies the customer balance as the real one would.
            due, _ = self._apply_balance(self._customers[sub.customer_ref], total, commit=False)
            return due

    def upgrade(
        self,
        *,
        subscription_ref: str,
        target: PlanPrice,
        proration_at: datetime,
        idempotency_key: str,
    ) -> GatewaySubscription:
        def change() -> GatewaySubscription:
            sub = self._sub(subscription_ref)
            self._apply_upgrade(sub, self._price(target.plan_id, target.interval), proration_at)
            return self._view(sub)

        params = {
            "subscription_ref": subscription_ref,
            "target": target,
            "proration_at": proration_at,
        }
        return self._idempotent_call("upgrade", idempotency_key, params, change)

    def schedule_downgrade(
        self, *, subscription_ref: str, target: PlanPrice, idempotency_key: str
    ) -> GatewaySubscription:
        self._require_self_scheduling()

        def change() -> GatewaySubscription:
            sub = self._sub(subscription_ref)
            self._apply_schedule(sub, self._price(target.plan_id, target.interval))
            return self._view(sub)

        params = {"subscription_ref": subscription_ref, "target": target}
        return self._idempotent_call("schedule_downgrade", idempotency_key, params, change)

    def withdraw_scheduled_change(
        self, *, subscription_ref: str, idempotency_key: str
    ) -> GatewaySubscription:
        self._require_self_scheduling()

        def change() -> GatewaySubscription:
            sub = self._sub(subscription_ref)
            self._require_updatable(sub)
            if self._release_schedule(sub):
                self._emit_subscription(sub, "customer.subscription.updated")
            return self._view(sub)

        params = {"subscription_ref": subscription_ref}
        return self._idempotent_call("withdraw_scheduled_change", idempotency_key, params, change)

    def _require_self_scheduling(self) -> None:
        if self.scheduled_changes is not ScheduledChanges.GATEWAY:
            raise GatewayRejected("This gateway does not schedule plan changes; the core does.")

    def apply_plan_for_renewal(
        self, *, subscription_ref: str, target: PlanPrice, idempotency_key: str
    ) -> GatewaySubscription:
        """Paddle's `proration_billing_mode=do_not_bill`: the price changes now, nothing is
        billed or credited, and the next renewal bills the new price."""

        def change() -> GatewaySubscription:
            sub = self._sub(subscription_ref)
            self._require_updatable(sub)
            price = self._price(target.plan_id, target.interval)
            if (sub.plan_id, sub.interval) != (price.plan_id, price.interval):
                self._release_schedule(sub)
                sub.plan_id, sub.interval = price.plan_id, price.interval
                self._emit_subscription(sub, "customer.subscription.updated")
            return self._view(sub)

        params = {"subscription_ref": subscription_ref, "target": target}
        return self._idempotent_call("apply_plan_for_renewal", idempotency_key, params, change)

    def cancel_at_period_end(
        self, *, subscription_ref: str, idempotency_key: str
    ) -> GatewaySubscription:
        def change() -> GatewaySubscription:
            sub = self._sub(subscription_ref)
            self._apply_cancel(sub)
            return self._view(sub)

        params = {"subscription_ref": subscription_ref}
        return self._idempotent_call("cancel_at_period_end", idempotency_key, params, change)

    def resume(self, *, subscription_ref: str, idempotency_key: str) -> GatewaySubscription:
        def change() -> GatewaySubscription:
            sub = self._sub(subscription_ref)
            self._apply_resume(sub)
            return self._view(sub)

        params = {"subscription_ref": subscription_ref}
        return self._idempotent_call("resume", idempotency_key, params, change)

    def cancel_now(self, *, subscription_ref: str, idempotency_key: str) -> GatewaySubscription:
        def end() -> GatewaySubscription:
            sub = self._sub(subscription_ref)
            if sub.status.is_live:
                self._end_now(sub)
            return self._view(sub)

        params = {"subscription_ref": subscription_ref}
        return self._idempotent_call("cancel_now", idempotency_key, params, end)

    def refund_invoice(self, *, invoice_id: str, idempotency_key: str) -> Refund:
        def refund() -> Refund:
            record = self._invoices.get(invoice_id)
            if record is None:
                raise GatewayRejected("There is no such invoice to refund.")
            invoice = record.invoice
            if invoice.status is not InvoiceStatus.PAID or invoice.amount_paid.amount <= 0:
                raise GatewayRejected("This invoice has no payment to refund.")
            if record.refund is not None:
                # Stripe: `charge_already_refunded` for a second refund under another key.
                raise GatewayRejected("This invoice's payment has already been refunded.")
            record.refund = Refund(new_id("re"), invoice.id, invoice.amount_paid)
            customer = self._customers[invoice.customer_ref]
            self._emit(
                GatewayEventKind.IGNORED,
                "charge.refunded",
                customer_ref=customer.id,
                account_id=customer.account_id,
                subscription_ref=invoice.subscription_ref,
            )
            return record.refund

        params = {"invoice_id": invoice_id}
        return self._idempotent_call("refund_invoice", idempotency_key, params, refund)

    def use_customer_payment_method(
        self, *, subscription_ref: str, idempotency_key: str
    ) -> GatewaySubscription:
        # The sandbox keeps one default per customer and charges every renewal to it, so a
        # portal update already decides the next charge: nothing to move.
        with self._operation():
            self._port_call(
                "use_customer_payment_method",
                subscription_ref=subscription_ref,
                idempotency_key=idempotency_key,
            )
            return self._view(self._sub(subscription_ref))

    def get_subscription(self, subscription_ref: str) -> GatewaySubscription:
        with self._operation():
            self._port_call("get_subscription", subscription_ref=subscription_ref)
            return self._view(self._sub(subscription_ref))

    def list_subscriptions(self, customer_ref: str) -> Sequence[GatewaySubscription]:
        with self._operation():
            self._port_call("list_subscriptions", customer_ref=customer_ref)
            self._customer(customer_ref)
            return [self._view(sub) for sub in self._subs_of(customer_ref)]

    def list_invoices(
        self, *, customer_ref: str, limit: int, starting_after: str | None
    ) -> InvoicePage:
        with self._operation():
            self._port_call(
                "list_invoices",
                customer_ref=customer_ref,
                limit=limit,
                starting_after=starting_after,
            )
            if not 1 <= limit <= MAX_PAGE:
                raise GatewayRejected(f"limit must be between 1 and {MAX_PAGE}.")
            self._customer(customer_ref)
            mine = [r.invoice for r in self._invoices_of(customer_ref)]
            if starting_after is not None:
                ids = [inv.id for inv in mine]
                if starting_after not in ids:
                    raise InvoiceNotFound()  # Stripe: "No such invoice" for the cursor
                mine = mine[ids.index(starting_after) + 1 :]
            return InvoicePage(tuple(mine[:limit]), has_more=len(mine) > limit)

    def get_invoice(self, invoice_id: str) -> Invoice:
        with self._operation():
            self._port_call("get_invoice", invoice_id=invoice_id)
            return self._invoice(invoice_id).invoice

    # -- calls and idempotency ------------------------------------------------------------------

    def _port_call(self, name: str, **kwargs: object) -> None:
        """Log a port call, fail it if asked to, and catch up with the clock. Lock held."""
        self.calls.append(Call(name, dict(kwargs)))
        if self._fail_next_call:
            self._fail_next_call = False
            raise GatewayUnavailable()
        self._catch_up()

    def _idempotent_call(
        self, name: str, key: str, params: Mapping[str, object], action: Callable[[], T]
    ) -> T:
        """Stripe's idempotency: the first result for a key is replayed, with no second effect.

        Stripe replays declines too (the stored response is the error), refuses a key reused
        with other parameters, and stores nothing for a request that never reached it.
        """
        with self._operation():
            self._port_call(name, idempotency_key=key, **params)
            return self._idempotency.call(name, key, params, action)


def _implements_the_port(fake: FakeGateway) -> PaymentGateway:
    """Never called: mypy checks here that the fake keeps every signature of the port."""
    return fake
