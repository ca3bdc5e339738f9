"""Stripe payloads are stored without card data: brand and last four digits at most."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from responseiq_billing.adapters.stripe.redact import redact_card_details
from tests.stripe_double.fixtures import fixtures_path

FIXTURES = fixtures_path()  # fixtures3.json beside the project, else the subset the repo keeps
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


def _paths(value: Any, prefix: str = "") -> set[str]:
    found: set[str] = set()
    if isinstance(value, dict):
        for key, item in value.items():
            found.add(f"{prefix}{key}")
            found |= _paths(item, f"{prefix}{key}.")
    elif isinstance(value, list):
        for item in value:
            found |= _paths(item, prefix)
    return found


PERSONAL = {"customer_details", "billing_details", "email", "phone", "name", "address", "shipping"}


def test_a_subscription_loses_only_personal_fields_no_handler_reads(
    resources: dict[str, Any],
) -> None:
    subscription = resources["subscription"]
    removed = _paths(subscription) - _paths(redact_card_details(subscription))
    # Where a key went, everything under it went too; the key itself must be personal data.
    roots = {path for path in removed if path.rpartition(".")[0] not in removed}
    assert {path.rpartition(".")[2] for path in roots} <= PERSONAL | {"custom_fields"}
    for kept in ("id", "customer", "items", "status", "cancel_at_period_end", "metadata"):
        assert redact_card_details(subscription)[kept] == subscription[kept]


def test_a_customer_keeps_its_id_and_default_card_but_not_name_email_phone_or_address(
    resources: dict[str, Any],
) -> None:
    customer = dict(resources["customer"])
    customer.update(
        name="Jenny Rosen", email="jenny@example.com", phone="+14155550132", address={"line1": "x"}
    )
    redacted = redact_card_details(customer)
    assert redacted["id"] == customer["id"]
    assert (
        redacted["invoice_settings"]["default_payment_method"]
        == (customer["invoice_settings"]["default_payment_method"])
    )
    assert not {"name", "email", "phone", "address"} & redacted.keys()
