"""Stripe payloads are stored without card data: brand and last four digits at most."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from adapters.stripe.redact import redact_card_details

FIXTURES = Path(__file__).resolve().parents[2].parent / "shared" / "stripe" / "fixtures3.json"
CARD_KEYS = {"exp_month", "exp_year", "cvc", "cvv", "fingerprint"}


def _keys(value: Any, inside_card: bool = False) -> set[str]:
    """Every key in a parsed JSON value; `number` counts only inside a card object."""
    found: set[str] = set()
    if isinstance(value, dict):
        for key, item in value.items():
            if key != "number" or inside_card:
                found.add(key)
            found |= _keys(item, inside_card=key == "card")
    elif isinstance(value, list):
        for item in value:
            found |= _keys(item, inside_card)
    return found


@pytest.fixture(scope="module")
def resources() -> dict[str, Any]:
    if not FIXTURES.exists():
        pytest.skip(f"Stripe fixtures not found at {FIXTURES}")
    return json.loads(FIXTURES.read_text())["resources"]


def test_a_payment_method_event_keeps_only_the_brand_and_last4(resources: dict[str, Any]) -> None:
    pm = copy.deepcopy(resources["payment_method"])
    pm["card"] = {
        "brand": "visa",
        "last4": "4242",
        "exp_month": 12,
        "exp_year": 2030,
        "fingerprint": "Xt5EWLLDS7FJjR1c",
        "country": "US",
        "funding": "credit",
    }
    event = {"id": "evt_1", "type": "payment_method.automatically_updated", "data": {"object": pm}}
    assert _keys(redact_card_details(event)) & (CARD_KEYS | {"number"}) == set()
    assert redact_card_details(event)["data"]["object"]["card"] == {
        "brand": "visa",
        "last4": "4242",
    }
    assert redact_card_details(event)["data"]["object"]["id"] == pm["id"]


def test_every_stripe_example_object_is_free_of_card_data_once_redacted(
    resources: dict[str, Any],
) -> None:
    for name, obj in resources.items():
        assert _keys(redact_card_details(obj)) & (CARD_KEYS | {"number"}) == set(), name
    assert "exp_month" in _keys(resources["payment_method"])  # the examples do hold card data


def test_objects_without_card_data_are_unchanged(resources: dict[str, Any]) -> None:
    subscription = resources["subscription"]
    assert redact_card_details(subscription) == subscription
