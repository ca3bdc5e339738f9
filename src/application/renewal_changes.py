"""The worker step that carries out downgrades the core keeps, shortly before the renewal."""

from __future__ import annotations

from datetime import datetime

import attrs

from responseiq_billing.application.ports import (
    Clock,
    PaymentGateway,
    ScheduledChanges,
    UnitOfWorkFactory,
)
from responseiq_billing.application.scheduled_changes import APPLY_LEAD
from responseiq_billing.application.use_cases import _Recorder, now_from
from responseiq_billing.domain.errors import BillingError
from responseiq_billing.domain.plans import Catalog


@attrs.frozen
class AppliedChange:
    account_id: str
    subscription_ref: str
    plan_id: str
    outcome: str  # "applied", or the error code that stopped it (retried on the next tick)


# Due changes taken per run; the rest are taken by the next run, a minute later at most.
BATCH = 500


@attrs.frozen(kw_only=True)
class ApplyDueChanges:
    """For a CORE-scheduling gateway: each kept downgrade whose renewal is within `APPLY_LEAD`
    gets the gateway's price switched with `apply_plan_for_renewal` (billing nothing now), so
    the renewal bills the new price. Our state keeps the old plan (and its features) until the
    renewal: the gateway's view is merged with the kept change (`CoreKeptChanges`).

    Safe to run at any time, from any number of workers: the gateway call is read-compare-write
    and its key is the change itself. A change this worker has applied is not sent again on
    its later runs (our state cannot tell an applied change from one still to apply until the
    renewal). Does nothing for a gateway that schedules changes itself.
    """

    uow: UnitOfWorkFactory
    gateway: PaymentGateway
    clock: Clock
    catalog: Catalog
    batch: int = BATCH
    # (subscription, effective_at) of the changes applied by this instance, until they are due.
    _applied: set[tuple[str, datetime]] = attrs.field(factory=set, init=False)

    def __call__(self) -> list[AppliedChange]:
        if self.gateway.scheduled_changes is not ScheduledChanges.CORE:
            return []
        now = now_from(self.clock)
        with self.uow() as uow:
            # The index on the pending change's date finds them (`ix_subscriptions_pending_due`).
            found = uow.subscriptions.pending_changes_due(now + APPLY_LEAD, limit=self.batch)
        self._applied.difference_update({k for k in self._applied if k[1] < now})
        due = [
            (sub, sub.pending_change)
            for sub in found
            if sub.pending_change is not None
            and sub.status.is_changeable
            and (sub.subscription_ref, sub.pending_change.effective_at) not in self._applied
        ]
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
            self._applied.add((sub.subscription_ref, change.effective_at))
            done.append(
                AppliedChange(sub.account_id, sub.subscription_ref, change.plan_id, "applied")
            )
        return done
