"""The Stripe driver: the use cases over `StripeGateway`, talking HTTP to the local Stripe double.

Stripe's side of the story comes back as production hears it: every event the double emitted
is serialised, signed (`Stripe-Signature`, HMAC-SHA256 of `t.body`) and POSTed to the real
`POST /webhooks/stripe` route, which verifies it, redacts card details and stores it in the
inbox; then the inbox is drained by `ProcessInbox` (decoded by `StripeEventDecoder`, applied
by `ApplyGatewayEvent`), exactly as `billing worker` does. What a customer does on Stripe's
own pages (Checkout, the portal) and what the payment network does (the bank, time) are the
double's test controls; our state learns of them only by events.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

import httpx
from litestar import Litestar
from litestar.di import Provide
from litestar.testing import TestClient

from adapters.container import StripeEventDecoder
from adapters.fake.clock import ControllableClock
from adapters.http.webhooks import stripe_webhook
from adapters.stripe.gateway import StripeGateway
from adapters.stripe.webhooks import StripeWebhookVerifier
from application import commands as c
from application import use_cases as uc
from application.inbox import ProcessInbox, ReceiveGatewayEvent
from application.ports import UnitOfWorkFactory
from domain.plans import Catalog
from domain.subscription import Subscription
from tests.bdd.drivers.base import (
    Card,
    EntitlementFacts,
    InvoiceFacts,
    PortalFacts,
    QuoteFacts,
    Rejected,
    SubscriptionFacts,
)
from tests.bdd.drivers.use_cases import (
    BILLING_PAGE,
    INVOICE_PAGE_SIZE,
    UseCaseDriver,
    _card,
    _entitlements,
    _invoice,
    _quote,
    refusals,
)
from tests.stripe_double import StripeDouble

T = TypeVar("T")

WEBHOOK_SECRET = "whsec_bdd_stripe_driver"


class StripeDriver:
    """The BillingDriver over the Stripe adapter and the double; `close()` stops the double."""

    def __init__(
        self, *, catalog: Catalog, clock: ControllableClock, uow: UnitOfWorkFactory
    ) -> None:
        self.catalog, self.clock, self.uow = catalog, clock, uow
        self.double = StripeDouble(clock).start()
        self.double.seed_catalog(catalog)
        self.gateway = StripeGateway(self.double.client(), catalog, clock)
        self._delivered = 0  # events of the double's log already delivered
        g, k = self.gateway, clock
        self._start_checkout = uc.StartCheckout(uow=uow, gateway=g, clock=k, catalog=catalog)
        self._complete_checkout = uc.CompleteCheckout(uow=uow, gateway=g, clock=k)
        self._open_portal = uc.OpenPortal(uow=uow, gateway=g, clock=k)
        self._preview = uc.PreviewPlanChange(uow=uow, gateway=g, clock=k, catalog=catalog)
        self._change_plan = uc.ChangePlan(uow=uow, gateway=g, clock=k, catalog=catalog)
        self._cancel_pending = uc.CancelPendingChange(uow=uow, gateway=g, clock=k)
        self._cancel = uc.CancelSubscription(uow=uow, gateway=g, clock=k)
        self._resume = uc.ResumeSubscription(uow=uow, gateway=g, clock=k)
        self._start_pm_update = uc.StartPaymentMethodUpdate(uow=uow, gateway=g, clock=k)
        self._complete_pm_update = uc.CompletePaymentMethodUpdate(uow=uow, gateway=g, clock=k)
        self._list_invoices = uc.ListInvoices(uow=uow, gateway=g)
        self._invoice_pdf = uc.GetInvoicePdf(uow=uow, gateway=g)
        self._get_subscription = uc.GetSubscription(uow=uow, clock=k, catalog=catalog)
        self._entitlements = uc.GetEntitlements(uow=uow, clock=k, catalog=catalog)
        # The webhook route as production mounts it, with what it needs from the container.
        receive = ReceiveGatewayEvent(uow=uow, clock=k)
        verifier = StripeWebhookVerifier([WEBHOOK_SECRET])
        self._webhook: TestClient[Litestar] = TestClient(
            Litestar(
                route_handlers=[stripe_webhook],
                dependencies={
                    "receive_gateway_event": Provide(lambda: receive, sync_to_thread=False),
                    "webhook_verifier": Provide(lambda: verifier, sync_to_thread=False),
                },
            )
        ).__enter__()
        self._worker = ProcessInbox(
            uow=uow,
            gateway=g,
            clock=k,
            decoders={"stripe": StripeEventDecoder(g)},
            apply=uc.ApplyGatewayEvent(uow=uow, gateway=g, clock=k),
            worker="bdd-stripe-driver",
        )

    def close(self) -> None:
        self._webhook.__exit__(None, None, None)
        self.double.stop()

    # -- plumbing ---------------------------------------------------------------------------
    def _deliver(self) -> None:
        """Webhook delivery of every event emitted since the last one, then a worker's drain."""
        events = self.double.events_since(self._delivered)
        self._delivered += len(events)
        for event in events:
            body = json.dumps(event).encode("utf-8")
            # Stripe stamps a delivery with the wall-clock time it sends it at.
            stamp = int(time.time())
            mac = hmac.new(
                WEBHOOK_SECRET.encode(), f"{stamp}.".encode() + body, hashlib.sha256
            ).hexdigest()
            answer = self._webhook.post(
                "/webhooks/stripe",
                content=body,
                headers={"Stripe-Signature": f"t={stamp},v1={mac}"},
            )
            assert answer.status_code == 200, answer.text
        while (report := self._worker.run_once(limit=50)).claimed:
            # A failure would leave the event for a later retry: here it is a broken step.
            assert report.failed == 0, f"an event failed to apply: {report}"

    def _act(self, action: Callable[[], T]) -> T:
        try:
            with refusals():
                return action()
        finally:
            with refusals():
                self._deliver()

    def _customer(self, account: str) -> str:
        with self.uow() as uow:
            customer = uow.customers.get(account)
        if customer is None:
            raise Rejected("customer.not_found")
        return customer

    def _subscription_ref(self, account: str) -> str:
        with self.uow() as uow:
            sub = uow.subscriptions.for_account(account)
        if sub is None:
            raise Rejected("subscription.not_found")
        return sub.subscription_ref

    # -- time and the payment network -----------------------------------------------------
    def now(self) -> datetime:
        return self.clock.now()

    def advance_to(self, moment: datetime) -> None:
        self._act(lambda: self.double.advance_to(moment))

    def decline_next_payment(self) -> None:
        self.double.decline_next_payment()

    # -- starting and changing a subscription -----------------------------------------------
    def subscribe(self, account: str, plan: str, interval: str, card: str) -> SubscriptionFacts:
        def run() -> SubscriptionFacts:
            session = self._start_checkout(
                c.StartCheckout(
                    account_id=account,
                    plan=plan,
                    interval=interval,
                    success_url=f"{BILLING_PAGE}?checkout={{CHECKOUT_SESSION_ID}}",
                    cancel_url=BILLING_PAGE,
                )
            )
            self.double.complete_checkout(session.id, card=card)
            sub = self._complete_checkout(c.CompleteCheckout(account, session.id))
            if sub is None:
                raise Rejected("payment.declined", "The checkout did not complete.")
            return _facts(sub)

        return self._act(run)

    def preview(self, account: str, plan: str, interval: str) -> QuoteFacts:
        return self._act(
            lambda: _quote(self._preview(c.PreviewPlanChange(account, plan, interval)))
        )

    def change_plan(
        self, account: str, plan: str, interval: str, *, quote_id: str | None = None
    ) -> SubscriptionFacts:
        cmd = c.ChangePlan(account, plan, interval, quote_id=quote_id)
        return self._act(lambda: _facts(self._change_plan(cmd)))

    def cancel_scheduled_change(self, account: str) -> SubscriptionFacts:
        cmd = c.CancelPendingChange(account)
        return self._act(lambda: _facts(self._cancel_pending(cmd)))

    def cancel(self, account: str) -> SubscriptionFacts:
        return self._act(lambda: _facts(self._cancel(c.CancelSubscription(account))))

    def resume(self, account: str) -> SubscriptionFacts:
        return self._act(lambda: _facts(self._resume(c.ResumeSubscription(account))))

    def update_payment_method(self, account: str, card: str) -> Card | None:
        def run() -> Card | None:
            setup = self._start_pm_update(
                c.StartPaymentMethodUpdate(
                    account, success_url=BILLING_PAGE, cancel_url=BILLING_PAGE
                )
            )
            self.double.complete_checkout(setup.id, card=card)
            sub = self._complete_pm_update(c.CompletePaymentMethodUpdate(account, setup.id))
            return _card(sub.payment_method) if sub is not None else None

        return self._act(run)

    # -- the customer portal (Manage Billing) ---------------------------------------------
    def open_billing_portal(self, account: str) -> PortalFacts:
        def run() -> PortalFacts:
            session = self._open_portal(c.OpenPortal(account, return_url=BILLING_PAGE))
            opened = self.double.portal_session(session.id)
            with self.uow() as uow:
                owner = uow.customers.account_for(str(opened["customer"]))
            return PortalFacts(url=session.url, account=owner, returns_to=opened["return_url"])

        return self._act(run)

    def _portal(self, account: str, action: Callable[[str], Any]) -> None:
        """A change made on Stripe's portal page: only Stripe's state moves, then events flow."""
        ref = self._subscription_ref(account)
        self._act(lambda: action(ref))

    def portal_change_plan(self, account: str, plan: str, interval: str) -> None:
        price = self.catalog.price(plan, interval)
        price_id = self.gateway.prices.price_id(price.plan_id, price.interval)
        assert price_id is not None, f"the double has no price for {plan} {interval}"

        def change(ref: str) -> None:
            if not self.double.portal_change_price(ref, price_id):
                raise Rejected("payment.declined", "The portal showed the bank's decline.")

        self._portal(account, change)

    def portal_cancel(self, account: str) -> None:
        self._portal(account, self.double.portal_cancel)

    def portal_resume(self, account: str) -> None:
        self._portal(account, self.double.portal_resume)

    def portal_update_payment_method(self, account: str, card: str) -> None:
        customer = self._customer(account)
        self._act(lambda: self.double.portal_update_payment_method(customer, card))

    # -- reading ---------------------------------------------------------------------------
    def subscription(self, account: str) -> SubscriptionFacts:
        with refusals():
            return _facts(self._get_subscription(account).subscription)

    def entitlements(self, account: str) -> EntitlementFacts:
        with refusals():
            return _entitlements(self._entitlements(account))

    def invoices(self, account: str) -> list[InvoiceFacts]:
        out: list[InvoiceFacts] = []
        after: str | None = None
        with refusals():
            while True:
                page = self._list_invoices(
                    c.ListInvoices(account, limit=INVOICE_PAGE_SIZE, starting_after=after)
                )
                out.extend(_invoice(i) for i in page.items)
                if not page.has_more or not page.items:
                    return out
                after = page.items[-1].id

    def invoice_pdf(self, account: str, invoice_id: str) -> bytes:
        """The document at the invoice's `invoice_pdf`, downloaded as a browser would."""
        with refusals():
            invoice = self._invoice_pdf(c.GetInvoicePdf(account, invoice_id))
        assert invoice.pdf_url is not None
        answer = httpx.get(invoice.pdf_url, follow_redirects=True, timeout=10)
        answer.raise_for_status()
        assert answer.headers["content-type"] == "application/pdf", answer.headers
        return answer.content


_facts: Callable[[Subscription], SubscriptionFacts] = UseCaseDriver._facts
