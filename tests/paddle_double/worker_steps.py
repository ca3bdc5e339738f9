"""Time passing with a gateway that cannot schedule plan changes (Paddle): the worker's step on the way.

With `ScheduledChanges.CORE` the core keeps a downgrade, and the worker's `ApplyDueChanges`
switches the gateway's price (billing nothing) within `APPLY_LEAD` before the renewal, so that
the renewal bills the new price. A test or demo that moves the clock in one jump would skip that
tick, and the renewal would bill the old price. `advance_with_worker` moves the clock the way a
running worker lives through it: to a quarter of an hour into the hour before each kept
downgrade's renewal (or now, if that moment is already past and the renewal is not), delivers
what the gateway said, runs the worker's step, delivers again, then goes on to the target.

Shared by the Paddle demo (`tests.paddle_double.demo`) and the Gherkin suite's Paddle driver.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from responseiq_billing.application.ports import UnitOfWorkFactory
from responseiq_billing.application.scheduled_changes import APPLY_LEAD

# Where in the worker's window the simulated tick falls: a quarter of an hour into the hour
# before the renewal. Paddle takes no change in the last 30 minutes before a renewal
# (`subscription_locked_renewal`), so a running worker, ticking every minute, switches the price
# in the first half of the window; the tick must fall there too.
WORKER_TICK_BEFORE_RENEWAL = APPLY_LEAD * 3 / 4


def worker_moments(uow: UnitOfWorkFactory, now: datetime, target: datetime) -> list[datetime]:
    """When, between `now` and `target`, a running worker would switch a kept downgrade."""
    moments: set[datetime] = set()
    with uow() as unit:
        for account in unit.customers.accounts():
            sub = unit.subscriptions.for_account(account)
            change = sub.pending_change if sub is not None else None
            if change is None or change.effective_at <= now:
                continue
            moment = max(change.effective_at - WORKER_TICK_BEFORE_RENEWAL, now)
            if moment <= target:
                moments.add(moment)
    return sorted(moments)


def advance_with_worker(
    *,
    now: Callable[[], datetime],
    target: datetime,
    uow: UnitOfWorkFactory,
    move_clock: Callable[[datetime], object],
    deliver: Callable[[], object],
    apply_due_changes: Callable[[], object],
) -> None:
    """Move the clock to `target` (forward only), running the worker's step on the way."""
    for moment in worker_moments(uow, now(), target):
        move_clock(moment)
        deliver()
        apply_due_changes()
        deliver()
    move_clock(target)
    deliver()
