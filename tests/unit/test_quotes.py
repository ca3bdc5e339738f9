"""A quote redeems once, for its own account, change and subscription, before it expires."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from responseiq_billing.domain.errors import QuoteExpired, QuoteMismatch, QuoteNotFound
from responseiq_billing.domain.money import Money
from responseiq_billing.domain.plans import Interval
from responseiq_billing.domain.quotes import QUOTE_TTL, Quote
from responseiq_billing.domain.rules import ChangeTiming

M, Y = Interval.MONTH, Interval.YEAR
NOW = datetime(2026, 3, 16, 9, 0, tzinfo=UTC)


def quote() -> Quote:
    return Quote(
        id="qt_1",
        account_id="acct_ada",
        subscription_ref="sub_ada",
        from_plan="growth",
        from_interval=M,
        to_plan="business",
        to_interval=M,
        timing=ChangeTiming.IMMEDIATE,
        amount_due_now=Money(2581, "USD"),
        effective_at=NOW,
        proration_at=NOW,
        created_at=NOW,
        expires_at=NOW + QUOTE_TTL,
    )


def redeem(q: Quote, **changes: object) -> None:
    args: dict[str, object] = {
        "account_id": "acct_ada",
        "subscription_ref": "sub_ada",
        "current": ("growth", M),
        "target": ("business", M),
        "at": NOW + timedelta(minutes=5),
    }
    args.update(changes)
    q.check_redeemable(**args)  # type: ignore[arg-type]


def test_a_fresh_quote_for_the_same_change_is_redeemable() -> None:
    redeem(quote())


def test_another_accounts_quote_does_not_exist_for_this_one() -> None:
    with pytest.raises(QuoteNotFound):
        redeem(quote(), account_id="acct_bob")


def test_a_quote_redeems_only_once() -> None:
    used = quote().redeemed(NOW)
    assert used.redeemed_at == NOW
    with pytest.raises(QuoteMismatch):
        redeem(used)


def test_a_quote_expires_after_its_time_to_live() -> None:
    redeem(quote(), at=NOW + QUOTE_TTL - timedelta(seconds=1))
    with pytest.raises(QuoteExpired):
        redeem(quote(), at=NOW + QUOTE_TTL)


@pytest.mark.parametrize(
    "changes",
    [
        {"subscription_ref": "sub_other"},
        {"current": ("starter", M)},
        {"target": ("business", Y)},
        {"target": ("growth", Y)},
    ],
)
def test_a_quote_for_another_change_or_state_does_not_match(changes: dict[str, object]) -> None:
    with pytest.raises(QuoteMismatch):
        redeem(quote(), **changes)
