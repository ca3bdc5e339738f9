"""Updating the payment method in a browser: the setup page, a test card, and the way back."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from tests.e2e.conftest import Server
from tests.e2e.helpers import (
    assert_no_card_fields,
    assert_plainly_a_sandbox,
    subscribe,
    subscription,
)

if TYPE_CHECKING:
    from playwright.sync_api import Page

ACCOUNT = "acct_e2e_payment_method"


def test_choosing_the_mastercard_test_card_makes_it_the_payment_method_at_once(
    server: Server, page: Page, artifacts: Path
) -> None:
    api = server.api(ACCOUNT)
    subscribe(server.base, api, "growth", card="visa")
    started = api.post("/billing/payment-method/setup", json={})
    assert started.status_code == 201, started.text
    setup_id, url = started.json()["setup_id"], started.json()["url"]

    page.goto(url)
    assert_plainly_a_sandbox(page)
    assert_no_card_fields(page)
    page.screenshot(path=artifacts / "setup.png", full_page=True)
    page.get_by_role("button", name="Save with test mastercard •••• 4444").click()
    page.wait_for_url(f"{server.base}/?setup=success&setup_id={setup_id}")
    page.screenshot(path=artifacts / "setup-return.png", full_page=True)
    assert page.get_by_role("heading", level=1).inner_text() == "Payment method saved"

    assert subscription(api)["payment_method"] == {"brand": "mastercard", "last4": "4444"}
