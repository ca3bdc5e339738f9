"""The worker step that carries out downgrades the core keeps, shortly before the renewal."""

from __future__ import annotations

import attrs

from application.ports import Clock, PaymentGateway, ScheduledChanges, UnitOfWorkFactory
from application.scheduled_changes import APPLY_LEAD
from application.use_cases import _Recorder, now_from
from domain.errors import BillingError
from domain.plans import Catalog


@attrs.frozen
class AppliedChange:
    account_id: str
    subscription_ref: str
    plan_id: str
    outcome: str  # "applied", or the error code that stopped it (retried on the next tick)


@attrs.frozen(kw_only=True)
class ApplyDueChanges:
    """For a CORE-scheduling gateway: each kept downgrade whose renewal is within `APPLY_LEAD`
    gets the gateway's price switched with `apply_plan_for_renewal` (billing nothing now), so
    the renewal bills the new price. Our state keeps the old plan (and its features) until the
    renewal: the gateway's view is merged with the kept change (`CoreKeptChanges`).

    Safe to run at any time, from any number of workers: the gateway call is read-compare-write
    and its key is the change itself. Does nothing for a gateway that schedules changes itself.
    """

    uow: UnitOfWorkFactory
    gateway: PaymentGateway
    clock: Clock
    catalog: Catalog

    def __call__(self) -> list[AppliedChange]:
        if self.gateway.scheduled_changes is not ScheduledChanges.CORE:
            return []
        now = now_from(self.clock)
        due = []
        with self.uow() as uow:
            # Every account's subscription: fine at this service's size; a repository query
            # for pending changes by `effective_at` is the index this will want (ADR 0012).
            for account in uow.customers.accounts():
                sub = uow.subscriptions.for_account(account)
                change = sub.pending_change if sub is not None else None
                if sub is None or change is None or not sub.status.is_changeable:
                    continue
                if change.effective_at - APPLY_LEAD <= now:
                    due.append((sub, change))
        done: list[AppliedChange] = []
        recorder = _Recorder(uow=self.uow, gateway=self.gateway, clock=self.clock)
        for sub, change in due:
            inputs = {"plan": change.plan_id, "interval": change.interval.value}
            key = f"renewal-plan:{sub.subscription_ref}:{change.effective_at.isoformat()}"
            try:
                view = self.gateway.apply_plan_for_renewal(
                    subscription_ref=sub.subscription_ref,
                    target=self.catalog.price(change.plan_id, change.interval),
                    idempotency_key=key,
                )
            except BillingError as error:
                recorder.failed(sub.account_id, "plan.change.apply", inputs, error)
                done.append(
                    AppliedChange(sub.account_id, sub.subscription_ref, change.plan_id, error.code)
                )
                continue
            recorder.record(sub.account_id, view, "plan.change.apply", inputs)
            done.append(
                AppliedChange(sub.account_id, sub.subscription_ref, change.plan_id, "applied")
            )
        return done
