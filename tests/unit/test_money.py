"""Money: integer minor units of one currency, exact parsing, no mixing of currencies."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from responseiq_billing.domain.money import Money


def test_money_parses_decimal_strings_exactly_into_minor_units() -> None:
    assert Money.of("49.00", "USD") == Money(4900, "USD")
    assert Money.of("0.5", "usd") == Money(50, "USD")
    assert Money.of("-12.34", "EUR") == Money(-1234, "EUR")
    assert Money.of(19, "USD") == Money(1900, "USD")


@pytest.mark.parametrize("text", ["1.234", "abc", "1.2x", "", ".5", "1.-5"])
def test_money_refuses_amounts_with_more_than_two_decimals_or_garbage(text: str) -> None:
    with pytest.raises(ValueError):
        Money.of(text, "USD")


@pytest.mark.parametrize("text", ["--1", "+-1", "-+1"])
def test_money_refuses_more_than_one_sign(text: str) -> None:
    with pytest.raises(ValueError):
        Money.of(text, "USD")


def test_money_refuses_floats_and_invalid_currency_codes() -> None:
    with pytest.raises(TypeError):
        Money(49.0, "USD")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        Money(100, "US")
    with pytest.raises(ValueError):
        Money(100, "U5D")


def test_money_currency_is_normalised_to_upper_case() -> None:
    assert Money(100, "usd").currency == "USD"


def test_money_refuses_to_add_compare_or_subtract_different_currencies() -> None:
    usd, eur = Money(100, "USD"), Money(100, "EUR")
    with pytest.raises(ValueError):
        _ = usd + eur
    with pytest.raises(ValueError):
        _ = usd - eur
    with pytest.raises(ValueError):
        _ = usd < eur


def test_money_prints_major_units_with_two_decimals_and_the_currency() -> None:
    assert str(Money(4900, "USD")) == "49.00 USD"
    assert str(Money(-5, "USD")) == "-0.05 USD"
    assert str(Money.zero("EUR")) == "0.00 EUR"


@given(st.integers(-(10**9), 10**9), st.integers(-(10**9), 10**9))
def test_money_arithmetic_and_order_agree_with_the_integers(a: int, b: int) -> None:
    x, y = Money(a, "USD"), Money(b, "USD")
    assert (x + y).amount == a + b
    assert (x - y).amount == a - b
    assert (-x).amount == -a
    assert (x < y) == (a < b) and (x <= y) == (a <= b)
    assert (x > y) == (a > b) and (x >= y) == (a >= b)


@given(st.integers(-(10**9), 10**9))
def test_money_printed_text_parses_back_to_the_same_amount(a: int) -> None:
    text = str(Money(a, "USD")).removesuffix(" USD")
    assert Money.of(text, "USD") == Money(a, "USD")
