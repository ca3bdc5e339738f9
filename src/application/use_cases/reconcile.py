"""Reconciliation: pull the gateway's truth for an account and repair ours."""

from __future__ import annotations

import attrs

from responseiq_billing.application.ports import (
    Clock,
    PaymentGateway,
    UnitOfWorkFactory,
)
from responseiq_billing.application.use_cases.recording import MAX_INVOICE_PAGE, _differs, _Recorder
from responseiq_billing.domain.errors import (
    CustomerNotFound,
)
from responseiq_billing.domain.subscription import (
    GatewaySubscription,
    Subscription,
)

# -- reconciliation ---------------------------------------------------------------------------


@attrs.frozen
class ReconcileReport:
    """What reconciling one account changed, in words an operator reads."""

    account_id: str
    changes: tuple[str, ...]


@attrs.frozen(kw_only=True)
class Reconcile:
    """Pull the gateway's truth for an account's subscriptions and invoices and repair ours.

    The repair goes through the same `sync` as events do, so it records the same domain events
    and never moves state backwards. Safe to run at any time, any number of times.
    """

    uow: UnitOfWorkFactory
    gateway: PaymentGateway
    clock: Clock
    invoice_pages: int = 10

    def accounts(self) -> list[str]:
        with self.uow() as uow:
            return list(uow.customers.accounts())

    def __call__(self, account_id: str) -> ReconcileReport:
        with self.uow() as uow:
            customer = uow.customers.get(account_id)
        if customer is None:
            raise CustomerNotFound()
        changes: list[str] = []
        recorder = _Recorder(uow=self.uow, gateway=self.gateway, clock=self.clock)
        # Oldest first: of two live subscriptions neither of which we hold, the one started
        # first is recorded first and kept (`OneSubscription`).
        for view in reversed(list(self.gateway.list_subscriptions(customer))):
            ref = view.subscription_ref
            with self.uow() as uow:
                held = uow.subscriptions.by_gateway_ref(ref)
            if held is None:
                change = f"subscription {ref}: added ({view.status.value})"
            elif _differs(held, view) and (held.synced_at is None or view.as_of >= held.synced_at):
                change = f"subscription {ref}: {_describe(held, view)}"
            else:
                continue
            _, admission = recorder.record_arrival(
                account_id, view, "reconcile", {"subscription": ref}
            )
            if admission.duplicate is not None:
                kept = admission.duplicate["kept"]
                change += f"; a second subscription beside {kept}: canceled now and refunded"
            elif admission.view is None:
                change += "; a second subscription, not paid yet: not recorded"
            changes.append(change)
        changes.extend(self._invoices(account_id, customer))
        return ReconcileReport(account_id, tuple(changes))

    def _invoices(self, account_id: str, customer: str) -> list[str]:
        changes: list[str] = []
        after: str | None = None
        for _ in range(self.invoice_pages):
            page = self.gateway.list_invoices(
                customer_ref=customer, limit=MAX_INVOICE_PAGE, starting_after=after
            )
            with self.uow() as uow:
                for invoice in page.items:
                    cached = uow.invoices.get(invoice.id)
                    if (cached is None or cached[1] != invoice) and uow.invoices.upsert(
                        account_id, invoice
                    ):
                        was = (
                            "added"
                            if cached is None
                            else f"{cached[1].status.value} -> {invoice.status.value}"
                        )
                        changes.append(f"invoice {invoice.id}: {was}")
                uow.commit()
            if not page.has_more or not page.items:
                break
            after = page.items[-1].id
        return changes


def _describe(held: Subscription, view: GatewaySubscription) -> str:
    parts = []
    if (held.plan_id, held.interval) != (view.plan_id, view.interval):
        parts.append(
            f"plan {held.plan_id}/{held.interval.value} -> {view.plan_id}/{view.interval.value}"
        )
    if held.status is not view.status:
        parts.append(f"status {held.status.value} -> {view.status.value}")
    if held.cancel_at_period_end != view.cancel_at_period_end:
        parts.append(
            f"cancel_at_period_end {held.cancel_at_period_end} -> {view.cancel_at_period_end}"
        )
    elif held.cancels_at != view.scheduled_end and view.scheduled_end is not None:
        parts.append(f"cancels_at -> {view.scheduled_end.isoformat()}")  # a date moved
    if held.pending_change != view.pending_change:
        parts.append("scheduled change updated")
    if held.current_period_end != view.current_period_end:
        parts.append(f"period end -> {view.current_period_end.isoformat()}")
    return ", ".join(parts) or "updated"
