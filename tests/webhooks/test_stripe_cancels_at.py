"""A cancellation date set in the Stripe Dashboard shows in `GET /billing/subscription`; resume clears it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from litestar.testing import TestClient

from adapters.container import Container
from adapters.fake.clock import ControllableClock
from tests.stripe_double import StripeDouble
from tests.webhooks.conftest import Stripe, headers, sign_up, subscription_shown


def test_a_dashboard_cancellation_date_shows_as_cancels_at_and_resume_clears_it(
    stripe: Stripe,
    client: TestClient[Any],
    double: StripeDouble,
    container: Container,
    clock: ControllableClock,
) -> None:
    sign_up(client, double, "acct_dated", "growth")
    stripe.deliver_new()
    container.process_inbox().run_once(limit=100)
    before = subscription_shown(client, "acct_dated")
    clock.advance(timedelta(minutes=5))
    sub_id = double.state.all("subscription")[0]["id"]
    on = datetime(2026, 5, 15, 12, 0, tzinfo=UTC)  # in a later period than the current one

    double.dashboard_cancel_at(sub_id, on)
    stripe.deliver_new()
    container.process_inbox().run_once(limit=100)
    dated = subscription_shown(client, "acct_dated")
    clock.advance(timedelta(minutes=5))
    resumed = client.post("/billing/subscription/resume", headers=headers("acct_dated"))
    after = subscription_shown(client, "acct_dated")

    assert (before["cancel_at_period_end"], before["cancels_at"]) == (False, None)
    assert dated["cancel_at_period_end"] is True
    assert dated["cancels_at"] == "2026-05-15T12:00:00Z"
    assert resumed.status_code == 200, resumed.text
    assert (resumed.json()["cancel_at_period_end"], resumed.json()["cancels_at"]) == (False, None)
    assert (after["cancel_at_period_end"], after["cancels_at"]) == (False, None)
    assert double.subscription(sub_id)["cancel_at"] is None


def test_a_cancellation_at_period_end_shows_the_period_end_as_cancels_at(
    stripe: Stripe, client: TestClient[Any], double: StripeDouble, container: Container
) -> None:
    sign_up(client, double, "acct_period", "starter")

    canceled = client.post("/billing/subscription/cancel", headers=headers("acct_period"))

    assert canceled.status_code == 200, canceled.text
    body = canceled.json()
    assert body["cancel_at_period_end"] is True
    assert body["cancels_at"] == body["current_period_end"]
