"""Issue 10, finding 2 in Stripe mode: an upgrade the bank must confirm (3-D Secure).

Through the real API and POST /webhooks/stripe: the 402 carries Stripe's hosted invoice page and
the PaymentIntent's client secret; paying that invoice later applies the plan
(`customer.subscription.pending_update_applied`); leaving it lets the pending update expire
(`customer.subscription.pending_update_expired`) and the account stays on its plan.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
from litestar.testing import TestClient

from responseiq_billing.adapters.container import Container
from responseiq_billing.adapters.fake.clock import ControllableClock
from responseiq_billing.application.ports import InboxStatus
from tests.stripe_double import StripeDouble
from tests.webhooks.conftest import Stripe, headers, sign_up, subscription_shown
from tests.webhooks.harness import inbox_rows


def apply(stripe: Stripe, container: Container) -> list[str]:
    """Stripe delivers what it emitted since last time; one worker pass applies it."""
    events = stripe.deliver_new()
    report = container.process_inbox().run_once(limit=100)
    assert report.failed == 0
    return [event["type"] for event in events]


def upgrade_needing_the_bank(
    stripe: Stripe,
    client: TestClient[Any],
    double: StripeDouble,
    container: Container,
    clock: ControllableClock,
    account: str,
) -> httpx.Response:
    sign_up(client, double, account, "starter")
    apply(stripe, container)
    clock.advance(timedelta(minutes=5))
    double.require_action_next_payment()
    return client.post(
        "/billing/subscription/change",
        headers=headers(account),
        json={"plan": "business", "interval": "month"},
    )


def test_the_402_names_stripes_invoice_page_and_client_secret_and_paying_later_applies_the_plan(
    stripe: Stripe,
    client: TestClient[Any],
    double: StripeDouble,
    container: Container,
    clock: ControllableClock,
) -> None:
    answer = upgrade_needing_the_bank(stripe, client, double, container, clock, "acct_sca")
    waiting = apply(stripe, container)
    still = subscription_shown(client, "acct_sca")
    clock.advance(timedelta(minutes=30))
    invoice_id = answer.json()["hosted_invoice_url"].rsplit("/", 1)[-1].removeprefix("test_")
    double.pay_open_invoice(invoice_id)  # the customer confirms on Stripe's page
    paid = apply(stripe, container)
    after = subscription_shown(client, "acct_sca")

    assert answer.status_code == 402, answer.text
    body = answer.json()
    assert body["code"] == "payment.action_required"
    assert (
        body["hosted_invoice_url"] == double.state.get(invoice_id, "invoice")["hosted_invoice_url"]
    )
    [intent] = double.state.all("payment_intent", lambda pi: pi["amount"] != 1900)
    assert body["client_secret"] == intent["client_secret"]  # what Stripe.js confirms with
    assert "invoice.payment_action_required" in waiting
    assert still["plan"] == "starter"
    assert "customer.subscription.pending_update_applied" in paid
    assert (after["plan"], after["status"]) == ("business", "active")
    assert {row.status for row in inbox_rows(container)} == {InboxStatus.APPLIED}


def test_left_unconfirmed_the_pending_update_expires_and_the_account_stays_on_its_plan(
    stripe: Stripe,
    client: TestClient[Any],
    double: StripeDouble,
    container: Container,
    clock: ControllableClock,
) -> None:
    answer = upgrade_needing_the_bank(stripe, client, double, container, clock, "acct_left")
    apply(stripe, container)
    sub_id = double.state.all("subscription")[0]["id"]

    double.advance_to(clock.now() + timedelta(hours=24))
    expired = apply(stripe, container)
    shown = subscription_shown(client, "acct_left")
    double.advance_to(clock.now() + timedelta(days=40))  # past the renewal
    apply(stripe, container)
    renewed = subscription_shown(client, "acct_left")

    assert answer.status_code == 402, answer.text
    assert "customer.subscription.pending_update_expired" in expired
    assert double.subscription(sub_id)["pending_update"] is None
    assert (shown["plan"], shown["status"]) == ("starter", "active")
    assert (renewed["plan"], renewed["status"]) == ("starter", "active")
    assert renewed["current_period_start"] == "2026-04-01T09:00:00Z"
    assert {row.status for row in inbox_rows(container)} == {InboxStatus.APPLIED}
