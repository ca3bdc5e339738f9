"""Through the API and the sandbox pages: one payable checkout, and a second subscription undone."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from litestar.testing import TestClient

from responseiq_billing.adapters.fake.gateway import FakeGateway
from responseiq_billing.application.ports import UiMode
from responseiq_billing.domain.invoices import BillingReason
from tests.http.conftest import bearer

ACCOUNT = "acct_two_tabs"
H = bearer(ACCOUNT)
GROWTH = {"plan": "growth", "interval": "month"}


def _start(client: TestClient[Any], key: str | None = None) -> str:
    headers = {**H, "Idempotency-Key": key} if key else H
    started = client.post("/billing/checkout", headers=headers, json=GROWTH)
    assert started.status_code == 201, started.text
    checkout_id: str = started.json()["checkout_id"]
    return checkout_id


def _pay(client: TestClient[Any], checkout_id: str) -> Any:
    return client.post(
        f"/sandbox/checkout/{checkout_id}/complete",
        data={"outcome": "succeeded", "card": "visa"},
        follow_redirects=False,
    )


def test_a_replaced_checkout_page_says_it_has_expired_and_takes_no_payment(
    client: TestClient[Any],
) -> None:
    first, second = _start(client), _start(client)

    page = client.get(f"/sandbox/checkout/{first}")
    assert page.status_code == 200
    assert "has expired and can no longer be paid" in page.text
    assert "Pay with test visa" not in page.text
    refused = _pay(client, first)
    assert refused.status_code == 409 and "expired" in refused.text
    assert client.get("/billing/subscription", headers=H).status_code == 404

    assert "Pay with test visa" in client.get(f"/sandbox/checkout/{second}").text
    assert _pay(client, second).status_code == 303
    held = client.get("/billing/subscription", headers=H).json()
    assert (held["plan"], held["status"]) == ("growth", "active")


def test_the_same_idempotency_key_gives_the_same_checkout_and_keeps_it_payable(
    client: TestClient[Any],
) -> None:
    first = _start(client, key="tab-1-click")
    again = _start(client, key="tab-1-click")

    assert again == first
    assert "Pay with test visa" in client.get(f"/sandbox/checkout/{first}").text
    assert _pay(client, first).status_code == 303


def test_a_second_paid_subscription_is_refunded_and_the_pages_show_it(
    client: TestClient[Any], fake: FakeGateway
) -> None:
    ours = _start(client)
    customer = fake.get_checkout(ours).customer_ref
    assert customer is not None
    # A page opened elsewhere for the same customer, still open: both are paid.
    other = fake.start_checkout(
        customer_ref=customer,
        account_id=ACCOUNT,
        price=fake.checkout_price(ours),
        success_url="http://127.0.0.1:8000/?checkout=success&checkout_id={CHECKOUT_SESSION_ID}",
        cancel_url="http://127.0.0.1:8000/?checkout=canceled",
        ui_mode=UiMode.HOSTED,
        idempotency_key="elsewhere",
    ).id
    assert _pay(client, ours).status_code == 303
    assert _pay(client, other).status_code == 303

    [live] = [s for s in fake.customer_subscriptions(customer) if s.status.is_live]
    firsts = [
        i
        for i in fake.customer_invoices(customer)
        if i.billing_reason is BillingReason.SUBSCRIPTION_CREATE
    ]
    [refunded] = [i for i in firsts if i.subscription_ref != live.subscription_ref]
    invoice_page = client.get(f"/sandbox/invoices/{refunded.id}").text
    assert "Refunded" in invoice_page and "49.00 USD" in invoice_page
    portal = urlsplit(client.post("/billing/portal", headers=H).json()["url"]).path
    assert "refunded 49.00 USD" in client.get(portal).text
    held = client.get("/billing/subscription", headers=H).json()
    assert (held["plan"], held["status"]) == ("growth", "active")
