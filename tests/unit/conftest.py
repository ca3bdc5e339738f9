"""A billing harness for unit tests: the composition root over the fake gateway and an in-memory
store (`build_container` with overrides)."""

from __future__ import annotations

from datetime import UTC, datetime

import attrs
import pytest

from responseiq_billing.adapters.container import Container
from responseiq_billing.adapters.fake.clock import ControllableClock
from responseiq_billing.adapters.fake.gateway import FakeGateway
from responseiq_billing.adapters.fake.repositories import InMemoryStore
from responseiq_billing.application import commands, use_cases
from responseiq_billing.application.inbox import ProcessInbox, ReceiveGatewayEvent
from responseiq_billing.application.ports import AuditEntry, GatewayEvent, UnitOfWork
from responseiq_billing.domain.invoices import Invoice
from responseiq_billing.domain.plans import Catalog
from responseiq_billing.domain.subscription import GatewaySubscription, Subscription
from tests.wiring import GivenUnits, container_for

# The harness clock starts on March 1, 09:00 UTC (tests/conftest.py); a monthly cycle started
# then renews on April 1, 09:00, and March 16, 09:00 is 16 of its 31 days before the end.
MAR_1 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
MAR_16 = datetime(2026, 3, 16, 9, 0, tzinfo=UTC)
APR_1 = datetime(2026, 4, 1, 9, 0, tzinfo=UTC)
MAY_1 = datetime(2026, 5, 1, 9, 0, tzinfo=UTC)


@attrs.define
class Billing:
    """The use cases over one store and one fake gateway, plus what tests look at."""

    store: InMemoryStore
    gateway: FakeGateway
    clock: ControllableClock
    catalog: Catalog
    applied: list[tuple[GatewayEvent, use_cases.ApplyOutcome]] = attrs.field(factory=list)

    _wired: tuple[Container, FakeGateway, ControllableClock, Catalog] | None = attrs.field(
        init=False, default=None
    )

    @property
    def container(self) -> Container:
        """The composition root over this harness: its catalog, clock and fake gateway, and
        its `uow` as the storage (a subclass may count the units it hands out). Built again
        when a test puts another gateway in (`billing.gateway = ...`)."""
        wired = self._wired
        if wired is None or wired[1:] != (self.gateway, self.clock, self.catalog):
            container = container_for(
                catalog=self.catalog,
                clock=self.clock,
                gateway=self.gateway,
                storage=GivenUnits(self.uow),
            )
            self._wired = wired = (container, self.gateway, self.clock, self.catalog)
        return wired[0]

    def uow(self) -> UnitOfWork:
        return self.store.unit_of_work()

    # the use cases, from the composition root
    @property
    def start_checkout(self) -> use_cases.StartCheckout:
        return self.container.start_checkout()

    @property
    def complete_checkout(self) -> use_cases.CompleteCheckout:
        return self.container.complete_checkout()

    @property
    def open_portal(self) -> use_cases.OpenPortal:
        return self.container.open_portal()

    @property
    def preview(self) -> use_cases.PreviewPlanChange:
        return self.container.preview_plan_change()

    @property
    def change_plan(self) -> use_cases.ChangePlan:
        return self.container.change_plan()

    @property
    def cancel_pending_change(self) -> use_cases.CancelPendingChange:
        return self.container.cancel_pending_change()

    @property
    def cancel(self) -> use_cases.CancelSubscription:
        return self.container.cancel_subscription()

    @property
    def resume(self) -> use_cases.ResumeSubscription:
        return self.container.resume_subscription()

    @property
    def start_payment_method_update(self) -> use_cases.StartPaymentMethodUpdate:
        return self.container.start_payment_method_update()

    @property
    def complete_payment_method_update(self) -> use_cases.CompletePaymentMethodUpdate:
        return self.container.complete_payment_method_update()

    @property
    def list_invoices(self) -> use_cases.ListInvoices:
        return self.container.list_invoices()

    @property
    def invoice_pdf(self) -> use_cases.GetInvoicePdf:
        return self.container.get_invoice_pdf()

    @property
    def apply_event(self) -> use_cases.ApplyGatewayEvent:
        return self.container.apply_gateway_event()

    @property
    def entitlements(self) -> use_cases.GetEntitlements:
        return self.container.get_entitlements()

    @property
    def reconcile(self) -> use_cases.Reconcile:
        return self.container.reconcile()

    @property
    def receive_event(self) -> ReceiveGatewayEvent:
        """Webhook ingestion: stores a delivery in the inbox."""
        return self.container.receive_gateway_event()

    def inbox_worker(self, name: str) -> ProcessInbox:
        """A worker's pass over the inbox, as `billing worker` runs it, named `name`."""
        worker: ProcessInbox = self.container.process_inbox(worker=name)
        return worker

    # helpers
    def deliver_webhooks(self) -> None:
        """Apply every gateway event as it is emitted, as the webhook endpoint would."""

        def deliver(event: GatewayEvent) -> None:
            self.applied.append((event, self.apply_event(event)))

        self.gateway.subscribe(deliver)

    def subscribe(
        self, account: str, plan: str = "growth", interval: str = "month"
    ) -> Subscription:
        """Checkout, pay on the hosted page with a test card, come back: a live subscription."""
        session = self.start_checkout(
            commands.StartCheckout(
                account, plan, interval, "https://app/ok/{CHECKOUT_SESSION_ID}", "https://app/no"
            )
        )
        self.gateway.complete_checkout(session.id)
        sub = self.complete_checkout(commands.CompleteCheckout(account, session.id))
        assert sub is not None
        return sub

    def stored(self, account: str) -> Subscription:
        with self.store.unit_of_work() as uow:
            sub = uow.subscriptions.for_account(account)
        assert sub is not None
        return sub

    def audit(self, account: str) -> list[AuditEntry]:
        with self.store.unit_of_work() as uow:
            return list(uow.audit.for_account(account))

    def actions(self, account: str) -> list[tuple[str, str]]:
        return [(e.action, e.outcome) for e in self.audit(account)]

    def customer(self, account: str) -> str:
        with self.store.unit_of_work() as uow:
            customer = uow.customers.get(account)
        assert customer is not None
        return customer

    def gateway_view(self, account: str) -> GatewaySubscription:
        view = self.gateway.customer_subscription(self.customer(account))
        assert view is not None
        return view

    def gateway_invoices(self, account: str) -> list[Invoice]:
        return self.gateway.customer_invoices(self.customer(account))


@pytest.fixture
def gateway(catalog: Catalog, clock: ControllableClock) -> FakeGateway:
    return FakeGateway(catalog, clock, public_url="https://sandbox.test")


@pytest.fixture
def billing(
    store: InMemoryStore, gateway: FakeGateway, clock: ControllableClock, catalog: Catalog
) -> Billing:
    return Billing(store, gateway, clock, catalog)
