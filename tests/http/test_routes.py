"""Every route's happy path through HTTP, against the sandbox gateway and in-memory storage."""

from __future__ import annotations

from collections.abc import Callable

from litestar.testing import TestClient

from responseiq_billing.adapters.fake.gateway import FakeGateway
from tests.http.conftest import bearer

ACCOUNT = "acct_alpha"
H = bearer(ACCOUNT)


def test_plans_lists_the_catalog_with_prices_and_features(client: TestClient) -> None:
    response = client.get("/billing/plans", headers=H)
    assert response.status_code == 200
    plans = response.json()["data"]
    assert [p["id"] for p in plans] == ["starter", "growth", "business"]
    assert plans[1]["prices"] == [
        {"interval": "month", "amount": {"amount": 4900, "currency": "USD"}},
        {"interval": "year", "amount": {"amount": 49000, "currency": "USD"}},
    ]
    assert plans[2]["features"] == {
        "seats": None,
        "monthly_responses": 100000,
        "flags": ["ai_replies", "priority_support", "sso"],
    }


def test_subscription_is_not_found_before_any_checkout(client: TestClient) -> None:
    response = client.get("/billing/subscription", headers=H)
    assert response.status_code == 404
    assert response.json()["code"] == "subscription.not_found"


def test_entitlements_without_a_subscription_grant_nothing(client: TestClient) -> None:
    response = client.get("/billing/entitlements", headers=H)
    assert response.json() == {
        "plan": None,
        "features": {"seats": 0, "monthly_responses": 0, "flags": []},
        "access_until": None,
        "reason": "none",
    }


def test_checkout_returns_a_sandbox_page_url_and_paying_starts_the_subscription(
    client: TestClient,
) -> None:
    started = client.post(
        "/billing/checkout", headers=H, json={"plan": "growth", "interval": "month"}
    )
    assert started.status_code == 201
    body = started.json()
    assert body["url"] == f"http://127.0.0.1:8000/sandbox/checkout/{body['checkout_id']}"
    assert body["client_secret"] is None
    paid = client.post(
        f"/sandbox/checkout/{body['checkout_id']}/complete",
        data={"outcome": "succeeded", "card": "visa"},
        follow_redirects=False,
    )
    assert paid.status_code == 303
    assert paid.headers["location"] == (
        f"http://127.0.0.1:8000/?checkout=success&checkout_id={body['checkout_id']}"
    )
    sub = client.get("/billing/subscription", headers=H).json()
    assert sub == {
        "plan": "growth",
        "interval": "month",
        "status": "active",
        "current_period_start": "2026-03-01T09:00:00Z",
        "current_period_end": "2026-04-01T09:00:00Z",
        "cancel_at_period_end": False,
        "cancels_at": None,
        "pending_change": None,
        "payment_method": {"brand": "visa", "last4": "4242"},
        "features": {"seats": 10, "monthly_responses": 10000, "flags": ["ai_replies"]},
        "access_until": None,
    }


def test_embedded_checkout_returns_a_client_secret_and_the_return_url_is_the_callers(
    client: TestClient, fake: FakeGateway
) -> None:
    response = client.post(
        "/billing/checkout",
        headers=H,
        json={
            "plan": "starter",
            "interval": "year",
            "ui_mode": "embedded",
            "return_url": "https://app.example.com/billing?tab=plan",
        },
    )
    assert response.status_code == 201
    assert response.json()["client_secret"]
    # Embedded checkout has one return URL: the caller's, with the session id filled in later.
    returned = fake.checkout_return_url(response.json()["checkout_id"])
    assert returned.startswith("https://app.example.com/billing?tab=plan")


def test_entitlements_follow_the_subscription(
    client: TestClient, subscribed: Callable[..., str]
) -> None:
    subscribed(ACCOUNT, "business", "year")
    response = client.get("/billing/entitlements", headers=H).json()
    assert response["plan"] == "business"
    assert response["features"]["flags"] == ["ai_replies", "priority_support", "sso"]
    assert response["reason"] == "active"


def test_portal_url_points_at_the_sandbox_portal_for_this_customer(
    client: TestClient, subscribed: Callable[..., str], fake: FakeGateway
) -> None:
    subscribed(ACCOUNT)
    response = client.post(
        "/billing/portal", headers=H, json={"return_url": "https://app.example.com/settings"}
    )
    assert response.status_code == 201
    url = response.json()["url"]
    portal_id = url.rsplit("/", 1)[1]
    assert url.startswith("http://127.0.0.1:8000/sandbox/portal/")
    assert fake.portal_return_url(portal_id) == "https://app.example.com/settings"


def test_portal_without_a_body_returns_to_the_public_url(
    client: TestClient, subscribed: Callable[..., str], fake: FakeGateway
) -> None:
    subscribed(ACCOUNT)
    url = client.post("/billing/portal", headers=H).json()["url"]
    assert fake.portal_return_url(url.rsplit("/", 1)[1]) == "http://127.0.0.1:8000"


def test_preview_of_an_upgrade_quotes_the_prorated_charge_now(
    client: TestClient, subscribed: Callable[..., str]
) -> None:
    subscribed(ACCOUNT, "growth", "month")
    response = client.post(
        "/billing/subscription/preview", headers=H, json={"plan": "business", "interval": "month"}
    )
    assert response.status_code == 200
    quote = response.json()
    assert quote["timing"] == "immediate"
    # Upgraded at the very start of the period: the whole difference, 99.00 - 49.00.
    assert quote["amount_due_now"] == {"amount": 5000, "currency": "USD"}
    assert quote["effective_at"] == "2026-03-01T09:00:00Z"
    assert quote["expires_at"] == "2026-03-01T09:30:00Z"
    assert quote["quote_id"].startswith("qt_")


def test_preview_of_a_downgrade_charges_nothing_and_waits_for_the_period_end(
    client: TestClient, subscribed: Callable[..., str]
) -> None:
    subscribed(ACCOUNT, "growth", "month")
    quote = client.post(
        "/billing/subscription/preview", headers=H, json={"plan": "starter", "interval": "month"}
    ).json()
    assert quote["timing"] == "end_of_period"
    assert quote["amount_due_now"] == {"amount": 0, "currency": "USD"}
    assert quote["effective_at"] == "2026-04-01T09:00:00Z"


def test_change_with_a_quote_upgrades_now_and_charges_what_the_preview_showed(
    client: TestClient, subscribed: Callable[..., str], fake: FakeGateway
) -> None:
    subscribed(ACCOUNT, "growth", "month")
    fake.advance_to(fake.get_subscription(_sub_ref(fake)).current_period_start.replace(day=11))
    quote = client.post(
        "/billing/subscription/preview", headers=H, json={"plan": "business", "interval": "month"}
    ).json()
    changed = client.post(
        "/billing/subscription/change",
        headers=H,
        json={"plan": "business", "interval": "month", "quote_id": quote["quote_id"]},
    )
    assert changed.status_code == 200
    assert changed.json()["plan"] == "business"
    assert changed.json()["features"]["flags"] == ["ai_replies", "priority_support", "sso"]
    invoices = client.get("/billing/invoices", headers=H).json()["data"]
    assert invoices[0]["billing_reason"] == "subscription_update"
    assert invoices[0]["amount_paid"] == quote["amount_due_now"]["amount"]


def test_change_to_a_cheaper_plan_is_scheduled_and_can_be_withdrawn(
    client: TestClient, subscribed: Callable[..., str]
) -> None:
    subscribed(ACCOUNT, "growth", "month")
    changed = client.post(
        "/billing/subscription/change", headers=H, json={"plan": "starter", "interval": "month"}
    ).json()
    assert changed["plan"] == "growth"
    assert changed["pending_change"] == {
        "plan": "starter",
        "interval": "month",
        "effective_at": "2026-04-01T09:00:00Z",
    }
    withdrawn = client.delete("/billing/subscription/pending-change", headers=H)
    assert withdrawn.status_code == 200
    assert withdrawn.json()["pending_change"] is None
    assert withdrawn.json()["plan"] == "growth"


def test_cancel_keeps_access_until_the_period_end_and_resume_undoes_it(
    client: TestClient, subscribed: Callable[..., str]
) -> None:
    subscribed(ACCOUNT)
    canceled = client.post("/billing/subscription/cancel", headers=H)
    assert canceled.status_code == 200
    assert canceled.json()["cancel_at_period_end"] is True
    assert canceled.json()["access_until"] == "2026-04-01T09:00:00Z"
    entitlements = client.get("/billing/entitlements", headers=H).json()
    assert entitlements["plan"] == "growth"
    assert entitlements["access_until"] == "2026-04-01T09:00:00Z"
    resumed = client.post("/billing/subscription/resume", headers=H)
    assert resumed.status_code == 200
    assert resumed.json()["cancel_at_period_end"] is False
    assert resumed.json()["access_until"] is None


def test_payment_method_setup_through_the_sandbox_becomes_the_default(
    client: TestClient, subscribed: Callable[..., str]
) -> None:
    subscribed(ACCOUNT)
    started = client.post(
        "/billing/payment-method/setup",
        headers=H,
        json={"return_url": "https://app.example.com/billing"},
    )
    assert started.status_code == 201
    setup_id = started.json()["setup_id"]
    assert started.json()["url"].endswith(f"/sandbox/setup/{setup_id}")
    done = client.post(
        f"/sandbox/setup/{setup_id}/complete",
        data={"outcome": "succeeded", "card": "mastercard"},
        follow_redirects=False,
    )
    assert done.status_code == 303
    assert done.headers["location"] == (
        f"https://app.example.com/billing?setup=success&setup_id={setup_id}"
    )
    sub = client.get("/billing/subscription", headers=H).json()
    assert sub["payment_method"] == {"brand": "mastercard", "last4": "4444"}
    # The return page confirms it through the API too; repeating it changes nothing.
    confirmed = client.post(f"/billing/payment-method/setup/{setup_id}/complete", headers=H)
    assert confirmed.status_code == 200, confirmed.text
    assert confirmed.json() == {
        "status": "complete",
        "payment_method": {"brand": "mastercard", "last4": "4444"},
    }


def test_another_account_cannot_complete_a_payment_method_setup(
    client: TestClient, subscribed: Callable[..., str]
) -> None:
    subscribed(ACCOUNT)
    subscribed("acct_other")
    setup_id = client.post("/billing/payment-method/setup", headers=H).json()["setup_id"]
    client.post(
        f"/sandbox/setup/{setup_id}/complete",
        data={"outcome": "succeeded", "card": "mastercard"},
        follow_redirects=False,
    )
    stolen = client.post(
        f"/billing/payment-method/setup/{setup_id}/complete", headers=bearer("acct_other")
    )
    assert (stolen.status_code, stolen.json()["code"]) == (404, "checkout.not_found")
    theirs = client.get("/billing/subscription", headers=bearer("acct_other")).json()
    assert theirs["payment_method"] == {"brand": "visa", "last4": "4242"}


def test_the_checkout_return_records_the_subscription_and_is_idempotent(
    client: TestClient, subscribed: Callable[..., str]
) -> None:
    checkout_id = subscribed(ACCOUNT, "business", "year")
    first = client.post(f"/billing/checkout/{checkout_id}/complete", headers=H)
    again = client.post(f"/billing/checkout/{checkout_id}/complete", headers=H)
    assert first.status_code == again.status_code == 200
    assert first.json()["status"] == "complete"
    assert first.json()["subscription"]["plan"] == "business"
    assert again.json() == first.json()
    other = client.post(f"/billing/checkout/{checkout_id}/complete", headers=bearer("acct_other"))
    assert (other.status_code, other.json()["code"]) == (404, "checkout.not_found")


def test_an_unpaid_checkout_return_says_it_is_still_open(client: TestClient) -> None:
    started = client.post(
        "/billing/checkout", headers=H, json={"plan": "growth", "interval": "month"}
    )
    checkout_id = started.json()["checkout_id"]
    pending = client.post(f"/billing/checkout/{checkout_id}/complete", headers=H)
    assert pending.status_code == 200
    assert pending.json() == {"status": "open", "subscription": None}
    assert client.get("/billing/subscription", headers=H).status_code == 404


def test_invoices_page_with_limit_and_starting_after(
    client: TestClient, subscribed: Callable[..., str]
) -> None:
    subscribed(ACCOUNT)
    client.post("/sandbox/clock/advance", json={"days": 31})
    client.post("/sandbox/clock/advance", json={"days": 31})
    first = client.get("/billing/invoices", headers=H, params={"limit": 2}).json()
    assert len(first["data"]) == 2
    assert first["has_more"] is True
    assert [i["billing_reason"] for i in first["data"]] == ["subscription_cycle"] * 2
    rest = client.get(
        "/billing/invoices",
        headers=H,
        params={"limit": 2, "starting_after": first["data"][-1]["id"]},
    ).json()
    assert [i["billing_reason"] for i in rest["data"]] == ["subscription_create"]
    assert rest["has_more"] is False


def test_invoice_pdf_redirects_to_the_sandbox_document_which_is_a_pdf(
    client: TestClient, subscribed: Callable[..., str]
) -> None:
    subscribed(ACCOUNT)
    invoice = client.get("/billing/invoices", headers=H).json()["data"][0]
    response = client.get(
        f"/billing/invoices/{invoice['id']}/pdf", headers=H, follow_redirects=False
    )
    assert response.status_code == 302
    assert response.headers["location"] == invoice["pdf_url"]
    pdf = client.get(response.headers["location"].removeprefix("http://127.0.0.1:8000"))
    assert pdf.status_code == 200
    assert pdf.headers["content-type"] == "application/pdf"
    assert pdf.content.startswith(b"%PDF-")


def test_health_and_ready(client: TestClient) -> None:
    assert client.get("/health").json() == {"status": "ok"}
    assert client.get("/ready").json() == {"status": "ready"}


def test_the_idempotency_key_is_the_gateway_key_so_a_retry_never_charges_twice(
    client: TestClient, subscribed: Callable[..., str], fake: FakeGateway
) -> None:
    subscribed(ACCOUNT, "starter", "month")
    headers = {**H, "Idempotency-Key": "upgrade-42"}
    body = {"plan": "growth", "interval": "month"}
    first = client.post("/billing/subscription/change", headers=headers, json=body)
    again = client.post("/billing/subscription/change", headers=headers, json=body)
    assert first.status_code == 200
    # The retry finds the change already made; it is refused, not applied a second time.
    assert again.status_code == 409
    assert again.json()["code"] == "plan_change.same_plan"
    upgrades = [call for call in fake.calls if call.name == "upgrade"]
    assert [call.kwargs["idempotency_key"] for call in upgrades] == [
        f"plan-change:{ACCOUNT}:upgrade-42"
    ]
    invoices = client.get("/billing/invoices", headers=H).json()["data"]
    assert [i["billing_reason"] for i in invoices].count("subscription_update") == 1


def test_a_checkout_retried_with_the_same_key_returns_the_same_session(client: TestClient) -> None:
    body = {"plan": "growth", "interval": "month"}
    keyed = {**H, "Idempotency-Key": "checkout-1"}
    first = client.post("/billing/checkout", headers=keyed, json=body).json()
    again = client.post("/billing/checkout", headers=keyed, json=body).json()
    other = client.post("/billing/checkout", headers=H, json=body).json()
    assert again["checkout_id"] == first["checkout_id"]
    assert other["checkout_id"] != first["checkout_id"]


def _sub_ref(fake: FakeGateway) -> str:
    subscription = next(e.subscription_ref for e in fake.events if e.subscription_ref)
    assert subscription is not None
    return subscription
