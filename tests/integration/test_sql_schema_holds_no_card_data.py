"""No column of the migrated schema could hold a card number, expiry date or security code."""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa

from responseiq_billing.adapters.sql.database import create_engine_from_url

CARD_DATA = [
    re.compile(p)
    for p in (
        r"card_?(number|num|no)\b",  # card_number, cardnum
        r"(^|_)(pan|ccn|cc_?num(ber)?|account_number)($|_)",  # primary account number
        r"(^|_)exp(iry|iration)?_?(month|year|date|mm|yy|yyyy)($|_)",  # exp_month, expiry_date
        r"(^|_)(expiry|expiration)($|_)",
        r"(^|_)(cvc|cvv|cvv2|cvc2|cvn|csc|cid)($|_)|security_?code|card_?code",
        r"(^|_)(track|magstripe)",  # magnetic-stripe data
    )
]


def holds_card_data(column: str) -> bool:
    return any(p.search(column.lower()) for p in CARD_DATA)


@pytest.mark.parametrize(
    "column",
    ["card_number", "cardnumber", "pan", "cc_num", "exp_month", "exp_year", "expiry",
     "expiration_date", "card_exp_mm", "cvc", "cvv", "card_cvc", "security_code", "track2"],
)  # fmt: skip
def test_the_check_recognises_card_data_columns(column: str) -> None:
    assert holds_card_data(column)


@pytest.mark.parametrize(
    "column",
    ["number", "expires_at", "payment_method_last4", "payment_method_brand", "amount_due",
     "next_attempt_at", "account_id", "customer_ref"],
)  # fmt: skip
def test_the_check_leaves_ordinary_billing_columns_alone(column: str) -> None:
    assert not holds_card_data(column)


def test_no_column_of_the_migrated_schema_could_hold_card_data(migrated: str) -> None:
    engine = create_engine_from_url(migrated)
    inspector = sa.inspect(engine)
    columns = [
        f"{table}.{column['name']}"
        for table in inspector.get_table_names()
        for column in inspector.get_columns(table)
    ]
    last4 = {c["name"]: c["type"] for c in inspector.get_columns("subscriptions")}[
        "payment_method_last4"
    ]
    engine.dispose()
    assert len(columns) > 50  # the whole schema was inspected
    assert [c for c in columns if holds_card_data(c.split(".")[1])] == []
    # The last four digits are all of a card we keep, in a column too narrow for more.
    assert getattr(last4, "length", None) == 4
