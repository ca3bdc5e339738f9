"""A cancellation date set in the Stripe Dashboard shows in `GET /billing/subscription`; resume clears it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from litestar.testing import TestClient

from responseiq_billing.adapters.container import Container
from responseiq_billing.adapters.fake.clock import ControllableClock
from responseiq_billing.application.ports import InboxStatus
from tests.stripe_double import StripeDouble
from tests.webhooks.conftest import Stripe, headers, sign_up, subscription_shown
from tests.webhooks.harness import inbox_rows


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


def test_a_dashboard_date_inside_the_period_ends_access_then_and_no_invoice_charges_for_it(
    stripe: Stripe, client: TestClient[Any], double: StripeDouble, container: Container
) -> None:
    """The Dashboard's "cancel on a custom date" inside the paid period, through the real
    webhook route: the subscription shows the date, access runs until that moment (and not a
    second longer, webhook or not), the subscription then ends at the date rather than at the
    period end, and the invoice list shows Stripe's final invoice as nothing due and nothing
    paid: the unused time went to the Stripe customer balance, which the service does not show."""
    sign_up(client, double, "acct_cut", "growth")
    stripe.deliver_new()
    container.process_inbox().run_once(limit=100)
    start = datetime.fromisoformat(subscription_shown(client, "acct_cut")["current_period_start"])
    sub_id = double.state.all("subscription")[0]["id"]
    customer_id = double.state.all("customer")[0]["id"]
    on = start + timedelta(days=20)

    double.advance_to(start + timedelta(days=10))
    double.dashboard_cancel_at(sub_id, on)
    stripe.deliver_new()
    container.process_inbox().run_once(limit=100)
    dated = subscription_shown(client, "acct_cut")
    double.advance_to(on - timedelta(hours=1))
    last_hour = entitlements(client, "acct_cut")
    double.advance_to(on + timedelta(hours=1))
    undelivered = entitlements(client, "acct_cut")  # the webhook has not arrived yet
    events = stripe.deliver_new()
    container.process_inbox().run_once(limit=100)
    ended = subscription_shown(client, "acct_cut")
    listed = client.get("/billing/invoices", headers=headers("acct_cut"))

    assert (dated["status"], dated["cancel_at_period_end"]) == ("active", True)
    assert dated["cancels_at"] == dated["access_until"] == "2026-03-21T09:00:00Z"
    assert dated["current_period_end"] == "2026-04-01T09:00:00Z"
    assert (last_hour["plan"], last_hour["reason"]) == ("growth", "canceling")
    assert last_hour["access_until"] == "2026-03-21T09:00:00Z"
    assert (undelivered["plan"], undelivered["reason"]) == (None, "none")
    assert [e["type"] for e in events][:2] == ["customer.subscription.deleted", "invoice.finalized"]
    assert ended["status"] == "canceled" and ended["cancels_at"] is None
    with container.uow()() as uow:
        stored = uow.subscriptions.for_account("acct_cut")
    assert stored is not None and stored.ended_at == on
    assert {row.status for row in inbox_rows(container)} == {InboxStatus.APPLIED}
    assert listed.status_code == 200, listed.text
    final, first = listed.json()["data"]
    assert (first["billing_reason"], first["amount_paid"]) == ("subscription_create", 4900)
    assert (final["billing_reason"], final["status"]) == ("subscription_cycle", "paid")
    assert (final["amount_due"], final["amount_paid"]) == (0, 0)  # no charge, no refund
    assert (final["period_start"], final["period_end"]) == (
        "2026-03-21T09:00:00Z",
        "2026-04-01T09:00:00Z",
    )
    # 11 of the period's 31 days unused: 4900 * 11 / 31 = 1738.7 -> 1739 of credit at Stripe.
    assert double.customer(customer_id)["balance"] == -1739


def entitlements(client: TestClient[Any], account_id: str) -> dict[str, Any]:
    shown: dict[str, Any] = client.get("/billing/entitlements", headers=headers(account_id)).json()
    return shown
