"""The Paddle driver: the use cases over `PaddleGateway`, talking HTTP to the local Paddle double.

Paddle cannot schedule a plan change, so the use cases get the gateway as production wires it,
through `core_keeps_changes`: the core keeps a downgrade, and the worker's `ApplyDueChanges`
switches the price at Paddle (billing nothing) in the hour before the renewal. Time passes the
way a running worker lives through it (`tests.paddle_double.worker_steps`).

Paddle's side of the story comes back as production hears it: every notification the double
recorded is signed (`Paddle-Signature: ts=…;h1=…`, HMAC-SHA256 of `ts:body`) and POSTed to the
real `POST /webhooks/paddle` route, which verifies, redacts and stores it; then the inbox is
drained by `ProcessInbox` (decoded by `PaddleEventDecoder`), as `billing worker` does. What a
customer does on Paddle's pages (checkout, the card page, the customer portal) and what the
payment network does (the bank, time) are the double's test controls.

Paddle's customer portal changes the card, cancels and undoes a scheduled cancellation (and
lists invoices); it does not change plans, so `portal_change_plan` refuses to pretend it does
(the scenarios tagged @portal_plan_change are deselected on Paddle: `NOT_RUN` in
`tests/bdd/conftest.py`). A Paddle portal session has no return URL.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import datetime

import httpx
from litestar import Litestar
from litestar.di import Provide
from litestar.testing import TestClient

from responseiq_billing.adapters.config import GatewayKind
from responseiq_billing.adapters.fake.clock import ControllableClock
from responseiq_billing.adapters.paddle.gateway import PaddleGateway
from responseiq_billing.adapters.paddle.route import paddle_webhook
from responseiq_billing.application.inbox import ProcessInbox
from responseiq_billing.application.ports import PaymentGateway, UnitOfWorkFactory
from responseiq_billing.application.renewal_changes import ApplyDueChanges
from responseiq_billing.domain.invoices import Invoice
from responseiq_billing.domain.plans import Catalog
from tests.bdd.drivers.base import Rejected
from tests.bdd.drivers.in_process import InProcessDriver
from tests.paddle_double import WEBHOOK_SECRET, PaddleDouble
from tests.paddle_double.server import TEST_KEY
from tests.paddle_double.worker_steps import advance_with_worker
from tests.wiring import GivenUnits, container_for, sandbox_settings


class PaddleDriver(InProcessDriver[PaymentGateway]):
    """The BillingDriver over the Paddle adapter and the double; `close()` stops the double."""

    def __init__(
        self, *, catalog: Catalog, clock: ControllableClock, uow: UnitOfWorkFactory
    ) -> None:
        self.double = PaddleDouble(clock).start()
        self.double.seed_catalog(catalog)
        # The container in Paddle mode, its adapter talking to the double (no retries); the use
        # cases get it wrapped, as the core keeps Paddle's downgrades.
        settings = sandbox_settings(
            gateway=GatewayKind.PADDLE,
            paddle_api_key=TEST_KEY,
            paddle_api_base=self.double.url,
            paddle_webhook_secrets=(WEBHOOK_SECRET,),
        )
        self.paddle = PaddleGateway(self.double.client(), catalog, clock)
        super().__init__(
            container_for(
                settings, catalog=catalog, clock=clock, gateway=self.paddle, storage=GivenUnits(uow)
            )
        )
        self._delivered = 0  # notifications of the double's log already delivered
        # The webhook route as production mounts it, with what it needs from the container.
        deliveries = self.container.paddle_deliveries()
        self._webhook: TestClient[Litestar] = TestClient(
            Litestar(
                route_handlers=[paddle_webhook],
                dependencies={
                    "paddle_deliveries": Provide(lambda: deliveries, sync_to_thread=False),
                },
            )
        ).__enter__()
        self._worker: ProcessInbox = self.container.process_inbox(worker="bdd-paddle-driver")
        self._apply_due_changes: ApplyDueChanges = self.container.apply_due_changes()

    def close(self) -> None:
        self._webhook.__exit__(None, None, None)
        self.double.stop()

    # -- plumbing ---------------------------------------------------------------------------
    def _deliver(self) -> None:
        """Delivery of every notification recorded since the last one, then a worker's drain."""
        events = self.double.events[self._delivered :]
        self._delivered += len(events)
        for event in events:
            body = json.dumps(event)
            # Paddle signs a delivery with the wall-clock time it sends it at.
            answer = self._webhook.post(
                "/webhooks/paddle",
                content=body.encode("utf-8"),
                headers={"Paddle-Signature": PaddleDouble.signed(body, int(time.time()))},
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

    # -- Paddle's hosted pages ----------------------------------------------------------------
    def _pay_at_checkout(self, session_id: str, card: str) -> None:
        self.double.pay(session_id, card)

    def _save_card_at_setup(self, setup_id: str, card: str) -> None:
        # Paddle's card page is the checkout of a zero-amount payment-method-change transaction.
        self.double.pay(setup_id, card)

    def _portal_session(self, session_id: str) -> tuple[str, str | None]:
        # A Paddle portal session has no return URL: the customer closes the portal's tab.
        return str(self.double.portal_session(session_id)["customer_id"]), None

    def _download_pdf(self, invoice: Invoice) -> bytes:
        """The document at the invoice's (short-lived) PDF link, downloaded as a browser would."""
        assert invoice.pdf_url is not None
        answer = httpx.get(invoice.pdf_url, follow_redirects=True, timeout=10)
        answer.raise_for_status()
        assert answer.headers["content-type"] == "application/pdf", answer.headers
        return answer.content

    # -- time and the payment network -----------------------------------------------------
    def advance_to(self, moment: datetime) -> None:
        """Time passes as a running worker lives through it: it switches each kept downgrade's
        price at Paddle in the hour before the renewal, then the renewal bills the new price."""

        def run() -> None:
            advance_with_worker(
                now=self.clock.now,
                target=moment,
                uow=self.uow,
                move_clock=self.double.advance_to,
                deliver=self._deliver,
                apply_due_changes=self._apply_due_changes,
            )

        self._act(run)

    def decline_next_payment(self) -> None:
        self.double.decline_next_payment()

    # -- the customer portal (Manage Billing) ---------------------------------------------
    def _portal(self, account: str, action: Callable[[str], object]) -> None:
        """A change made on Paddle's portal: only Paddle's state moves, then notifications flow."""
        ref = self._subscription_ref(account)
        self._act(lambda: action(ref))

    def portal_change_plan(self, account: str, plan: str, interval: str) -> None:
        raise AssertionError(
            "Paddle's customer portal does not change plans: a scenario that changes the plan "
            "in the portal does not run on Paddle (the customer changes plan in ResponseIQ)"
        )

    def portal_cancel(self, account: str) -> None:
        self._portal(account, self.double.portal_cancel)

    def portal_resume(self, account: str) -> None:
        self._portal(account, self.double.portal_remove_scheduled_cancel)

    def portal_update_payment_method(self, account: str, card: str) -> None:
        self._portal(account, lambda ref: self.double.portal_update_payment_method(ref, card))
