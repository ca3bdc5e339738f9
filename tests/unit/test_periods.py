"""Billing periods anchored like Stripe's billing_cycle_anchor."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from responseiq_billing.domain.periods import add_months, period_end, require_aware, seconds
from responseiq_billing.domain.plans import Interval


def at(year: int, month: int, day: int, hour: int = 9) -> datetime:
    return datetime(year, month, day, hour, tzinfo=UTC)


def test_a_cycle_anchored_on_the_31st_renews_on_feb_28_then_returns_to_mar_31() -> None:
    jan31 = at(2026, 1, 31)
    feb = period_end(jan31, Interval.MONTH, anchor_day=31)
    mar = period_end(feb, Interval.MONTH, anchor_day=31)
    apr = period_end(mar, Interval.MONTH, anchor_day=31)
    assert (feb, mar, apr) == (at(2026, 2, 28), at(2026, 3, 31), at(2026, 4, 30))


def test_without_the_anchor_day_a_clamped_date_would_drift_to_the_28th() -> None:
    feb = period_end(at(2026, 1, 31), Interval.MONTH)
    assert period_end(feb, Interval.MONTH) == at(2026, 3, 28)


def test_a_leap_year_february_keeps_the_29th() -> None:
    assert add_months(at(2028, 1, 31), 1, anchor_day=31) == at(2028, 2, 29)


def test_a_yearly_cycle_started_on_feb_29_renews_on_feb_28_and_back_on_feb_29() -> None:
    start = at(2028, 2, 29)
    one = period_end(start, Interval.YEAR, anchor_day=29)
    assert one == at(2029, 2, 28)
    assert add_months(start, 48, anchor_day=29) == at(2032, 2, 29)


def test_adding_months_crosses_year_ends_and_keeps_the_time_of_day() -> None:
    assert add_months(datetime(2026, 11, 30, 17, 45, 12, tzinfo=UTC), 3) == datetime(
        2027, 2, 28, 17, 45, 12, tzinfo=UTC
    )
    assert add_months(at(2026, 12, 15), 1) == at(2027, 1, 15)


def test_the_domain_refuses_naive_datetimes() -> None:
    with pytest.raises(ValueError):
        require_aware(datetime(2026, 3, 1))
    aware = datetime(2026, 3, 1, tzinfo=timezone(timedelta(hours=2)))
    assert require_aware(aware) is aware


def test_seconds_counts_whole_seconds() -> None:
    assert seconds(timedelta(days=1, milliseconds=999)) == 86_400
