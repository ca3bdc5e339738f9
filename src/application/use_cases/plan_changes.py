"""Plan changes: the prorated preview, upgrades now, downgrades at the period end and their undo."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime

import attrs

from responseiq_billing.application import commands
from responseiq_billing.application.ids import new_id
from responseiq_billing.application.ports import (
    Clock,
    PaymentGateway,
    ScheduledChanges,
    UnitOfWork,
    UnitOfWorkFactory,
)
from responseiq_billing.application.scheduled_changes import APPLY_LEAD, held_view
from responseiq_billing.application.use_cases.recording import (
    _price_inputs,
    _Recorder,
    audit,
    live_subscription,
    now_from,
    retry_stale,
)
from responseiq_billing.domain.errors import (
    BillingError,
    GatewayRejected,
    QuoteMismatch,
    QuoteNotFound,
    SubscriptionNotFound,
)
from responseiq_billing.domain.money import Money
from responseiq_billing.domain.plans import Catalog
from responseiq_billing.domain.quotes import QUOTE_TTL, Quote
from responseiq_billing.domain.rules import ChangeTiming
from responseiq_billing.domain.subscription import (
    PendingChange,
    Subscription,
)

# -- plan changes ---------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class PreviewPlanChange:
    """A quote: when the change takes effect and what it charges now, redeemable until it expires."""

    uow: UnitOfWorkFactory
    gateway: PaymentGateway
    clock: Clock
    catalog: Catalog

    def __call__(self, cmd: commands.PreviewPlanChange) -> Quote:
        now = now_from(self.clock)
        target = self.catalog.price(cmd.plan, cmd.interval)
        with self.uow() as uow:
            sub = live_subscription(uow, cmd.account_id)
        decision = sub.decide_plan_change(target, at=now, catalog=self.catalog)
        if decision.timing is ChangeTiming.IMMEDIATE:
            amount = self.gateway.preview_plan_change(
                subscription_ref=sub.subscription_ref, target=target, proration_at=now
            )
        else:
            amount = Money.zero(target.amount.currency)
        quote = Quote(
            id=new_id("qt"),
            account_id=cmd.account_id,
            subscription_ref=sub.subscription_ref,
            from_plan=sub.plan_id,
            from_interval=sub.interval,
            to_plan=target.plan_id,
            to_interval=target.interval,
            timing=decision.timing,
            amount_due_now=amount,
            effective_at=decision.effective_at,
            proration_at=now,
            created_at=now,
            expires_at=now + QUOTE_TTL,
        )
        with self.uow() as uow:
            uow.quotes.add(quote)
            uow.commit()
        return quote


@attrs.frozen(kw_only=True)
class ChangePlan:
    """Upgrade now (prorated, charged at once) or schedule a downgrade for the period end."""

    uow: UnitOfWorkFactory
    gateway: PaymentGateway
    clock: Clock
    catalog: Catalog

    def __call__(self, cmd: commands.ChangePlan, *, caught_up: bool = False) -> Subscription:
        now = now_from(self.clock)
        target = self.catalog.price(cmd.plan, cmd.interval)
        recorder = _Recorder(uow=self.uow, gateway=self.gateway, clock=self.clock)
        inputs = _price_inputs(cmd.plan, cmd.interval, quote=cmd.quote_id)
        with self.uow() as uow:
            sub = live_subscription(uow, cmd.account_id)
            quote = self._quote(uow, cmd, sub, now) if cmd.quote_id else None
        core_keeps = self.gateway.scheduled_changes is ScheduledChanges.CORE
        if core_keeps and sub.current_period_end <= now and not caught_up:
            # Our copy's period is over: the renewal's webhook has not reached us yet. A change
            # the core keeps is dated by the period the gateway is in now, so read it first
            # (once: a gateway that has not renewed, e.g. past due, is taken as it is).
            view = self.gateway.get_subscription(sub.subscription_ref)
            recorder.record(cmd.account_id, view, "subscription.refresh", {})
            return self(cmd, caught_up=True)

        def redeem(uow: UnitOfWork) -> None:
            if quote is not None:
                uow.quotes.save(quote.redeemed(now))

        try:
            decision = sub.decide_plan_change(target, at=now, catalog=self.catalog)
            key = f"plan-change:{cmd.account_id}:{cmd.request_id}"
            if decision.timing is ChangeTiming.IMMEDIATE:
                view = self.gateway.upgrade(
                    subscription_ref=sub.subscription_ref,
                    target=target,
                    proration_at=quote.proration_at if quote else now,
                    idempotency_key=key,
                )
            elif core_keeps:
                # The gateway cannot schedule it: the core keeps it, with no gateway call, and
                # the worker applies it before the renewal (`application.scheduled_changes`).
                change = PendingChange(target.plan_id, target.interval, decision.effective_at)
                return _keep_pending(
                    self.uow, self.clock, cmd.account_id, change, "plan.change", inputs, redeem
                )
            else:
                view = self.gateway.schedule_downgrade(
                    subscription_ref=sub.subscription_ref, target=target, idempotency_key=key
                )
        except BillingError as error:
            recorder.failed(cmd.account_id, "plan.change", inputs, error)
            raise

        return recorder.record(cmd.account_id, view, "plan.change", inputs, also=redeem)

    @staticmethod
    def _quote(
        uow: UnitOfWork, cmd: commands.ChangePlan, sub: Subscription, now: datetime
    ) -> Quote:
        quote = uow.quotes.get(cmd.quote_id or "")
        if quote is None:
            raise QuoteNotFound()
        quote.check_redeemable(
            account_id=cmd.account_id,
            subscription_ref=sub.subscription_ref,
            current=(sub.plan_id, sub.interval),
            target=(cmd.plan, cmd.interval),
            at=now,
        )
        if quote.proration_at < sub.current_period_start:
            raise QuoteMismatch("The billing period renewed since this quote was made.")
        return quote


@attrs.frozen(kw_only=True)
class CancelPendingChange:
    uow: UnitOfWorkFactory
    gateway: PaymentGateway
    clock: Clock
    catalog: Catalog | None = None  # needed when the core keeps changes (ScheduledChanges.CORE)

    def __call__(self, cmd: commands.CancelPendingChange) -> Subscription:
        with self.uow() as uow:
            sub = live_subscription(uow, cmd.account_id)
        change = sub.check_withdraw_pending_change()
        if self.gateway.scheduled_changes is ScheduledChanges.CORE:
            return self._withdraw_kept(cmd, sub, change)
        view = self.gateway.withdraw_scheduled_change(
            subscription_ref=sub.subscription_ref,
            idempotency_key=f"withdraw-change:{cmd.account_id}:{cmd.request_id}",
        )
        inputs = _price_inputs(change.plan_id, change.interval)
        return _Recorder(uow=self.uow, gateway=self.gateway, clock=self.clock).record(
            cmd.account_id, view, "plan.change.withdraw", inputs
        )

    def _withdraw_kept(
        self, cmd: commands.CancelPendingChange, sub: Subscription, change: PendingChange
    ) -> Subscription:
        """Free before the worker's window; inside it the gateway may already have the new
        price, so the current one is put back (again billing nothing)."""
        inputs = _price_inputs(change.plan_id, change.interval)
        if now_from(self.clock) >= change.effective_at - APPLY_LEAD:
            if self.catalog is None:
                raise GatewayRejected("Withdrawing a kept change needs the plan catalog.")
            self.gateway.apply_plan_for_renewal(
                subscription_ref=sub.subscription_ref,
                target=self.catalog.price(sub.plan_id, sub.interval),
                idempotency_key=f"withdraw-change:{cmd.account_id}:{cmd.request_id}",
            )
        return _keep_pending(
            self.uow, self.clock, cmd.account_id, None, "plan.change.withdraw", inputs
        )


def _keep_pending(
    uow_factory: UnitOfWorkFactory,
    clock: Clock,
    account_id: str,
    change: PendingChange | None,
    action: str,
    inputs: Mapping[str, str],
    also: Callable[[UnitOfWork], None] | None = None,
) -> Subscription:
    """Set (or drop) the pending change the core keeps, through `sync` so the same domain
    events are recorded as when a gateway reports a schedule."""
    now = now_from(clock)

    def attempt() -> Subscription:
        with uow_factory() as uow:
            sub = live_subscription(uow, account_id)
            sub.sync(held_view(sub, at=now, pending=change))
            uow.subscriptions.save(sub)
            if also is not None:
                also(uow)
            audit(uow, account_id, action, inputs, "ok", now, sub)
            uow.commit()
            return sub

    return retry_stale(attempt)


@attrs.frozen(kw_only=True)
class CancelSubscription:
    """Cancel at period end: access continues until then; a scheduled downgrade is superseded."""

    uow: UnitOfWorkFactory
    gateway: PaymentGateway
    clock: Clock

    def __call__(self, cmd: commands.CancelSubscription) -> Subscription:
        with self.uow() as uow:
            sub = live_subscription(uow, cmd.account_id)
        sub.check_cancel(now_from(self.clock))
        view = self.gateway.cancel_at_period_end(
            subscription_ref=sub.subscription_ref,
            idempotency_key=f"cancel:{cmd.account_id}:{cmd.request_id}",
        )
        return _Recorder(uow=self.uow, gateway=self.gateway, clock=self.clock).record(
            cmd.account_id, view, "subscription.cancel", {}
        )


@attrs.frozen(kw_only=True)
class ResumeSubscription:
    uow: UnitOfWorkFactory
    gateway: PaymentGateway
    clock: Clock

    def __call__(self, cmd: commands.ResumeSubscription) -> Subscription:
        with self.uow() as uow:
            sub = uow.subscriptions.for_account(cmd.account_id)
        if sub is None:
            raise SubscriptionNotFound()
        sub.check_resume(now_from(self.clock))
        view = self.gateway.resume(
            subscription_ref=sub.subscription_ref,
            idempotency_key=f"resume:{cmd.account_id}:{cmd.request_id}",
        )
        return _Recorder(uow=self.uow, gateway=self.gateway, clock=self.clock).record(
            cmd.account_id, view, "subscription.resume", {}
        )
