"""The double refuses an enum value outside stripe-python's `Literal[...]`: mypy cannot.

stripe-python types enums `Literal[...] | str`, so a misspelt value type-checks; the double
drops the `| str` arm, as Stripe does, and the request fails the test that sent it.
"""

from __future__ import annotations

from typing import Any, cast

import pytest
import stripe
from stripe.params import SubscriptionUpdateParams

from responseiq_billing.adapters.fake.clock import ControllableClock
from responseiq_billing.adapters.stripe.gateway import StripeGateway
from responseiq_billing.domain.plans import Catalog
from tests.stripe.conftest import subscribe
from tests.stripe_double import StripeDouble
from tests.stripe_double.params import check


def test_a_value_outside_the_literal_is_refused_though_the_type_allows_any_str() -> None:
    # The premise of issue 10's finding 5: stripe-python's own type accepts any str, so mypy
    # passes a misspelling and only the double's check (or Stripe) refuses it.
    typed = str(SubscriptionUpdateParams.__annotations__["payment_behavior"])
    assert "'pending_if_incomplete'" in typed and "]|str" in typed.replace(" ", "")
    assert check({"payment_behavior": "pending_if_incomplet"}, SubscriptionUpdateParams) == [
        "Invalid payment_behavior: must be one of allow_incomplete, default_incomplete, "
        "error_if_incomplete, pending_if_incomplete"
    ]
    assert check({"payment_behavior": "pending_if_incomplete"}, SubscriptionUpdateParams) == []
    # Stripe's "unset" value and free strings stay allowed where the type has no enum.
    assert check({"description": ""}, SubscriptionUpdateParams) == []
    assert check({"metadata": {"k": "v"}}, SubscriptionUpdateParams) == []


def test_a_misspelt_enum_sent_to_the_double_is_refused_and_recorded_as_a_violation(
    clock: ControllableClock, catalog: Catalog
) -> None:
    double = StripeDouble(clock).start()
    try:
        double.seed_catalog(catalog)
        gateway = StripeGateway(double.client(), catalog, clock)
        sub = subscribe(gateway, double, catalog)
        misspelt = cast("Any", {"proration_behavior": "always_invoiced"})
        with pytest.raises(stripe.InvalidRequestError):
            double.client().v1.subscriptions.update(
                sub.subscription_ref, misspelt, {"idempotency_key": "enum:1"}
            )
    finally:
        double.stop()
    assert len(double.violations) == 1  # what running_double (every fixture) fails a test on
    assert "proration_behavior" in double.violations[0]


def test_a_dashboard_cancel_at_shows_as_canceling_and_resume_clears_it(
    clock: ControllableClock, catalog: Catalog
) -> None:
    from datetime import timedelta

    double = StripeDouble(clock).start()
    try:
        double.seed_catalog(catalog)
        gateway = StripeGateway(double.client(), catalog, clock)
        sub = subscribe(gateway, double, catalog)
        double.dashboard_cancel_at(sub.subscription_ref, sub.current_period_end)

        assert gateway.get_subscription(sub.subscription_ref).cancel_at_period_end
        resumed = gateway.resume(subscription_ref=sub.subscription_ref, idempotency_key="r:1")
        assert not resumed.cancel_at_period_end
        assert double.subscription(sub.subscription_ref)["cancel_at"] is None
        double.advance_to(sub.current_period_end + timedelta(hours=1))
        assert gateway.get_subscription(sub.subscription_ref).status.value == "active"
    finally:
        double.stop()
    assert double.violations == []
