"""What the in-process drivers share: the use cases from the container, and their results as facts.

`UseCaseDriver` (the sandbox gateway) and `StripeDriver` (`StripeGateway` and the Stripe
double) call the same use cases the same way; they differ only in the gateway, in how its
events reach us, and in how the customer acts on the gateway's own pages. Those are the hooks.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Generic, TypeVar

from responseiq_billing.adapters.container import Container
from responseiq_billing.adapters.fake.clock import ControllableClock
from responseiq_billing.application import commands
from responseiq_billing.application.ports import PaymentGateway, UnitOfWorkFactory
from responseiq_billing.domain.errors import BillingError
from responseiq_billing.domain.invoices import Invoice
from responseiq_billing.domain.plans import Catalog
from responseiq_billing.domain.quotes import Quote
from responseiq_billing.domain.rules import ChangeTiming
from responseiq_billing.domain.subscription import Access, PaymentMethodSummary, Subscription
from tests.bdd.drivers.base import (
    BILLING_PAGE,
    INVOICE_PAGE_SIZE,
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
G = TypeVar("G", bound=PaymentGateway)


@contextmanager
def refusals() -> Iterator[None]:
    """Every refusal of the core leaves the driver as `Rejected(code)`."""
    try:
        yield
    except BillingError as error:
        raise Rejected(error.code, error.message) from error


class InProcessDriver(ABC, Generic[G]):
    """The BillingDriver steps that call the container's use cases directly over `gateway`;
    after each action the gateway's events are delivered (`_deliver`), as webhooks would
    arrive after the gateway answers."""

    def __init__(self, container: Container) -> None:
        """`container`: `build_container(settings)` with the scenario's catalog, clock, store and
        gateway adapter put in; the gateway here is the port the use cases get from it."""
        self.container = container
        self.catalog: Catalog = container.catalog()
        self.clock: ControllableClock = container.clock()
        self.gateway: G = container.gateway()
        self.uow: UnitOfWorkFactory = container.uow()
        self._start_checkout = container.start_checkout()
        self._complete_checkout = container.complete_checkout()
        self._open_portal = container.open_portal()
        self._preview = container.preview_plan_change()
        self._change_plan = container.change_plan()
        self._cancel_pending = container.cancel_pending_change()
        self._cancel = container.cancel_subscription()
        self._resume = container.resume_subscription()
        self._start_pm_update = container.start_payment_method_update()
        self._complete_pm_update = container.complete_payment_method_update()
        self._list_invoices = container.list_invoices()
        self._invoice_pdf = container.get_invoice_pdf()
        self._get_subscription = container.get_subscription()
        self._entitlements = container.get_entitlements()
        self._apply_event = container.apply_gateway_event()

    # -- what each driver does its own way -------------------------------------------------
    @abstractmethod
    def _deliver(self) -> None:
        """Every event the gateway emitted since the last delivery reaches our state."""

    @abstractmethod
    def _pay_at_checkout(self, session_id: str, card: str) -> None:
        """The customer pays with `card` on the gateway's checkout page."""

    @abstractmethod
    def _save_card_at_setup(self, setup_id: str, card: str) -> None:
        """The customer saves `card` on the gateway's payment-method setup page."""

    @abstractmethod
    def _portal_session(self, session_id: str) -> tuple[str, str | None]:
        """The gateway's portal session: (its customer, where it returns to; None when the
        portal has no way back of its own)."""

    @abstractmethod
    def _download_pdf(self, invoice: Invoice) -> bytes:
        """The invoice's PDF document as the customer gets it."""

    # -- plumbing ---------------------------------------------------------------------------
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

    # -- time -------------------------------------------------------------------------------
    def now(self) -> datetime:
        return self.clock.now()

    # -- starting and changing a subscription -----------------------------------------------
    def subscribe(self, account: str, plan: str, interval: str, card: str) -> SubscriptionFacts:
        def run() -> SubscriptionFacts:
            session = self._start_checkout(
                commands.StartCheckout(
                    account_id=account,
                    plan=plan,
                    interval=interval,
                    success_url=f"{BILLING_PAGE}?checkout={{CHECKOUT_SESSION_ID}}",
                    cancel_url=BILLING_PAGE,
                )
            )
            self._pay_at_checkout(session.id, card)
            sub = self._complete_checkout(commands.CompleteCheckout(account, session.id))
            if sub is None:
                raise Rejected("payment.declined", "The checkout did not complete.")
            return subscription_facts(sub)

        return self._act(run)

    def preview(self, account: str, plan: str, interval: str) -> QuoteFacts:
        return self._act(
            lambda: quote_facts(self._preview(commands.PreviewPlanChange(account, plan, interval)))
        )

    def change_plan(
        self, account: str, plan: str, interval: str, *, quote_id: str | None = None
    ) -> SubscriptionFacts:
        cmd = commands.ChangePlan(account, plan, interval, quote_id=quote_id)
        return self._act(lambda: subscription_facts(self._change_plan(cmd)))

    def cancel_scheduled_change(self, account: str) -> SubscriptionFacts:
        cmd = commands.CancelPendingChange(account)
        return self._act(lambda: subscription_facts(self._cancel_pending(cmd)))

    def cancel(self, account: str) -> SubscriptionFacts:
        cmd = commands.CancelSubscription(account)
        return self._act(lambda: subscription_facts(self._cancel(cmd)))

    def resume(self, account: str) -> SubscriptionFacts:
        cmd = commands.ResumeSubscription(account)
        return self._act(lambda: subscription_facts(self._resume(cmd)))

    def update_payment_method(self, account: str, card: str) -> Card | None:
        def run() -> Card | None:
            setup = self._start_pm_update(
                commands.StartPaymentMethodUpdate(
                    account, success_url=BILLING_PAGE, cancel_url=BILLING_PAGE
                )
            )
            self._save_card_at_setup(setup.id, card)
            sub = self._complete_pm_update(commands.CompletePaymentMethodUpdate(account, setup.id))
            return card_facts(sub.payment_method) if sub is not None else None

        return self._act(run)

    # -- the customer portal (Manage Billing) ---------------------------------------------
    def open_billing_portal(self, account: str) -> PortalFacts:
        def run() -> PortalFacts:
            session = self._open_portal(commands.OpenPortal(account, return_url=BILLING_PAGE))
            customer, back = self._portal_session(session.id)
            with self.uow() as uow:
                owner = uow.customers.account_for(customer)
            return PortalFacts(url=session.url, account=owner, returns_to=back)

        return self._act(run)

    # -- reading ---------------------------------------------------------------------------
    def subscription(self, account: str) -> SubscriptionFacts:
        with refusals():
            return subscription_facts(self._get_subscription(account).subscription)

    def entitlements(self, account: str) -> EntitlementFacts:
        with refusals():
            return entitlement_facts(self._entitlements(account))

    def invoices(self, account: str) -> list[InvoiceFacts]:
        out: list[InvoiceFacts] = []
        after: str | None = None
        with refusals():
            while True:
                page = self._list_invoices(
                    commands.ListInvoices(account, limit=INVOICE_PAGE_SIZE, starting_after=after)
                )
                out.extend(invoice_facts(i) for i in page.items)
                if not page.has_more or not page.items:
                    return out
                after = page.items[-1].id

    def invoice_pdf(self, account: str, invoice_id: str) -> bytes:
        with refusals():
            invoice = self._invoice_pdf(commands.GetInvoicePdf(account, invoice_id))
            return self._download_pdf(invoice)


# -- the core's objects as business facts ----------------------------------------------------


def subscription_facts(sub: Subscription) -> SubscriptionFacts:
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
        card=card_facts(sub.payment_method),
    )


def card_facts(summary: PaymentMethodSummary | None) -> Card | None:
    return Card(summary.brand, summary.last4) if summary is not None else None


def quote_facts(quote: Quote) -> QuoteFacts:
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


def entitlement_facts(access: Access) -> EntitlementFacts:
    return EntitlementFacts(
        plan=access.plan_id,
        seats=access.features.seats,
        monthly_responses=access.features.monthly_responses,
        flags=frozenset(access.features.flags),
        access_until=access.access_until,
    )


def invoice_facts(invoice: Invoice) -> InvoiceFacts:
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
