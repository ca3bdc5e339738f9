"""Recording what the gateway answers: retries, settling same-second ties, audit, one paying subscription."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import TypeVar

import attrs

from responseiq_billing.application.ports import (
    AuditEntry,
    Clock,
    PaymentGateway,
    Refund,
    UnitOfWork,
    UnitOfWorkFactory,
)
from responseiq_billing.domain.errors import (
    BillingError,
    StaleVersion,
    SubscriptionNotFound,
)
from responseiq_billing.domain.invoices import (
    BillingReason,
    InvoiceStatus,
)
from responseiq_billing.domain.plans import Interval
from responseiq_billing.domain.subscription import (
    GatewaySubscription,
    Status,
    Subscription,
)

# A stale write is retried this many times: the gateway's answer is the truth, so recording
# it again on top of a concurrent update is always safe (`Subscription.sync` ignores older views).
RECORD_ATTEMPTS = 3
T = TypeVar("T")
MAX_INVOICE_PAGE = 100


def retry_stale(attempt: Callable[[], T]) -> T:
    """Run `attempt` again on fresh state when its write met a concurrent one (`StaleVersion`).

    Safe for writes that record the gateway's truth: `Subscription.sync` ignores older views,
    so recording again on top of whatever won the race never moves state backwards.
    """
    for remaining in range(RECORD_ATTEMPTS - 1, -1, -1):
        try:
            return attempt()
        except StaleVersion:
            if remaining == 0:
                raise
    raise AssertionError("unreachable")


def now_from(clock: Clock) -> datetime:
    """Whole seconds: gateways (Stripe's `proration_date`) count time in whole seconds."""
    return clock.now().replace(microsecond=0)


def live_subscription(uow: UnitOfWork, account_id: str) -> Subscription:
    sub = uow.subscriptions.for_account(account_id)
    if sub is None or not sub.status.is_live:
        raise SubscriptionNotFound()
    return sub


def audit(
    uow: UnitOfWork,
    account_id: str,
    action: str,
    inputs: Mapping[str, str],
    outcome: str,
    at: datetime,
    subscription: Subscription | None = None,
) -> None:
    """One entry for the action, then one per domain event the action recorded."""
    uow.audit.append(AuditEntry(account_id, action, dict(inputs), outcome, at))
    if subscription is not None:
        audit_events(uow, account_id, subscription, inputs)


def audit_events(
    uow: UnitOfWork, account_id: str, subscription: Subscription, inputs: Mapping[str, str]
) -> None:
    for event in subscription.collect_events():
        uow.audit.append(
            AuditEntry(account_id, f"event.{event.name}", dict(inputs), "recorded", event.at)
        )


def upsert_view(
    uow: UnitOfWork, account_id: str, view: GatewaySubscription
) -> tuple[Subscription, bool]:
    """Insert or sync a subscription from the gateway's view. Returns it and whether it changed."""
    sub, changed, _ = _upsert(uow, account_id, view)
    return sub, changed


def _upsert(
    uow: UnitOfWork, account_id: str, view: GatewaySubscription
) -> tuple[Subscription, bool, bool]:
    """`upsert_view`, also saying whether it inserted (one read decides both)."""
    sub = uow.subscriptions.by_gateway_ref(view.subscription_ref)
    if sub is None:
        sub = Subscription.from_gateway(account_id, view)
        uow.subscriptions.add(sub)
        return sub, True, True
    if not sub.sync(view):
        return sub, False, False
    uow.subscriptions.save(sub)
    return sub, True, False


@attrs.frozen
class Settled:
    """A gateway view to record, and the version of our copy it was judged against.

    Views are stamped in whole seconds, so two writes of one second (two tabs, the portal and
    a tab, a double click) carry the same stamp and their order is unknown; whichever thread
    records last would win. A view that ties with ours and differs is replaced by a fresh read
    of the gateway, taken after our copy was: it is at least as new as every write behind that
    copy. The write must then find our copy unchanged (`recheck`); if another recording landed
    meanwhile, the attempt is stale and is settled again.
    """

    view: GatewaySubscription
    judged_version: int | None  # None: we held no copy

    def recheck(self, uow: UnitOfWork) -> None:
        """Inside the writing transaction: raise `StaleVersion` if our copy moved since."""
        held = uow.subscriptions.by_gateway_ref(self.view.subscription_ref)
        if (None if held is None else held.version) != self.judged_version:
            raise StaleVersion()


def settle(
    uow_factory: UnitOfWorkFactory,
    gateway: PaymentGateway,
    view: GatewaySubscription | None = None,
    *,
    subscription_ref: str | None = None,
) -> Settled:
    """The view to record: `view`, or the gateway's current one when `view` is None or ties
    with ours and differs. Reads in its own short transaction, then calls the gateway with none
    open; the write rechecks (`Settled.recheck`)."""
    ref = view.subscription_ref if view is not None else subscription_ref
    assert ref is not None, "a view or a subscription reference"
    with uow_factory() as uow:
        held = uow.subscriptions.by_gateway_ref(ref)
    judged = None if held is None else held.version
    if view is None or (held is not None and held.synced_at == view.as_of and _differs(held, view)):
        view = gateway.get_subscription(ref)
    return Settled(view, judged)


@attrs.frozen(kw_only=True)
class _Recorder:
    """Records a gateway answer for an account, retrying a stale write on fresh state."""

    uow: UnitOfWorkFactory
    gateway: PaymentGateway
    clock: Clock

    def record(
        self,
        account_id: str,
        view: GatewaySubscription,
        action: str,
        inputs: Mapping[str, str],
        also: Callable[[UnitOfWork], None] | None = None,
    ) -> Subscription:
        def attempt() -> Subscription:
            # Settled again on every attempt: a stale write means someone recorded meanwhile.
            settled = settle(self.uow, self.gateway, view)
            with self.uow() as uow:
                settled.recheck(uow)
                sub, _ = upsert_view(uow, account_id, settled.view)
                if also is not None:
                    also(uow)
                audit(uow, account_id, action, inputs, "ok", now_from(self.clock), sub)
                uow.commit()
                return sub

        return retry_stale(attempt)

    def record_arrival(
        self,
        account_id: str,
        view: GatewaySubscription,
        action: str,
        inputs: Mapping[str, str],
        also: Callable[[UnitOfWork], None] | None = None,
    ) -> tuple[Subscription | None, Admission]:
        """Record a subscription the gateway tells us of, which may be new to us (a checkout's
        return, reconciliation): at most one per account stays live (`OneSubscription`)."""
        one = OneSubscription(uow=self.uow, gateway=self.gateway)
        admitted: list[Admission] = []

        def attempt() -> tuple[Subscription | None, Admission]:
            settled = settle(self.uow, self.gateway, view)
            admission = one.admit(
                account_id, settled.view, before=admitted[-1] if admitted else None
            )
            admitted.append(admission)
            now = now_from(self.clock)
            with self.uow() as uow:
                settled.recheck(uow)
                sub, _ = one.record(uow, account_id, admission, now)
                if also is not None:
                    also(uow)
                outcome = "duplicate" if admission.is_duplicate else "ok"
                audit(uow, account_id, action, inputs, outcome, now, sub)
                uow.commit()
                return sub, admission

        return retry_stale(attempt)

    def failed(
        self, account_id: str, action: str, inputs: Mapping[str, str], error: BillingError
    ) -> None:
        """A refused or failed action is audited too, in its own transaction."""
        with self.uow() as uow:
            audit(uow, account_id, action, inputs, error.code, now_from(self.clock))
            uow.commit()


# -- one paying subscription per account ------------------------------------------------------


@attrs.frozen
class Admission:
    """What to record of a gateway view, decided by `OneSubscription.admit`.

    `view` is the view to record (None: nothing yet); `earlier` a fresh view of the account's
    held subscription to record first; `duplicate` the audit inputs of a second subscription
    that was ended and refunded at the gateway.
    """

    view: GatewaySubscription | None
    earlier: GatewaySubscription | None = None
    duplicate: Mapping[str, str] | None = None

    @property
    def is_duplicate(self) -> bool:
        return self.view is None or self.duplicate is not None


@attrs.frozen(kw_only=True)
class OneSubscription:
    """An account pays for one subscription, even when the gateway lets a second one start.

    A checkout paid before a newer one could expire it (the customer was quicker than our
    call, or the call failed) starts a second subscription at the gateway, which the database
    refuses to hold beside the first (one live subscription per account). Without this its
    events would fail forever while it renewed and charged every month.

    The subscription kept is the one we already hold, the first that was recorded: the
    customer already has its features, invoices and any change made to it, and "first
    recorded" is decided by the same unique index whichever path (webhook, return from
    checkout, reconcile) brings a subscription in. The newcomer is canceled at once (not at
    its period end) and its first invoice refunded, with idempotency keys derived from its
    reference, so every path that meets it does so once. It is then recorded as ended, and
    the event that brought it is applied with the outcome `duplicate`.
    """

    uow: UnitOfWorkFactory
    gateway: PaymentGateway

    def admit(
        self, account_id: str, view: GatewaySubscription, *, before: Admission | None = None
    ) -> Admission:
        """Settle a second live subscription at the gateway; calls it with no transaction open.

        `before` is this path's admission of the attempt before, if its write met a
        concurrent one: a subscription it ended is still noted, though it is no longer new.
        """
        admission = self._admit(account_id, view)
        settled = before.duplicate if before is not None else None
        if (
            settled is not None
            and admission.duplicate is None
            and admission.view is not None
            and admission.view.subscription_ref == settled["subscription"]
        ):
            return attrs.evolve(admission, duplicate=settled)
        return admission

    def _admit(self, account_id: str, view: GatewaySubscription) -> Admission:
        if not view.status.is_live:
            return Admission(view)
        with self.uow() as uow:
            known = uow.subscriptions.by_gateway_ref(view.subscription_ref)
            # A subscription we hold already is admitted: the account's is read only if not
            held = uow.subscriptions.for_account(account_id) if known is None else None
        if (
            known is not None
            or held is None
            or not held.status.is_live
            or held.subscription_ref == view.subscription_ref
        ):
            return Admission(view)
        if view.status is Status.INCOMPLETE:
            # Not paid (yet): nothing to refund, and Stripe lets an unpaid one expire by
            # itself. If it is paid, its next event is settled here.
            return Admission(None)
        current = self.gateway.get_subscription(held.subscription_ref)
        if not current.status.is_live:
            # The one we hold has ended at the gateway and we have not heard yet: the
            # newcomer is the account's only subscription.
            return Admission(view, earlier=current)
        ref = view.subscription_ref
        ended = self.gateway.cancel_now(
            subscription_ref=ref, idempotency_key=f"duplicate:{ref}:cancel"
        )
        inputs = {"subscription": ref, "kept": held.subscription_ref}
        refund = self._refund_first_invoice(view)
        if refund is not None:
            inputs |= {"invoice": refund.invoice_id, "refund": refund.id}
            inputs["amount"] = str(refund.amount)
        return Admission(ended, duplicate=inputs)

    def _refund_first_invoice(self, view: GatewaySubscription) -> Refund | None:
        page = self.gateway.list_invoices(
            customer_ref=view.customer_ref, limit=MAX_INVOICE_PAGE, starting_after=None
        )
        first = next(
            (
                invoice
                for invoice in page.items
                if invoice.subscription_ref == view.subscription_ref
                and invoice.billing_reason is BillingReason.SUBSCRIPTION_CREATE
            ),
            None,
        )
        if first is None or first.status is not InvoiceStatus.PAID or not first.amount_paid.amount:
            return None
        return self.gateway.refund_invoice(
            invoice_id=first.id, idempotency_key=f"duplicate:{view.subscription_ref}:refund"
        )

    @staticmethod
    def record(
        uow: UnitOfWork, account_id: str, admission: Admission, at: datetime
    ) -> tuple[Subscription | None, bool]:
        """Write what `admit` decided; returns the recorded subscription and if it changed."""
        if admission.earlier is not None:
            held, _ = upsert_view(uow, account_id, admission.earlier)
            audit_events(uow, account_id, held, {"subscription": held.subscription_ref})
        if admission.view is None:
            return None, False
        ref = admission.view.subscription_ref
        sub, changed, inserted = _upsert(uow, account_id, admission.view)
        if admission.duplicate is None:
            return sub, changed
        if inserted:
            sub.collect_events()  # it never was the account's subscription: nothing started
        elif _duplicate_noted(uow, account_id, ref):
            return sub, changed  # another path settled it too (same keys) and said so
        elif not changed:
            # Its ended view was recorded meanwhile (the deletion event of our own cancel):
            # write the row anyway, so that two paths noting it at once conflict and the
            # retry finds the note.
            uow.subscriptions.save(sub)
        uow.audit.append(
            AuditEntry(
                account_id, "subscription.duplicate_canceled", dict(admission.duplicate), "ok", at
            )
        )
        return sub, changed


def _duplicate_noted(uow: UnitOfWork, account_id: str, subscription_ref: str) -> bool:
    return any(
        entry.action == "subscription.duplicate_canceled"
        and entry.inputs.get("subscription") == subscription_ref
        for entry in uow.audit.for_account(account_id)
    )


def _price_inputs(plan: str, interval: Interval, **more: str | None) -> dict[str, str]:
    out = {"plan": plan, "interval": interval.value}
    out.update({k: v for k, v in more.items() if v is not None})
    return out


def _differs(sub: Subscription, view: GatewaySubscription) -> bool:
    return (
        sub.plan_id,
        sub.interval,
        sub.status,
        sub.cancel_at_period_end,
        sub.cancels_at,
        sub.pending_change,
    ) != (
        view.plan_id,
        view.interval,
        view.status,
        view.cancel_at_period_end,
        view.scheduled_end,
        view.pending_change,
    ) or sub.current_period_end != view.current_period_end
