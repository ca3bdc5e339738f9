"""The help article's timing rule and Stripe's proration arithmetic, as pure functions."""

from __future__ import annotations

import enum
from datetime import datetime

import attrs

from responseiq_billing.domain.errors import CurrencyMismatch, SamePlan
from responseiq_billing.domain.money import Money
from responseiq_billing.domain.periods import period_end
from responseiq_billing.domain.plans import PlanPrice


class ChangeTiming(enum.Enum):
    """When a plan change takes effect (the article's 'When It Takes Effect' column)."""

    IMMEDIATE = "immediate"  # upgrade: now, with a prorated charge for the rest of the cycle
    END_OF_PERIOD = "end_of_period"  # downgrade: at period end; current features kept until then


def classify_change(current: PlanPrice, target: PlanPrice) -> ChangeTiming:
    """Upgrade or downgrade? The same rule Stripe's portal applies with `schedule_at_period_end`.

    A change that lowers the amount per period, or shortens the interval, is a downgrade and
    waits for the period end (Stripe's `decreasing_item_amount` / `shortening_interval`
    conditions: either one schedules). Every other change (a higher amount, a longer interval,
    or a lateral move at the same amount) is an upgrade and applies now. Same plan and interval
    is no change at all.
    """
    if (current.plan_id, current.interval) == (target.plan_id, target.interval):
        raise SamePlan()
    if current.amount.currency != target.amount.currency:
        raise CurrencyMismatch()
    shortens = target.interval.months < current.interval.months
    cheaper = target.amount.amount < current.amount.amount
    return ChangeTiming.END_OF_PERIOD if shortens or cheaper else ChangeTiming.IMMEDIATE


def _share(amount: int, part: int, whole: int) -> int:
    """`amount * part / whole` for a non-negative amount, rounded half up (away from zero) in
    integers only. Prices are never negative; a credit is a share negated afterwards."""
    if amount < 0:
        raise ValueError("a price share is taken of a non-negative amount")
    return (2 * amount * part + whole) // (2 * whole)


@attrs.frozen
class Proration:
    """What an immediate change bills now, line by line, as Stripe's proration invoice shows it.

    `credit` is negative (unused time on the old price), `charge` positive (the new price for
    the remaining time, or the whole new period when the interval changes). `amount_due` is
    what the card is charged now; a negative net becomes customer credit, so nothing is due.
    """

    credit: Money
    charge: Money
    proration_at: datetime
    new_period_start: datetime
    new_period_end: datetime

    @property
    def net(self) -> Money:
        return self.credit + self.charge

    @property
    def amount_due(self) -> Money:
        net = self.net
        return net if net.amount > 0 else Money.zero(net.currency)


def prorate(
    current: PlanPrice,
    target: PlanPrice,
    *,
    period_start: datetime,
    period_end_at: datetime,
    at: datetime,
    anchor_day: int | None = None,
) -> Proration:
    """Stripe's proration, to the second.

    Each line is computed on its own and rounded half away from zero to the minor unit:
    credit = -old * remaining / period, charge = new * remaining / period, where `remaining`
    is the whole seconds from `at` to the period end and `period` the whole seconds of the
    current period. When the interval changes, Stripe resets the billing cycle anchor to
    now: the charge is the whole new price and a new period starts at `at`.
    """
    if current.amount.currency != target.amount.currency:
        raise CurrencyMismatch()
    if not period_start <= at <= period_end_at:
        raise ValueError("the proration instant must lie within the current period")
    whole = int((period_end_at - period_start).total_seconds())
    remaining = int((period_end_at - at).total_seconds())
    if whole <= 0:
        raise ValueError("a billing period must have a positive length")
    credit = Money(-_share(current.amount.amount, remaining, whole), current.amount.currency)
    if target.interval is current.interval:
        charge = Money(_share(target.amount.amount, remaining, whole), target.amount.currency)
        start, end = period_start, period_end_at
    else:
        charge = target.amount
        start, end = at, period_end(at, target.interval, anchor_day)
    return Proration(credit, charge, at, start, end)
