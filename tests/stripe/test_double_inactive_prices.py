"""The double refuses an archived price wherever a request sells one, as Stripe answers it.

Stripe's answer to an archived (`active: false`) price in Checkout's `line_items` is HTTP 400,
`type: invalid_request_error`, no `code`, `param` the field, and the message "The price
specified is inactive. This field only accepts active prices." (quoted verbatim in public
issue threads, e.g. invertase/stripe-firebase-extensions#560, and in other Stripe doubles).
The double answers the same for subscription items, a schedule's phase items and an invoice
preview's items, which sell the price too, and keeps accepting a price already in place (the
subscriber's own, retired since, in a schedule's current phase). An unknown price id in a
body parameter is 400 `resource_missing` on that parameter.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import stripe

from responseiq_billing.adapters.stripe.gateway import StripeGateway
from responseiq_billing.domain.plans import Catalog
from tests.stripe.conftest import subscribe
from tests.stripe_double import StripeDouble

INACTIVE = "The price specified is inactive. This field only accepts active prices."


def retire(double: StripeDouble, plan: str) -> str:
    [price] = double.state.list_prices({"lookup_keys": [f"{plan}_month"]})
    double.state.update_price(price["id"], {"active": "false"})
    return str(price["id"])


def refused(call: Callable[[], Any]) -> dict[str, Any]:
    with pytest.raises(stripe.InvalidRequestError) as raised:
        call()
    assert raised.value.http_status == 400
    body = raised.value.json_body
    assert isinstance(body, dict)
    error: dict[str, Any] = body["error"]
    return error


def test_an_archived_price_is_refused_in_checkout_subscription_schedule_and_preview(
    gateway: StripeGateway, double: StripeDouble, catalog: Catalog
) -> None:
    sub = subscribe(gateway, double, catalog, "growth")
    client = double.client()
    business = retire(double, "business")
    item = double.subscription(sub.subscription_ref)["items"]["data"][0]

    checkout = refused(
        lambda: client.v1.checkout.sessions.create(
            {
                "mode": "subscription",
                "customer": sub.customer_ref,
                "line_items": [{"price": business, "quantity": 1}],
                "success_url": "https://app.example/done",
            },
            {"idempotency_key": "inactive:checkout"},
        )
    )
    update = refused(
        lambda: client.v1.subscriptions.update(
            sub.subscription_ref,
            {
                "items": [{"id": item["id"], "price": business}],
                "proration_behavior": "always_invoice",
            },
            {"idempotency_key": "inactive:update"},
        )
    )
    preview = refused(
        lambda: client.v1.invoices.create_preview(
            {
                "customer": sub.customer_ref,
                "subscription": sub.subscription_ref,
                "subscription_details": {
                    "items": [{"id": item["id"], "price": business}],
                    "proration_behavior": "always_invoice",
                },
            },
            {"idempotency_key": "inactive:preview"},
        )
    )
    schedule = client.v1.subscription_schedules.create(
        {"from_subscription": sub.subscription_ref}, {"idempotency_key": "inactive:schedule"}
    )
    start, end = schedule.current_phase.start_date, schedule.current_phase.end_date  # type: ignore[union-attr]
    phases = refused(
        lambda: client.v1.subscription_schedules.update(
            schedule.id,
            {
                "end_behavior": "release",
                "phases": [
                    {
                        "items": [{"price": item["price"]["id"]}],
                        "start_date": start,
                        "end_date": end,
                    },
                    {"items": [{"price": business}]},
                ],
            },
            {"idempotency_key": "inactive:phases"},
        )
    )

    assert [
        (e["type"], e["message"], e.get("code")) for e in (checkout, update, preview, phases)
    ] == [("invalid_request_error", INACTIVE, None)] * 4
    assert [e["param"] for e in (checkout, update, preview, phases)] == [
        "line_items[0][price]",
        "items[0][price]",
        "subscription_details[items][0][price]",
        "phases[1][items][0][price]",
    ]
    # A refused request changes nothing: the schedule keeps its phase and its end behaviour.
    kept = double.state.get(schedule.id, "subscription_schedule")
    assert [p["items"][0]["price"] for p in kept["phases"]] == [item["price"]["id"]]
    assert (
        double.subscription(sub.subscription_ref)["items"]["data"][0]["price"]["id"]
        == (item["price"]["id"])
    )


def test_a_retired_price_already_in_place_stays_in_a_schedules_current_phase(
    gateway: StripeGateway, double: StripeDouble, catalog: Catalog
) -> None:
    sub = subscribe(gateway, double, catalog, "growth")
    growth = retire(double, "growth")  # the subscriber's own price
    [starter] = double.state.list_prices({"lookup_keys": ["starter_month"]})
    client = double.client()
    schedule = client.v1.subscription_schedules.create(
        {"from_subscription": sub.subscription_ref}, {"idempotency_key": "in-place:schedule"}
    )
    start, end = schedule.current_phase.start_date, schedule.current_phase.end_date  # type: ignore[union-attr]

    updated = client.v1.subscription_schedules.update(
        schedule.id,
        {
            "end_behavior": "release",
            "phases": [
                {"items": [{"price": growth}], "start_date": start, "end_date": end},
                {"items": [{"price": starter["id"]}]},
            ],
        },
        {"idempotency_key": "in-place:phases"},
    )
    assert [p.items[0].price for p in updated.phases] == [growth, starter["id"]]


def test_an_unknown_price_in_a_body_parameter_is_a_400_resource_missing_on_it(
    gateway: StripeGateway, double: StripeDouble, catalog: Catalog
) -> None:
    customer = gateway.ensure_customer("acct_np", idempotency_key="customer:acct_np")
    error = refused(
        lambda: double.client().v1.checkout.sessions.create(
            {
                "mode": "subscription",
                "customer": customer,
                "line_items": [{"price": "price_gone", "quantity": 1}],
                "success_url": "https://app.example/done",
            },
            {"idempotency_key": "missing:checkout"},
        )
    )
    assert (error["code"], error["param"], error["message"]) == (
        "resource_missing",
        "line_items[0][price]",
        "No such price: 'price_gone'",
    )
