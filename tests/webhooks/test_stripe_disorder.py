"""Stripe's webhooks arrive late and more than once: a portal card change still decides the renewal."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from litestar.testing import TestClient

from responseiq_billing.adapters.container import Container
from responseiq_billing.adapters.fake.clock import ControllableClock
from tests.stripe_double import StripeDouble
from tests.webhooks.conftest import Stripe, sign_up, subscription_shown


def deliver_round(stripe: Stripe, double: StripeDouble, container: Container) -> None:
    """One delivery round as the double sends it (late types held back, each event twice),
    then a worker pass."""
    for event in double.deliveries_since(stripe.cursor):
        assert stripe.post(event).status_code == 200
    stripe.cursor = len(double.state.events)
    container.process_inbox().run_once(limit=100)


def test_a_late_doubled_customer_update_still_moves_the_renewal_to_the_portal_card(
    stripe: Stripe,
    client: TestClient[Any],
    double: StripeDouble,
    container: Container,
    clock: ControllableClock,
) -> None:
    double.disorder_deliveries(
        late={"customer.updated", "payment_method.attached"}, duplicated=True
    )
    sign_up(client, double, "acct_disorder", "growth")
    deliver_round(stripe, double, container)
    clock.advance(timedelta(minutes=5))
    sub_id = double.state.all("subscription")[0]["id"]
    customer = double.state.all("customer")[0]["id"]

    double.portal_update_payment_method(customer, "amex")
    double.portal_cancel(sub_id)
    deliver_round(stripe, double, container)  # the cancellation; the card events held back
    held_back = subscription_shown(client, "acct_disorder")
    clock.advance(timedelta(minutes=5))
    double.portal_resume(sub_id)
    deliver_round(stripe, double, container)  # the resume, then the late card events
    deliver_round(stripe, double, container)  # what the service's own change emitted
    shown = subscription_shown(client, "acct_disorder")
    double.advance_to(clock.now() + timedelta(days=40))

    assert held_back["cancel_at_period_end"] is True
    assert held_back["payment_method"] == {"brand": "visa", "last4": "4242"}
    assert shown["cancel_at_period_end"] is False
    assert shown["payment_method"] == {"brand": "amex", "last4": "8431"}
    [renewal] = [
        i for i in double.invoices(customer) if i["billing_reason"] == "subscription_cycle"
    ]
    paid = double.paid_with(renewal["id"])
    assert paid is not None and paid["card"]["last4"] == "8431"
