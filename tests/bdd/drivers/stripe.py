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
from typing import Any

import httpx
from litestar import Litestar
from litestar.di import Provide
from litestar.testing import TestClient

from responseiq_billing.adapters.config import GatewayKind
from responseiq_billing.adapters.fake.clock import ControllableClock
from responseiq_billing.adapters.stripe.gateway import StripeGateway
from responseiq_billing.adapters.stripe.route import stripe_webhook
from responseiq_billing.application.inbox import ProcessInbox
from responseiq_billing.application.ports import UnitOfWorkFactory
from responseiq_billing.domain.invoices import Invoice
from responseiq_billing.domain.plans import Catalog
from tests.bdd.drivers.base import Rejected
from tests.bdd.drivers.in_process import InProcessDriver
from tests.stripe_double import StripeDouble
from tests.stripe_double.server import TEST_KEY
from tests.wiring import GivenUnits, container_for, sandbox_settings

WEBHOOK_SECRET = "whsec_bdd_stripe_driver"


class StripeDriver(InProcessDriver[StripeGateway]):
    """The BillingDriver over the Stripe adapter and the double; `close()` stops the double."""

    def __init__(
        self, *, catalog: Catalog, clock: ControllableClock, uow: UnitOfWorkFactory
    ) -> None:
        self.double = StripeDouble(clock).start()
        self.double.seed_catalog(catalog)
        # The container in Stripe mode, its adapter talking to the double (no retries).
        settings = sandbox_settings(
            gateway=GatewayKind.STRIPE,
            stripe_api_key=TEST_KEY,
            stripe_api_base=self.double.url,
            stripe_webhook_secrets=(WEBHOOK_SECRET,),
        )
        gateway = StripeGateway(self.double.client(), catalog, clock)
        super().__init__(
            container_for(
                settings, catalog=catalog, clock=clock, gateway=gateway, storage=GivenUnits(uow)
            )
        )
        self._delivered = 0  # events of the double's log already delivered
        # The webhook route as production mounts it, with what it needs from the container.
        deliveries = self.container.stripe_deliveries()
        self._webhook: TestClient[Litestar] = TestClient(
            Litestar(
                route_handlers=[stripe_webhook],
                dependencies={
                    "stripe_deliveries": Provide(lambda: deliveries, sync_to_thread=False),
                },
            )
        ).__enter__()
        self._worker: ProcessInbox = self.container.process_inbox(worker="bdd-stripe-driver")

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

    def _subscription_ref(self, account: str) -> str:
        with self.uow() as uow:
            sub = uow.subscriptions.for_account(account)
        if sub is None:
            raise Rejected("subscription.not_found")
        return sub.subscription_ref

    # -- Stripe's hosted pages ----------------------------------------------------------------
    def _pay_at_checkout(self, session_id: str, card: str) -> None:
        self.double.complete_checkout(session_id, card=card)

    def _save_card_at_setup(self, setup_id: str, card: str) -> None:
        self.double.complete_checkout(setup_id, card=card)

    def _portal_session(self, session_id: str) -> tuple[str, str]:
        opened = self.double.portal_session(session_id)
        return str(opened["customer"]), opened["return_url"]

    def _download_pdf(self, invoice: Invoice) -> bytes:
        """The document at the invoice's `invoice_pdf`, downloaded as a browser would."""
        assert invoice.pdf_url is not None
        answer = httpx.get(invoice.pdf_url, follow_redirects=True, timeout=10)
        answer.raise_for_status()
        assert answer.headers["content-type"] == "application/pdf", answer.headers
        return answer.content

    # -- time and the payment network -----------------------------------------------------
    def advance_to(self, moment: datetime) -> None:
        self._act(lambda: self.double.advance_to(moment))

    def decline_next_payment(self) -> None:
        self.double.decline_next_payment()

    # -- the customer portal (Manage Billing) ---------------------------------------------
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
