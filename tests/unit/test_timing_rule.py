"""The help article's timing rule: upgrades now, downgrades at period end (Stripe's portal rule)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from responseiq_billing.domain.errors import CurrencyMismatch, SamePlan
from responseiq_billing.domain.money import Money
from responseiq_billing.domain.plans import Catalog, Interval, PlanPrice
from responseiq_billing.domain.rules import ChangeTiming, classify_change

IMMEDIATE, END = ChangeTiming.IMMEDIATE, ChangeTiming.END_OF_PERIOD
M, Y = Interval.MONTH, Interval.YEAR


def price(plan: str, interval: Interval, cents: int, currency: str = "USD") -> PlanPrice:
    return PlanPrice(plan, interval, Money(cents, currency))


@pytest.mark.parametrize(
    ("current", "target", "timing"),
    [
        # a higher amount at the same interval is an upgrade
        (("starter", M), ("growth", M), IMMEDIATE),
        (("growth", M), ("business", M), IMMEDIATE),
        (("starter", Y), ("business", Y), IMMEDIATE),
        # a lower amount at the same interval is a downgrade
        (("business", M), ("growth", M), END),
        (("growth", Y), ("starter", Y), END),
        # lengthening the interval (and paying more per period) is an upgrade
        (("growth", M), ("growth", Y), IMMEDIATE),
        (("business", M), ("starter", Y), IMMEDIATE),
        # shortening the interval is a downgrade, whatever the plan
        (("growth", Y), ("growth", M), END),
        (("starter", Y), ("business", M), END),
    ],
)
def test_the_catalog_changes_are_classified_by_amount_per_period_and_interval(
    catalog: Catalog,
    current: tuple[str, Interval],
    target: tuple[str, Interval],
    timing: ChangeTiming,
) -> None:
    assert classify_change(catalog.price(*current), catalog.price(*target)) is timing


def test_the_same_plan_and_interval_is_rejected_as_no_change(catalog: Catalog) -> None:
    with pytest.raises(SamePlan) as raised:
        classify_change(catalog.price("growth", M), catalog.price("growth", M))
    assert raised.value.code == "plan_change.same_plan"


def test_plans_priced_in_different_currencies_cannot_be_exchanged() -> None:
    with pytest.raises(CurrencyMismatch) as raised:
        classify_change(price("growth", M, 4900), price("growth_eu", M, 4500, "EUR"))
    assert raised.value.code == "plan_change.currency_mismatch"


def test_a_lateral_move_at_the_same_amount_and_interval_applies_now() -> None:
    assert classify_change(price("a", M, 4900), price("b", M, 4900)) is IMMEDIATE


def test_a_shorter_interval_schedules_even_when_its_amount_is_higher() -> None:
    # Stripe's `shortening_interval` condition schedules on its own.
    assert classify_change(price("a", Y, 19000), price("b", M, 25000)) is END


def test_a_longer_interval_at_a_lower_amount_is_scheduled_like_stripes_decreasing_amount() -> None:
    # Stripe's `decreasing_item_amount` condition compares the item amounts as they are.
    assert classify_change(price("a", M, 9900), price("b", Y, 5000)) is END


@given(
    st.integers(0, 10**6),
    st.sampled_from(list(Interval)),
    st.integers(0, 10**6),
    st.sampled_from(list(Interval)),
)
def test_a_change_waits_for_the_period_end_exactly_when_it_is_cheaper_or_shorter(
    old: int, old_interval: Interval, new: int, new_interval: Interval
) -> None:
    timing = classify_change(price("a", old_interval, old), price("b", new_interval, new))
    cheaper_or_shorter = new < old or new_interval.months < old_interval.months
    assert (timing is END) == cheaper_or_shorter
