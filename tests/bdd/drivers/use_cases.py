"""The in-process driver: calls the application's use cases over the sandbox gateway."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import TypeVar

from adapters.fake.clock import ControllableClock
from adapters.fake.gateway import FakeGateway
from application import commands as c
from application import use_cases as uc
from application.ports import GatewayEvent, UnitOfWorkFactory
from domain.errors import BillingError
from domain.invoices import Invoice
from domain.plans import Catalog, Interval
from domain.quotes import Quote
from domain.rules import ChangeTiming
from domain.subscription import Access, PaymentMethodSummary, Subscription
from tests.bdd.drivers.base import (
    Card,
    EntitlementFacts,
    InvoiceFacts,
    PortalFacts,
    QuoteFacts,
    Rejected,
    ScheduledChange,
    SubscriptionFacts,
)

T = TypeVar("T")

APP = "https://app.responseiq.test"
BILLING_PAGE = f"{APP}/settings/billing"
INVOICE_PAGE_SIZE = 100


@contextmanager
def refusals() -> Iterator[None]:
    """Every refusal of the core leaves the driver as `Rejected(code)`."""
    try:
        yield
    except BillingError as error:
        raise Rejected(error.code, error.message) from error


class UseCaseDriver:
    """Drives `application.use_cases` directly; the sandbox gateway's events are delivered to
    `ApplyGatewayEvent` after each action, as webhooks would arrive after the gateway answers."""

    def __init__(
        self,
        *,
        catalog: Catalog,
        clock: ControllableClock,
        gateway: FakeGateway,
        uow: UnitOfWorkFactory,
    ) -> None:
        self.catalog, self.clock, self.gateway, self.uow = catalog, clock, gateway, uow
        self._inbox: list[GatewayEvent] = []
        gateway.subscribe(self._inbox.append)
        g, k = gateway, clock
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
        self._list_invoices = uc.ListInvoices(uow=uow, gateway=gateway)
        self._invoice_pdf = uc.GetInvoicePdf(uow=uow, gateway=gateway)
        self._get_subscription = uc.GetSubscription(uow=uow, clock=clock, catalog=catalog)
        self._entitlements = uc.GetEntitlements(uow=uow, clock=clock, catalog=catalog)
        self._apply_event = uc.ApplyGatewayEvent(uow=uow, gateway=g, clock=k)

    # -- plumbing ---------------------------------------------------------------------------
    def _deliver(self) -> None:
        """Webhook delivery: every event the gateway emitted so far, in order."""
        while self._inbox:
            self._apply_event(self._inbox.pop(0))

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

    # -- time and the payment network -----------------------------------------------------
    def now(self) -> datetime:
        return self.clock.now()

    def advance_to(self, moment: datetime) -> None:
        self._act(lambda: self.gateway.advance_to(moment))

    def decline_next_payment(self) -> None:
        self.gateway.decline_next_payment()

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
            self.gateway.complete_checkout(session.id, card=card)
            sub = self._complete_checkout(c.CompleteCheckout(account, session.id))
            if sub is None:
                raise Rejected("payment.declined", "The checkout did not complete.")
            return self._facts(sub)

        return self._act(run)

    def preview(self, account: str, plan: str, interval: str) -> QuoteFacts:
        return self._act(
            lambda: _quote(self._preview(c.PreviewPlanChange(account, plan, interval)))
        )

    def change_plan(
        self, account: str, plan: str, interval: str, *, quote_id: str | None = None
    ) -> SubscriptionFacts:
        cmd = c.ChangePlan(account, plan, interval, quote_id=quote_id)
        return self._act(lambda: self._facts(self._change_plan(cmd)))

    def cancel_scheduled_change(self, account: str) -> SubscriptionFacts:
        cmd = c.CancelPendingChange(account)
        return self._act(lambda: self._facts(self._cancel_pending(cmd)))

    def cancel(self, account: str) -> SubscriptionFacts:
        return self._act(lambda: self._facts(self._cancel(c.CancelSubscription(account))))

    def resume(self, account: str) -> SubscriptionFacts:
        return self._act(lambda: self._facts(self._resume(c.ResumeSubscription(account))))

    def update_payment_method(self, account: str, card: str) -> Card | None:
        def run() -> Card | None:
            setup = self._start_pm_update(
                c.StartPaymentMethodUpdate(
                    account, success_url=BILLING_PAGE, cancel_url=BILLING_PAGE
                )
            )
            self.gateway.complete_setup(setup.id, card=card)
            sub = self._complete_pm_update(c.CompletePaymentMethodUpdate(account, setup.id))
            return _card(sub.payment_method) if sub is not None else None

        return self._act(run)

    # -- the customer portal (Manage Billing) ---------------------------------------------
    def open_billing_portal(self, account: str) -> PortalFacts:
        def run() -> PortalFacts:
            session = self._open_portal(c.OpenPortal(account, return_url=BILLING_PAGE))
            customer = self.gateway.portal_session_customer(session.id)
            with self.uow() as uow:
                owner = uow.customers.account_for(customer)
            back = self.gateway.portal_return_url(session.id)
            return PortalFacts(url=session.url, account=owner, returns_to=back)

        return self._act(run)

    def portal_change_plan(self, account: str, plan: str, interval: str) -> None:
        customer = self._customer(account)
        self._act(lambda: self.gateway.portal_change_plan(customer, plan, Interval(interval)))

    def portal_cancel(self, account: str) -> None:
        customer = self._customer(account)
        self._act(lambda: self.gateway.portal_cancel(customer))

    def portal_resume(self, account: str) -> None:
        customer = self._customer(account)
        self._act(lambda: self.gateway.portal_resume(customer))

    def portal_update_payment_method(self, account: str, card: str) -> None:
        customer = self._customer(account)
        self._act(lambda: self.gateway.portal_update_payment_method(customer, card))

    # -- reading ---------------------------------------------------------------------------
    def subscription(self, account: str) -> SubscriptionFacts:
        with refusals():
            return self._facts(self._get_subscription(account).subscription)

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
        with refusals():
            invoice = self._invoice_pdf(c.GetInvoicePdf(account, invoice_id))
            # In process there is no web server to fetch `pdf_url` from; the sandbox renders
            # the same document its download page serves.
            return self.gateway.render_invoice_pdf(invoice.id)

    # -- translation -------------------------------------------------------------------------
    @staticmethod
    def _facts(sub: Subscription) -> SubscriptionFacts:
        change = sub.pending_change
        return SubscriptionFacts(
            plan=sub.plan_id,
            interval=sub.interval.value,
            status=sub.status.value,
            period_start=sub.current_period_start,
            period_end=sub.current_period_end,
            cancel_at_period_end=sub.cancel_at_period_end,
            scheduled_change=(
                ScheduledChange(change.plan_id, change.interval.value, change.effective_at)
                if change is not None
                else None
            ),
            card=_card(sub.payment_method),
        )


def _card(summary: PaymentMethodSummary | None) -> Card | None:
    return Card(summary.brand, summary.last4) if summary is not None else None


def _quote(quote: Quote) -> QuoteFacts:
    return QuoteFacts(
        id=quote.id,
        plan=quote.to_plan,
        interval=quote.to_interval.value,
        takes_effect="now" if quote.timing is ChangeTiming.IMMEDIATE else "end_of_period",
        amount_due_now=quote.amount_due_now.amount,
        currency=quote.amount_due_now.currency,
        effective_at=quote.effective_at,
        expires_at=quote.expires_at,
    )


def _entitlements(access: Access) -> EntitlementFacts:
    return EntitlementFacts(
        plan=access.plan_id,
        seats=access.features.seats,
        monthly_responses=access.features.monthly_responses,
        flags=frozenset(access.features.flags),
        access_until=access.access_until,
    )


def _invoice(invoice: Invoice) -> InvoiceFacts:
    return InvoiceFacts(
        id=invoice.id,
        created=invoice.created,
        amount_due=invoice.amount_due.amount,
        amount_paid=invoice.amount_paid.amount,
        currency=invoice.amount_due.currency,
        status=invoice.status.value,
        reason=invoice.billing_reason.value,
        has_pdf=invoice.pdf_url is not None,
    )
