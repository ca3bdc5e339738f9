"""Sandbox pages: hosted checkout, setup and portal stand-ins, labelled, with no card fields."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from litestar.testing import TestClient

from responseiq_billing.adapters.app import create_app
from responseiq_billing.adapters.config import Settings
from responseiq_billing.adapters.container import build_container
from responseiq_billing.adapters.fake.pages import BANNER
from tests.http.conftest import SECRET, bearer

ACCOUNT = "acct_sandbox"
H = bearer(ACCOUNT)


def _assert_no_card_fields(page: str) -> None:
    inputs = re.findall(r"<input[^>]*>", page)
    assert inputs, "the page offers its choices as forms"
    assert all('type="hidden"' in tag for tag in inputs)
    for word in ("cvc", "cvv", "card number", "expiry", 'name="number"', "<textarea", "<select"):
        assert word not in page.lower()


def _checkout(client: TestClient, plan: str = "growth") -> str:
    body = client.post("/billing/checkout", headers=H, json={"plan": plan, "interval": "month"})
    checkout_id: str = body.json()["checkout_id"]
    return checkout_id


def _portal(client: TestClient) -> str:
    url: str = client.post("/billing/portal", headers=H, json={}).json()["url"]
    return url.removeprefix("http://127.0.0.1:8000")


def test_the_checkout_page_is_labelled_and_offers_test_cards_as_buttons(
    client: TestClient,
) -> None:
    page = client.get(f"/sandbox/checkout/{_checkout(client)}")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert BANNER in page.text
    assert "visa •••• 4242" in page.text
    assert "49.00 USD" in page.text
    _assert_no_card_fields(page.text)


def test_a_declined_test_card_stays_on_the_checkout_and_starts_nothing(
    client: TestClient,
) -> None:
    checkout_id = _checkout(client)
    declined = client.post(
        f"/sandbox/checkout/{checkout_id}/complete",
        data={"outcome": "declined", "card": "visa"},
        follow_redirects=False,
    )
    assert declined.status_code == 303
    assert declined.headers["location"] == f"/sandbox/checkout/{checkout_id}?declined=1"
    assert "declined" in client.get(declined.headers["location"]).text
    assert client.get("/billing/subscription", headers=H).status_code == 404


def test_an_unknown_checkout_is_a_404_page(client: TestClient) -> None:
    page = client.get("/sandbox/checkout/cs_nope")
    assert page.status_code == 404
    assert "checkout.not_found" in page.text


def test_a_completed_checkout_page_links_back(
    client: TestClient, subscribed: Callable[..., str]
) -> None:
    checkout_id = subscribed(ACCOUNT)
    page = client.get(f"/sandbox/checkout/{checkout_id}")
    assert "This checkout is complete" in page.text


def test_the_checkout_return_page_shows_the_subscription_as_it_is_now(
    client: TestClient, subscribed: Callable[..., str]
) -> None:
    checkout_id = subscribed(ACCOUNT, "growth", "month")
    back = f"/?checkout=success&checkout_id={checkout_id}"
    assert "growth plan is active, billed 49.00 USD per month." in client.get(back).text
    preview = client.post(
        "/billing/subscription/preview", headers=H, json={"plan": "business", "interval": "month"}
    ).json()
    client.post(
        "/billing/subscription/change",
        headers=H,
        json={"plan": "business", "interval": "month", "quote_id": preview["quote_id"]},
    )
    client.post("/billing/subscription/cancel", headers=H)
    page = client.get(back).text
    assert "business plan is active, billed 99.00 USD per month until the period ends." in page
    assert "growth" not in page


def test_the_setup_page_has_no_card_fields_and_a_decline_changes_nothing(
    client: TestClient, subscribed: Callable[..., str]
) -> None:
    subscribed(ACCOUNT)
    setup_id = client.post("/billing/payment-method/setup", headers=H).json()["setup_id"]
    page = client.get(f"/sandbox/setup/{setup_id}")
    assert BANNER in page.text
    _assert_no_card_fields(page.text)
    client.post(f"/sandbox/setup/{setup_id}/complete", data={"outcome": "declined"})
    sub = client.get("/billing/subscription", headers=H).json()
    assert sub["payment_method"] == {"brand": "visa", "last4": "4242"}


def test_the_portal_shows_the_plan_and_its_upgrade_reaches_our_state(
    client: TestClient, subscribed: Callable[..., str]
) -> None:
    subscribed(ACCOUNT, "growth")
    portal = _portal(client)
    page = client.get(portal)
    assert BANNER in page.text
    assert "growth (monthly)" in page.text
    _assert_no_card_fields(page.text)
    done = client.post(
        f"{portal}/change-plan",
        data={"plan": "business", "interval": "month"},
        follow_redirects=False,
    )
    assert done.status_code == 303
    assert done.headers["location"] == portal
    sub = client.get("/billing/subscription", headers=H).json()
    assert sub["plan"] == "business"
    assert sub["features"]["seats"] is None


def test_a_portal_downgrade_is_scheduled_and_takes_effect_when_the_clock_passes_the_period_end(
    client: TestClient, subscribed: Callable[..., str]
) -> None:
    subscribed(ACCOUNT, "growth")
    portal = _portal(client)
    client.post(f"{portal}/change-plan", data={"plan": "starter", "interval": "month"})
    sub = client.get("/billing/subscription", headers=H).json()
    assert sub["plan"] == "growth"
    assert sub["pending_change"]["plan"] == "starter"
    advanced = client.post("/sandbox/clock/advance", json={"days": 31})
    assert advanced.status_code == 200
    assert advanced.json() == {"now": "2026-04-01T09:00:00Z"}
    sub = client.get("/billing/subscription", headers=H).json()
    assert (sub["plan"], sub["pending_change"]) == ("starter", None)
    assert sub["current_period_start"] == "2026-04-01T09:00:00Z"


def test_portal_cancel_resume_and_payment_method_reach_our_state(
    client: TestClient, subscribed: Callable[..., str]
) -> None:
    subscribed(ACCOUNT)
    portal = _portal(client)
    client.post(f"{portal}/cancel")
    assert client.get("/billing/subscription", headers=H).json()["cancel_at_period_end"] is True
    assert "Renew plan" in client.get(portal).text
    client.post(f"{portal}/resume")
    assert client.get("/billing/subscription", headers=H).json()["cancel_at_period_end"] is False
    client.post(f"{portal}/payment-method", data={"card": "amex"})
    method = client.get("/billing/subscription", headers=H).json()["payment_method"]
    assert method == {"brand": "amex", "last4": "8431"}


def test_a_refused_portal_action_is_shown_as_a_page(
    client: TestClient, subscribed: Callable[..., str]
) -> None:
    subscribed(ACCOUNT, "growth")
    portal = _portal(client)
    same = client.post(f"{portal}/change-plan", data={"plan": "growth", "interval": "month"})
    assert same.status_code == 409
    assert same.headers["content-type"].startswith("text/html")
    assert "plan_change.same_plan" in same.text


def test_the_portal_lists_invoices_with_pdf_links_and_a_hosted_page(
    client: TestClient, subscribed: Callable[..., str]
) -> None:
    subscribed(ACCOUNT)
    page = client.get(_portal(client)).text
    pdf_links = re.findall(r'href="http://127\.0\.0\.1:8000(/sandbox/invoices/[^"]+\.pdf)"', page)
    assert len(pdf_links) == 1
    assert client.get(pdf_links[0]).content.startswith(b"%PDF-")
    hosted = client.get(pdf_links[0].removesuffix(".pdf"))
    assert "Download PDF" in hosted.text


def test_cancelling_then_advancing_past_the_period_end_ends_access(
    client: TestClient, subscribed: Callable[..., str]
) -> None:
    subscribed(ACCOUNT)
    client.post("/billing/subscription/cancel", headers=H)
    client.post("/sandbox/clock/advance", json={"days": 31})
    entitlements = client.get("/billing/entitlements", headers=H).json()
    assert entitlements["plan"] is None
    assert client.get("/billing/subscription", headers=H).json()["status"] == "canceled"


@pytest.mark.parametrize("days", [-1, 3661])
def test_the_clock_moves_forward_within_bounds_only(client: TestClient, days: int) -> None:
    response = client.post("/sandbox/clock/advance", json={"days": days})
    assert response.status_code == 422


def test_with_the_stripe_gateway_no_sandbox_route_exists() -> None:
    settings = Settings.from_env(
        {
            "STRIPE_API_KEY": "sk_test_not_used",
            "BILLING_AUTH_SECRET": SECRET,
            "BILLING_PUBLIC_URL": "https://billing.example.com",
            "BILLING_DATABASE_URL": "memory://",
        }
    )
    app = create_app(build_container(settings))
    paths = {route.path for route in app.routes}
    assert not any(path.startswith("/sandbox") for path in paths)
    assert "/billing/plans" in paths
    with TestClient(app) as client:
        for path in ("/sandbox/checkout/cs_1", "/sandbox/portal/bps_1", "/sandbox/invoices/x.pdf"):
            assert client.get(path).status_code == 404
        assert client.post("/sandbox/clock/advance", json={"days": 1}).status_code == 404
        schema = client.get("/schema/openapi.json").json()
        assert not any(p.startswith("/sandbox") for p in schema["paths"])


def test_a_card_that_requires_authentication_pays_the_checkout_after_the_banks_check(
    client: TestClient,
) -> None:
    checkout_id = _checkout(client)
    page = client.get(f"/sandbox/checkout/{checkout_id}")
    assert "visa •••• 3184 (requires authentication)" in page.text

    asked = client.post(
        f"/sandbox/checkout/{checkout_id}/complete",
        data={"outcome": "succeeded", "card": "authenticate"},
        follow_redirects=False,
    )
    assert asked.status_code == 303
    assert asked.headers["location"] == f"/sandbox/checkout/{checkout_id}/authenticate"
    check = client.get(asked.headers["location"])
    assert "3-D Secure" in check.text and BANNER in check.text
    _assert_no_card_fields(check.text)
    assert client.get("/billing/subscription", headers=H).status_code == 404  # not paid yet

    failed = client.post(
        asked.headers["location"],
        data={"outcome": "declined", "card": "authenticate"},
        follow_redirects=False,
    )
    assert failed.headers["location"] == f"/sandbox/checkout/{checkout_id}?declined=1"
    assert client.get("/billing/subscription", headers=H).status_code == 404
    confirmed = client.post(
        asked.headers["location"],
        data={"outcome": "succeeded", "card": "authenticate"},
        follow_redirects=False,
    )

    assert confirmed.status_code == 303
    assert "checkout=success" in confirmed.headers["location"]
    sub = client.get("/billing/subscription", headers=H).json()
    assert sub["plan"] == "growth"
    assert sub["payment_method"] == {"brand": "visa", "last4": "3184"}


def test_a_portal_upgrade_on_a_card_that_requires_authentication_waits_for_the_bank(
    client: TestClient, subscribed: Callable[..., str]
) -> None:
    subscribed(ACCOUNT, "growth")
    portal = _portal(client)
    assert "visa •••• 3184 (requires authentication)" in client.get(portal).text
    client.post(f"{portal}/payment-method", data={"card": "authenticate"})

    asked = client.post(
        f"{portal}/change-plan",
        data={"plan": "business", "interval": "month"},
        follow_redirects=False,
    )
    assert asked.status_code == 303
    assert asked.headers["location"].startswith("/sandbox/authenticate/")
    assert client.get("/billing/subscription", headers=H).json()["plan"] == "growth"
    assert "Confirm with the bank" in client.get(asked.headers["location"]).text
    confirmed = client.post(asked.headers["location"], follow_redirects=False)

    assert confirmed.status_code == 303
    sub = client.get("/billing/subscription", headers=H).json()
    assert sub["plan"] == "business"
    assert sub["payment_method"] == {"brand": "visa", "last4": "3184"}
    # The page takes one confirmation: the upgrade is not charged twice.
    assert "no longer waiting" in client.get(asked.headers["location"]).text
