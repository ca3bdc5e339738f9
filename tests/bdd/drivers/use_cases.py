"""The in-process driver: calls the application's use cases over the sandbox gateway."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from responseiq_billing.adapters.fake.clock import ControllableClock
from responseiq_billing.adapters.fake.gateway import FakeGateway
from responseiq_billing.application.ports import GatewayEvent, UnitOfWorkFactory
from responseiq_billing.domain.invoices import Invoice
from responseiq_billing.domain.plans import Catalog, Interval
from tests.bdd.drivers.in_process import InProcessDriver
from tests.wiring import GivenUnits, container_for


class UseCaseDriver(InProcessDriver[FakeGateway]):
    """Drives the container's use cases directly; the sandbox gateway's events are delivered to
    `ApplyGatewayEvent` after each action, as webhooks would arrive after the gateway answers."""

    def __init__(
        self, *, catalog: Catalog, clock: ControllableClock, uow: UnitOfWorkFactory
    ) -> None:
        # The sandbox gateway as the container builds it, on the scenario's catalog and clock.
        super().__init__(container_for(catalog=catalog, clock=clock, storage=GivenUnits(uow)))
        self._inbox: list[GatewayEvent] = []
        self.gateway.subscribe(self._inbox.append)

    # -- plumbing ---------------------------------------------------------------------------
    def _deliver(self) -> None:
        """Webhook delivery: every event the gateway emitted so far, in order."""
        while self._inbox:
            self._apply_event(self._inbox.pop(0))

    # -- the sandbox's hosted pages ---------------------------------------------------------
    def _pay_at_checkout(self, session_id: str, card: str) -> None:
        self.gateway.complete_checkout(session_id, card=card)

    def _save_card_at_setup(self, setup_id: str, card: str) -> None:
        self.gateway.complete_setup(setup_id, card=card)

    def _portal_session(self, session_id: str) -> tuple[str, str]:
        customer = self.gateway.portal_session_customer(session_id)
        return customer, self.gateway.portal_return_url(session_id)

    def _download_pdf(self, invoice: Invoice) -> bytes:
        # In process there is no web server to fetch `pdf_url` from; the sandbox renders
        # the same document its download page serves.
        return self.gateway.render_invoice_pdf(invoice.id)

    # -- time and the payment network -----------------------------------------------------
    def advance_to(self, moment: datetime) -> None:
        self._act(lambda: self.gateway.advance_to(moment))

    def decline_next_payment(self) -> None:
        self.gateway.decline_next_payment()

    # -- the customer portal (Manage Billing) ---------------------------------------------
    def _portal(self, account: str, action: Callable[[str], object]) -> None:
        """A change the account's customer makes on the sandbox's portal page."""
        customer = self._customer(account)
        self._act(lambda: action(customer))

    def portal_change_plan(self, account: str, plan: str, interval: str) -> None:
        self._portal(
            account,
            lambda customer: self.gateway.portal_change_plan(customer, plan, Interval(interval)),
        )

    def portal_cancel(self, account: str) -> None:
        self._portal(account, self.gateway.portal_cancel)

    def portal_resume(self, account: str) -> None:
        self._portal(account, self.gateway.portal_resume)

    def portal_update_payment_method(self, account: str, card: str) -> None:
        self._portal(
            account, lambda customer: self.gateway.portal_update_payment_method(customer, card)
        )
