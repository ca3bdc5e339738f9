"""Checkout in a browser: the sandbox's hosted page, its test cards, and the way back."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from tests.e2e.conftest import Server
from tests.e2e.helpers import (
    assert_no_card_fields,
    assert_plainly_a_sandbox,
    status_text,
    subscription,
)

if TYPE_CHECKING:
    from playwright.sync_api import Page

ACCOUNT = "acct_e2e_checkout"


def test_paying_with_the_visa_test_card_lands_back_with_an_active_subscription(
    server: Server, page: Page, artifacts: Path
) -> None:
    api = server.api(ACCOUNT)
    started = api.post("/billing/checkout", json={"plan": "growth", "interval": "month"})
    assert started.status_code == 201, started.text
    checkout_id, url = started.json()["checkout_id"], started.json()["url"]

    page.goto(url)
    assert_plainly_a_sandbox(page)
    assert_no_card_fields(page)
    summary = page.locator("table").inner_text()
    assert "growth" in summary and "49.00 USD" in summary and "per month" in summary
    page.screenshot(path=artifacts / "checkout.png", full_page=True)

    page.get_by_role("button", name="Pay with test visa •••• 4242").click()
    page.wait_for_url(f"{server.base}/?checkout=success&checkout_id={checkout_id}")
    page.screenshot(path=artifacts / "checkout-return.png", full_page=True)
    assert page.get_by_role("heading", level=1).inner_text() == "Payment received"
    assert "growth plan is active, billed 49.00 USD per month" in status_text(page)
    assert_plainly_a_sandbox(page)

    sub = subscription(api)
    assert (sub["plan"], sub["interval"], sub["status"]) == ("growth", "month", "active")
    assert sub["payment_method"] == {"brand": "visa", "last4": "4242"}


def test_a_declined_card_is_shown_with_a_way_to_try_again_and_starts_nothing(
    server: Server, page: Page, artifacts: Path
) -> None:
    api = server.api(ACCOUNT)
    started = api.post("/billing/checkout", json={"plan": "starter", "interval": "month"})
    checkout_id, url = started.json()["checkout_id"], started.json()["url"]

    page.goto(url)
    page.get_by_role("button", name="Pay with a declined test card").click()
    page.wait_for_url(f"{server.base}/sandbox/checkout/{checkout_id}?declined=1")
    page.screenshot(path=artifacts / "checkout-declined.png", full_page=True)
    assert_plainly_a_sandbox(page)
    alert = page.get_by_role("alert")
    assert alert.is_visible()
    assert "declined" in alert.inner_text()
    assert "Nothing was charged; try another" in alert.inner_text()
    assert page.get_by_role("button", name="Pay with test visa •••• 4242").is_visible()
    assert api.get("/billing/subscription").status_code == 404

    # Trying again on the same page works.
    page.get_by_role("button", name="Pay with test mastercard •••• 4444").click()
    page.wait_for_url(f"{server.base}/?checkout=success&checkout_id={checkout_id}")
    sub = subscription(api)
    assert (sub["plan"], sub["status"]) == ("starter", "active")
    assert sub["payment_method"] == {"brand": "mastercard", "last4": "4444"}


def test_cancelling_the_checkout_returns_with_nothing_charged(server: Server, page: Page) -> None:
    api = server.api(ACCOUNT)
    page.goto(
        api.post("/billing/checkout", json={"plan": "growth", "interval": "year"}).json()["url"]
    )
    assert "490.00 USD" in page.locator("table").inner_text()
    page.get_by_role("link", name="Cancel and return").click()
    page.wait_for_url(f"{server.base}/?checkout=canceled")
    assert page.get_by_role("heading", level=1).inner_text() == "Checkout canceled"
    assert "Nothing was charged" in status_text(page)
    assert api.get("/billing/subscription").status_code == 404
