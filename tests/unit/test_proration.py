"""Proration as Stripe computes it: unused time credited, remaining time charged, to the second."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from responseiq_billing.domain.errors import CurrencyMismatch
from responseiq_billing.domain.money import Money
from responseiq_billing.domain.periods import period_end
from responseiq_billing.domain.plans import Catalog, Interval, PlanPrice
from responseiq_billing.domain.rules import Proration, prorate

M, Y = Interval.MONTH, Interval.YEAR
MAR_1 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
APR_1 = datetime(2026, 4, 1, 9, 0, tzinfo=UTC)


def price(cents: int, interval: Interval = M, plan: str = "p") -> PlanPrice:
    return PlanPrice(plan, interval, Money(cents, "USD"))


def test_growth_to_business_on_march_16_charges_the_difference_for_16_of_31_days(
    catalog: Catalog,
) -> None:
    result = prorate(
        catalog.price("growth", M),
        catalog.price("business", M),
        period_start=MAR_1,
        period_end_at=APR_1,
        at=datetime(2026, 3, 16, 9, 0, tzinfo=UTC),
    )
    # 49.00 * 16/31 = 25.2903 -> 25.29 credited; 99.00 * 16/31 = 51.0968 -> 51.10 charged
    assert result.credit == Money(-2529, "USD")
    assert result.charge == Money(5110, "USD")
    assert result.amount_due == Money(2581, "USD")
    assert (result.new_period_start, result.new_period_end) == (MAR_1, APR_1)


def test_starter_to_growth_halfway_through_february_charges_half_the_difference(
    catalog: Catalog,
) -> None:
    feb_1 = datetime(2026, 2, 1, tzinfo=UTC)
    result = prorate(
        catalog.price("starter", M),
        catalog.price("growth", M),
        period_start=feb_1,
        period_end_at=datetime(2026, 3, 1, tzinfo=UTC),
        at=datetime(2026, 2, 15, tzinfo=UTC),
    )
    assert (result.credit, result.charge) == (Money(-950, "USD"), Money(2450, "USD"))
    assert result.amount_due == Money(1500, "USD")


def test_proration_counts_to_the_second_not_to_the_day() -> None:
    start = datetime(2026, 3, 1, tzinfo=UTC)
    end = start + timedelta(seconds=100)
    result = prorate(
        price(1000),
        price(2000, plan="q"),
        period_start=start,
        period_end_at=end,
        at=start + timedelta(seconds=37),
    )
    assert (result.credit.amount, result.charge.amount) == (-630, 1260)


@pytest.mark.parametrize(
    ("amount", "credit", "charge"),
    [
        (1, -1, 1),  # 0.5 -> 1
        (3, -2, 2),  # 1.5 -> 2
        (5, -3, 3),  # 2.5 -> 3 (banker's rounding would give 2)
        (4, -2, 2),  # exact
    ],
)
def test_each_line_is_rounded_half_away_from_zero(amount: int, credit: int, charge: int) -> None:
    start = datetime(2026, 3, 1, tzinfo=UTC)
    result = prorate(
        price(amount),
        price(amount, plan="q"),
        period_start=start,
        period_end_at=start + timedelta(seconds=2),
        at=start + timedelta(seconds=1),
    )
    assert (result.credit.amount, result.charge.amount) == (credit, charge)
    assert prorate.__doc__ is not None and "half away from zero" in prorate.__doc__


def test_a_change_of_interval_charges_the_full_new_price_and_starts_a_new_period(
    catalog: Catalog,
) -> None:
    at = datetime(2026, 3, 16, 9, 0, tzinfo=UTC)
    result = prorate(
        catalog.price("growth", M),
        catalog.price("growth", Y),
        period_start=MAR_1,
        period_end_at=APR_1,
        at=at,
    )
    assert result.charge == Money(49000, "USD")
    assert result.credit == Money(-2529, "USD")
    assert result.amount_due == Money(49000 - 2529, "USD")
    assert (result.new_period_start, result.new_period_end) == (at, period_end(at, Y))


def test_a_credit_larger_than_the_charge_leaves_nothing_due_now() -> None:
    result = Proration(Money(-500, "USD"), Money(300, "USD"), MAR_1, MAR_1, APR_1)
    assert result.net == Money(-200, "USD")
    assert result.amount_due == Money.zero("USD")


def test_the_proration_instant_must_lie_within_the_period() -> None:
    with pytest.raises(ValueError):
        prorate(
            price(100),
            price(200, plan="q"),
            period_start=MAR_1,
            period_end_at=APR_1,
            at=APR_1 + timedelta(seconds=1),
        )
    with pytest.raises(ValueError):
        prorate(
            price(100),
            price(200, plan="q"),
            period_start=MAR_1,
            period_end_at=APR_1,
            at=MAR_1 - timedelta(seconds=1),
        )


def test_a_period_of_no_length_cannot_be_prorated() -> None:
    with pytest.raises(ValueError, match="positive length"):
        prorate(price(100), price(200, plan="q"), period_start=MAR_1, period_end_at=MAR_1, at=MAR_1)


def test_prices_in_different_currencies_cannot_be_prorated() -> None:
    with pytest.raises(CurrencyMismatch):
        prorate(
            price(100),
            PlanPrice("q", M, Money(200, "EUR")),
            period_start=MAR_1,
            period_end_at=APR_1,
            at=MAR_1,
        )


amounts = st.integers(0, 10**7)
period_seconds = st.integers(1, 400 * 86_400)


@st.composite
def periods(draw: st.DrawFn) -> tuple[datetime, datetime, datetime]:
    start = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=draw(st.integers(0, 10**8)))
    whole = draw(period_seconds)
    at = draw(st.integers(0, whole))
    return start, start + timedelta(seconds=whole), start + timedelta(seconds=at)


@given(amounts, amounts, periods())
def test_same_interval_lines_stay_within_the_prices_and_within_a_cent_of_exact(
    old: int, new: int, period: tuple[datetime, datetime, datetime]
) -> None:
    start, end, at = period
    result = prorate(price(old), price(new, plan="q"), period_start=start, period_end_at=end, at=at)
    assert -old <= result.credit.amount <= 0
    assert 0 <= result.charge.amount <= new
    whole = (end - start).total_seconds()
    remaining = (end - at).total_seconds()
    exact_credit = old * remaining / whole
    exact_charge = new * remaining / whole
    assert abs(-result.credit.amount - exact_credit) <= 0.5 + 1e-6
    assert abs(result.charge.amount - exact_charge) <= 0.5 + 1e-6
    assert abs(result.net.amount - (exact_charge - exact_credit)) <= 1 + 1e-6


@given(amounts, amounts, periods())
def test_nothing_is_owed_at_the_period_end_and_everything_at_its_start(
    old: int, new: int, period: tuple[datetime, datetime, datetime]
) -> None:
    start, end, _ = period
    at_end = prorate(
        price(old), price(new, plan="q"), period_start=start, period_end_at=end, at=end
    )
    assert (at_end.credit.amount, at_end.charge.amount) == (0, 0)
    at_start = prorate(
        price(old), price(new, plan="q"), period_start=start, period_end_at=end, at=start
    )
    assert (at_start.credit.amount, at_start.charge.amount) == (-old, new)


@given(amounts, amounts, periods(), st.integers(0, 10**6))
def test_a_later_change_is_never_charged_more(
    old: int, new: int, period: tuple[datetime, datetime, datetime], step: int
) -> None:
    start, end, at = period
    later = min(at + timedelta(seconds=step), end)
    first = prorate(price(old), price(new, plan="q"), period_start=start, period_end_at=end, at=at)
    second = prorate(
        price(old), price(new, plan="q"), period_start=start, period_end_at=end, at=later
    )
    assert second.charge.amount <= first.charge.amount
    assert second.credit.amount >= first.credit.amount


@given(amounts, amounts, periods())
def test_an_interval_change_always_charges_the_whole_new_price(
    old: int, new: int, period: tuple[datetime, datetime, datetime]
) -> None:
    start, end, at = period
    result = prorate(
        price(old, M), price(new, Y, plan="q"), period_start=start, period_end_at=end, at=at
    )
    assert result.charge.amount == new
    assert -old <= result.credit.amount <= 0
    assert result.new_period_start == at
    assert result.new_period_end == period_end(at, Y)


@given(amounts, periods())
def test_a_lateral_move_at_the_same_price_nets_to_zero(
    amount: int, period: tuple[datetime, datetime, datetime]
) -> None:
    start, end, at = period
    result = prorate(
        price(amount), price(amount, plan="q"), period_start=start, period_end_at=end, at=at
    )
    assert result.net.amount == 0
