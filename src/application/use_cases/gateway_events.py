"""Events from the gateway: how changes made anywhere else reach our state."""

from __future__ import annotations

import enum
from collections.abc import Callable

import attrs

from responseiq_billing.application.ports import (
    CheckoutStatus,
    Clock,
    GatewayEvent,
    GatewayEventKind,
    PaymentGateway,
    ScheduledChanges,
    UnitOfWork,
    UnitOfWorkFactory,
)
from responseiq_billing.application.scheduled_changes import with_kept_change
from responseiq_billing.application.use_cases.checkout import _link
from responseiq_billing.application.use_cases.recording import (
    Admission,
    OneSubscription,
    Settled,
    audit,
    now_from,
    retry_stale,
    settle,
)
from responseiq_billing.domain.subscription import (
    PaymentMethodSummary,
    Subscription,
)

# -- events from the gateway --------------------------------------------------------------------


Within = Callable[[UnitOfWork, "ApplyOutcome"], None]


class ApplyOutcome(enum.Enum):
    APPLIED = "applied"
    STALE = "stale"  # older than the state we hold: recorded, not applied
    IGNORED = "ignored"  # a type the core does not act on
    UNKNOWN_ACCOUNT = "unknown_account"  # about a customer this service did not create
    # A second live subscription for the account: ended and refunded at the gateway and
    # recorded as ended, or not paid yet and so not recorded (`OneSubscription`).
    DUPLICATE = "duplicate"


@attrs.frozen(kw_only=True)
class ApplyGatewayEvent:
    """How changes made in the Stripe portal (or anywhere else) reach our state.

    Idempotent: applying an event twice leaves the same state. An event older than the state
    we hold is skipped; one from the same second as that state is resolved by re-reading the
    object from the gateway, since the order of same-second events is unknown.
    """

    uow: UnitOfWorkFactory
    gateway: PaymentGateway
    clock: Clock

    def __call__(self, event: GatewayEvent, *, within: Within | None = None) -> ApplyOutcome:
        """Apply `event`; `within` runs inside the applying transaction (the inbox marks it there)."""
        if event.kind is GatewayEventKind.IGNORED:
            return self._finish(ApplyOutcome.IGNORED, within)
        with self.uow() as uow:
            account_id = self._account(uow, event)
        if account_id is None:
            return self._finish(ApplyOutcome.UNKNOWN_ACCOUNT, within)
        admitted: list[Admission] = []  # this event's admissions, one per attempt
        return retry_stale(lambda: self._apply(account_id, event, within, admitted))

    def skip_stale(self, event: GatewayEvent, *, within: Within | None = None) -> ApplyOutcome:
        """An event older than what was already applied to its object: recorded, not applied."""
        return self._finish(ApplyOutcome.STALE, within)

    def _finish(self, outcome: ApplyOutcome, within: Within | None) -> ApplyOutcome:
        if within is not None:
            with self.uow() as uow:
                within(uow, outcome)
                uow.commit()
        return outcome

    @staticmethod
    def _account(uow: UnitOfWork, event: GatewayEvent) -> str | None:
        if event.customer_ref is not None:
            known = uow.customers.account_for(event.customer_ref)
            if known is not None:
                return known
        if event.subscription_ref is not None:
            sub = uow.subscriptions.by_gateway_ref(event.subscription_ref)
            if sub is not None:
                return sub.account_id
        return event.account_id

    def _view_for(self, event: GatewayEvent) -> Settled | None:
        """The view to apply, re-read from the gateway when the event alone cannot be trusted.

        Reads in its own short transaction and calls the gateway with none open.
        """
        view = event.subscription
        if view is None:
            if event.subscription_ref is None:
                return None
            return settle(self.uow, self.gateway, subscription_ref=event.subscription_ref)
        if event.kind is GatewayEventKind.SCHEDULE_CHANGED:
            return settle(self.uow, self.gateway, subscription_ref=view.subscription_ref)
        if self.gateway.scheduled_changes is ScheduledChanges.CORE:
            # The gateway knows nothing of the downgrade the core keeps: keep it in the view.
            with self.uow() as uow:
                held = uow.subscriptions.by_gateway_ref(view.subscription_ref)
            view = with_kept_change(held, view)
        return settle(self.uow, self.gateway, view)

    def _current_view(
        self, account_id: str, *, follow_customer_default: bool = False, key: str = ""
    ) -> Settled | None:
        with self.uow() as uow:
            sub = uow.subscriptions.for_account(account_id)
        if sub is None or not sub.status.is_live:
            return None
        if follow_customer_default:
            # A new customer default (set in the portal) must be what the next invoice charges.
            view = self.gateway.use_customer_payment_method(
                subscription_ref=sub.subscription_ref, idempotency_key=key
            )
            return settle(self.uow, self.gateway, view)
        return settle(self.uow, self.gateway, subscription_ref=sub.subscription_ref)

    def _apply(
        self,
        account_id: str,
        event: GatewayEvent,
        within: Within | None,
        admitted: list[Admission],
    ) -> ApplyOutcome:
        # Gateway reads happen first, with no transaction open (no lock across the network).
        settled: Settled | None = None
        summary: PaymentMethodSummary | None = None
        if event.kind in _SUBSCRIPTION_KINDS:
            settled = self._view_for(event)
        elif event.kind is GatewayEventKind.PAYMENT_METHOD_CHANGED:
            # Which card pays next is the gateway's to say: an attached card need not be the
            # default, and a late event about an old card must not bring it back. Re-read.
            settled = self._current_view(
                account_id,
                follow_customer_default=event.default_payment_method_changed,
                key=f"event:{event.id}:payment-method",
            )
        elif event.kind is GatewayEventKind.SETUP_COMPLETED and event.checkout_id:
            with self.uow() as uow:
                customer = uow.customers.get(account_id)
            if customer is not None:
                summary = self.gateway.complete_payment_method_setup(
                    event.checkout_id,
                    customer_ref=customer,
                    idempotency_key=f"setup-complete:{customer}:{event.checkout_id}",
                )
        one = OneSubscription(uow=self.uow, gateway=self.gateway)
        admission = None
        if settled is not None:
            before = admitted[-1] if admitted else None
            admission = one.admit(account_id, settled.view, before=before)
            admitted.append(admission)
        now = now_from(self.clock)
        inputs = {"event_id": event.id, "type": event.gateway_type}
        action = f"gateway_event.{event.kind.value}"
        with self.uow() as uow:
            ref = event.customer_ref
            if ref is not None and uow.customers.get(account_id) is None:
                _link(uow, account_id, ref)
            sub: Subscription | None = None
            outcome = ApplyOutcome.APPLIED
            if admission is not None:
                assert settled is not None
                settled.recheck(uow)
                sub, changed = one.record(uow, account_id, admission, now)
                if admission.is_duplicate:
                    outcome = ApplyOutcome.DUPLICATE
                else:
                    # Unchanged and not older: the view is what we hold (the echo of an
                    # answer we recorded), so it is applied, though nothing was written.
                    seen = admission.view
                    same = sub is not None and seen is not None and sub.synced_at == seen.as_of
                    outcome = ApplyOutcome.APPLIED if changed or same else ApplyOutcome.STALE
            elif event.kind is GatewayEventKind.INVOICE_CHANGED and event.invoice is not None:
                if not uow.invoices.upsert(account_id, event.invoice):
                    outcome = ApplyOutcome.STALE  # a late event: the invoice has moved on
            elif summary is not None:
                sub = uow.subscriptions.for_account(account_id)
                if sub is not None and sub.status.is_live:
                    sub.update_payment_method(summary, event.created)
                    uow.subscriptions.save(sub)
            else:
                outcome = ApplyOutcome.IGNORED
            if event.kind is GatewayEventKind.CHECKOUT_COMPLETED and event.checkout_id:
                uow.checkouts.close(event.checkout_id, CheckoutStatus.COMPLETE, now)
            audit(uow, account_id, action, inputs, outcome.value, now, sub)
            if within is not None:
                within(uow, outcome)
            uow.commit()
        return outcome


_SUBSCRIPTION_KINDS = (
    GatewayEventKind.SUBSCRIPTION_CHANGED,
    GatewayEventKind.SCHEDULE_CHANGED,
    GatewayEventKind.CHECKOUT_COMPLETED,
)
