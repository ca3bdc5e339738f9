"""What every sandbox page must show a person, and the shortcuts the browser tests share."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import httpx

from responseiq_billing.adapters.fake.pages import BANNER

if TYPE_CHECKING:
    from playwright.sync_api import Page

# Anything a person could type into: the sandbox offers test cards as buttons only.
TYPING = "input:not([type=hidden]), textarea, select, [contenteditable]"
CARD_AUTOCOMPLETE = "[autocomplete^=cc-]"


def assert_plainly_a_sandbox(page: Page) -> None:
    banner = page.get_by_role("note")
    assert banner.is_visible()
    text = banner.inner_text()
    assert BANNER in text
    assert "no card is charged" in text
    assert BANNER in page.title()


def assert_no_card_fields(page: Page) -> None:
    typed = page.locator(
        "input[type=text], input[type=number], input[type=tel], input[type=password]"
    )
    assert typed.count() == 0
    assert page.locator(TYPING).count() == 0, "every choice is a button; nothing to type into"
    assert page.locator(CARD_AUTOCOMPLETE).count() == 0
    assert page.locator("iframe").count() == 0, "no embedded card form either"


def status_text(page: Page) -> str:
    """The page's status messages: what the last action did."""
    return "\n".join(page.get_by_role("status").all_inner_texts())


def subscribe(base: str, api: httpx.Client, plan: str = "growth", card: str = "visa") -> str:
    """A paid checkout without the browser (its own test drives the page)."""
    started = api.post("/billing/checkout", json={"plan": plan, "interval": "month"})
    assert started.status_code == 201, started.text
    checkout_id: str = started.json()["checkout_id"]
    paid = httpx.post(
        f"{base}/sandbox/checkout/{checkout_id}/complete",
        data={"outcome": "succeeded", "card": card},
    )
    assert paid.status_code == 303, paid.text
    return checkout_id


def subscription(api: httpx.Client) -> dict[str, Any]:
    response = api.get("/billing/subscription")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body
