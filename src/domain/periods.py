"""Billing-period arithmetic on aware UTC datetimes, anchored the way Stripe anchors cycles."""

from __future__ import annotations

import calendar
from datetime import datetime, timedelta

from responseiq_billing.domain.plans import Interval


def add_months(moment: datetime, months: int, anchor_day: int | None = None) -> datetime:
    """Move `moment` by whole months, keeping the anchor day where the month has it.

    Stripe anchors a monthly cycle on the day of the month it started: a cycle anchored on the
    31st renews on Feb 28 (or 29) and then on Mar 31 again, so the anchor day is passed in
    rather than read from the (possibly clamped) previous period end.
    """
    day = anchor_day or moment.day
    month_index = moment.month - 1 + months
    year, month = moment.year + month_index // 12, month_index % 12 + 1
    last = calendar.monthrange(year, month)[1]
    return moment.replace(year=year, month=month, day=min(day, last))


def period_end(start: datetime, interval: Interval, anchor_day: int | None = None) -> datetime:
    return add_months(start, interval.months, anchor_day)


def require_aware(moment: datetime) -> datetime:
    """Every instant in the domain is timezone-aware; naive datetimes are a bug upstream."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("datetimes in the billing domain must be timezone-aware")
    return moment


def seconds(delta: timedelta) -> int:
    return int(delta.total_seconds())
