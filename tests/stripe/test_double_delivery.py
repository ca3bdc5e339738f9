"""The double's idempotency keys expire after 24 hours of its clock, and its deliveries can be late and doubled."""

from __future__ import annotations

from datetime import timedelta

from responseiq_billing.adapters.fake.clock import ControllableClock
from responseiq_billing.adapters.stripe.gateway import StripeGateway
from tests.stripe_double import StripeDouble


def test_an_idempotency_key_replays_for_24_hours_then_is_a_new_request(
    gateway: StripeGateway, double: StripeDouble, clock: ControllableClock
) -> None:
    first = gateway.ensure_customer("acct_k", idempotency_key="customer:acct_k")
    clock.advance(timedelta(hours=23, minutes=59))
    replayed = gateway.ensure_customer("acct_k", idempotency_key="customer:acct_k")
    clock.advance(timedelta(minutes=1))
    pruned = gateway.ensure_customer("acct_k", idempotency_key="customer:acct_k")

    assert replayed == first
    # Stripe pruned the key: the same request makes a second customer. Our unique
    # account-to-customer mapping, not the key, keeps an account to one (ADR 0005).
    assert pruned != first
    assert len(double.state.all("customer")) == 2


def test_a_late_and_doubled_delivery_sends_each_event_twice_and_the_held_ones_next_round(
    double: StripeDouble,
) -> None:
    double.disorder_deliveries(late={"customer.updated"}, duplicated=True)
    customer = double.state.create_customer({"metadata": {"account_id": "acct_d"}})
    double.state.update_customer(customer["id"], {"metadata": {"plan": "x"}})

    first = double.deliveries_since(0)
    second = double.deliveries_since(len(double.state.events))

    assert [e["type"] for e in first] == ["customer.created", "customer.created"]
    assert [e["type"] for e in second] == ["customer.updated", "customer.updated"]
    assert first[0]["id"] == first[1]["id"] and second[0]["id"] == second[1]["id"]
