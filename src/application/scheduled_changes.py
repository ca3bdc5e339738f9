"""Downgrades the core keeps for a gateway that cannot schedule them (`ScheduledChanges.CORE`).

The pending change lives on our `Subscription` (the domain already models one): entitlements
keep the current plan until `effective_at`, withdrawing it before the worker acts costs no
gateway call, and `ApplyDueChanges` (a worker step) switches the gateway's price shortly before
the renewal with `apply_plan_for_renewal`, so the renewal bills the new price and nothing is
billed a day earlier. `CoreKeptChanges` wraps such a gateway so that every view it returns
carries the pending change the core holds: a gateway view without one must not erase it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

import attrs

from responseiq_billing.application.ports import (
    CheckoutOutcome,
    CheckoutSession,
    CheckoutStatus,
    PaymentGateway,
    PortalFlow,
    PortalSession,
    Refund,
    ScheduledChanges,
    SetupSession,
    UiMode,
    UnitOfWorkFactory,
)
from responseiq_billing.domain.invoices import Invoice, InvoicePage
from responseiq_billing.domain.money import Money
from responseiq_billing.domain.plans import PlanPrice
from responseiq_billing.domain.subscription import (
    GatewaySubscription,
    PaymentMethodSummary,
    PendingChange,
    Subscription,
)

# How long before the renewal the worker switches the gateway's price. Long enough for a
# worker that ticks every few seconds to make it with retries; short, because from then on
# the gateway shows the new price (the core still grants the old plan until the renewal).
APPLY_LEAD = timedelta(hours=1)


def held_view(
    sub: Subscription, *, at: datetime, pending: PendingChange | None
) -> GatewaySubscription:
    """Our subscription as a view with `pending` as its pending change (no gateway call)."""
    as_of = max(at, sub.synced_at) if sub.synced_at is not None else at
    return sub.as_view(as_of=as_of, pending_change=pending)


def with_kept_change(held: Subscription | None, view: GatewaySubscription) -> GatewaySubscription:
    """The gateway's view plus the pending change the core keeps, while it still applies.

    It applies while the view is the same billing period, live, not set to cancel, and on
    either the held plan (not applied at the gateway yet) or the pending plan (applied for the
    renewal, which has not happened: the period is still the held plan's). A renewal, a
    cancellation or any other plan (an upgrade) ends it.
    """
    if held is None or held.pending_change is None or view.pending_change is not None:
        return view
    change = held.pending_change
    if (
        view.subscription_ref != held.subscription_ref
        or view.cancel_at_period_end
        or not view.status.is_changeable
        or view.current_period_start >= change.effective_at
        or view.current_period_end != change.effective_at
    ):
        return view
    if (view.plan_id, view.interval) == (held.plan_id, held.interval):
        return attrs.evolve(view, pending_change=change)
    if (view.plan_id, view.interval) == (change.plan_id, change.interval):
        return attrs.evolve(
            view, plan_id=held.plan_id, interval=held.interval, pending_change=change
        )
    return view


class CoreKeptChanges:
    """A CORE-scheduling gateway whose views carry the pending change the core keeps.

    Every port call goes to the gateway unchanged; subscription views coming back are merged
    with the held pending change (`with_kept_change`), read in a short transaction of their own.
    """

    def __init__(self, gateway: PaymentGateway, uow: UnitOfWorkFactory) -> None:
        self.inner = gateway
        self.scheduled_changes = gateway.scheduled_changes
        self.invoice_links_expire = gateway.invoice_links_expire
        self._uow = uow

    def _merged(self, view: GatewaySubscription) -> GatewaySubscription:
        with self._uow() as uow:
            held = uow.subscriptions.by_gateway_ref(view.subscription_ref)
        return with_kept_change(held, view)

    def ensure_customer(self, account_id: str, *, idempotency_key: str) -> str:
        return self.inner.ensure_customer(account_id, idempotency_key=idempotency_key)

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
        return self.inner.start_checkout(
            customer_ref=customer_ref,
            account_id=account_id,
            price=price,
            success_url=success_url,
            cancel_url=cancel_url,
            ui_mode=ui_mode,
            idempotency_key=idempotency_key,
        )

    def get_checkout(self, checkout_id: str) -> CheckoutOutcome:
        outcome = self.inner.get_checkout(checkout_id)
        if outcome.subscription is None:
            return outcome
        return attrs.evolve(outcome, subscription=self._merged(outcome.subscription))

    def expire_checkout(self, checkout_id: str, *, idempotency_key: str) -> CheckoutStatus:
        return self.inner.expire_checkout(checkout_id, idempotency_key=idempotency_key)

    def open_portal(
        self,
        *,
        customer_ref: str,
        return_url: str,
        flow: PortalFlow | None,
        subscription_ref: str | None,
        idempotency_key: str,
    ) -> PortalSession:
        return self.inner.open_portal(
            customer_ref=customer_ref,
            return_url=return_url,
            flow=flow,
            subscription_ref=subscription_ref,
            idempotency_key=idempotency_key,
        )

    def start_payment_method_setup(
        self, *, customer_ref: str, success_url: str, cancel_url: str, idempotency_key: str
    ) -> SetupSession:
        return self.inner.start_payment_method_setup(
            customer_ref=customer_ref,
            success_url=success_url,
            cancel_url=cancel_url,
            idempotency_key=idempotency_key,
        )

    def complete_payment_method_setup(
        self, setup_id: str, *, customer_ref: str, idempotency_key: str
    ) -> PaymentMethodSummary | None:
        return self.inner.complete_payment_method_setup(
            setup_id, customer_ref=customer_ref, idempotency_key=idempotency_key
        )

    def use_customer_payment_method(
        self, *, subscription_ref: str, idempotency_key: str
    ) -> GatewaySubscription:
        return self._merged(
            self.inner.use_customer_payment_method(
                subscription_ref=subscription_ref, idempotency_key=idempotency_key
            )
        )

    def preview_plan_change(
        self, *, subscription_ref: str, target: PlanPrice, proration_at: datetime
    ) -> Money:
        return self.inner.preview_plan_change(
            subscription_ref=subscription_ref, target=target, proration_at=proration_at
        )

    def upgrade(
        self,
        *,
        subscription_ref: str,
        target: PlanPrice,
        proration_at: datetime,
        idempotency_key: str,
    ) -> GatewaySubscription:
        return self._merged(
            self.inner.upgrade(
                subscription_ref=subscription_ref,
                target=target,
                proration_at=proration_at,
                idempotency_key=idempotency_key,
            )
        )

    def schedule_downgrade(
        self, *, subscription_ref: str, target: PlanPrice, idempotency_key: str
    ) -> GatewaySubscription:
        return self.inner.schedule_downgrade(
            subscription_ref=subscription_ref, target=target, idempotency_key=idempotency_key
        )

    def withdraw_scheduled_change(
        self, *, subscription_ref: str, idempotency_key: str
    ) -> GatewaySubscription:
        return self.inner.withdraw_scheduled_change(
            subscription_ref=subscription_ref, idempotency_key=idempotency_key
        )

    def apply_plan_for_renewal(
        self, *, subscription_ref: str, target: PlanPrice, idempotency_key: str
    ) -> GatewaySubscription:
        return self._merged(
            self.inner.apply_plan_for_renewal(
                subscription_ref=subscription_ref, target=target, idempotency_key=idempotency_key
            )
        )

    def cancel_at_period_end(
        self, *, subscription_ref: str, idempotency_key: str
    ) -> GatewaySubscription:
        return self._merged(
            self.inner.cancel_at_period_end(
                subscription_ref=subscription_ref, idempotency_key=idempotency_key
            )
        )

    def resume(self, *, subscription_ref: str, idempotency_key: str) -> GatewaySubscription:
        return self._merged(
            self.inner.resume(subscription_ref=subscription_ref, idempotency_key=idempotency_key)
        )

    def cancel_now(self, *, subscription_ref: str, idempotency_key: str) -> GatewaySubscription:
        return self._merged(
            self.inner.cancel_now(
                subscription_ref=subscription_ref, idempotency_key=idempotency_key
            )
        )

    def refund_invoice(self, *, invoice_id: str, idempotency_key: str) -> Refund:
        return self.inner.refund_invoice(invoice_id=invoice_id, idempotency_key=idempotency_key)

    def get_subscription(self, subscription_ref: str) -> GatewaySubscription:
        return self._merged(self.inner.get_subscription(subscription_ref))

    def list_subscriptions(self, customer_ref: str) -> Sequence[GatewaySubscription]:
        return [self._merged(v) for v in self.inner.list_subscriptions(customer_ref)]

    def list_invoices(
        self, *, customer_ref: str, limit: int, starting_after: str | None
    ) -> InvoicePage:
        return self.inner.list_invoices(
            customer_ref=customer_ref, limit=limit, starting_after=starting_after
        )

    def get_invoice(self, invoice_id: str) -> Invoice:
        return self.inner.get_invoice(invoice_id)


def core_keeps_changes(gateway: PaymentGateway, uow: UnitOfWorkFactory) -> PaymentGateway:
    """The gateway the use cases get: wrapped when the core keeps its downgrades."""
    if gateway.scheduled_changes is ScheduledChanges.CORE:
        return CoreKeptChanges(gateway, uow)
    return gateway


def _implements_port(gateway: CoreKeptChanges) -> PaymentGateway:
    """Never called: mypy checks here that the wrapper keeps every signature of the port."""
    return gateway
