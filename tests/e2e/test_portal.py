"""Manage Billing in a browser: plan changes, cancel and resume, invoices and their PDFs."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from tests.e2e.conftest import Server
from tests.e2e.helpers import (
    assert_no_card_fields,
    assert_plainly_a_sandbox,
    status_text,
    subscribe,
    subscription,
)

if TYPE_CHECKING:
    from playwright.sync_api import Page, Route

ACCOUNT = "acct_e2e_portal"


def _row(page: Page, name: str) -> str:
    return page.locator("tr", has=page.locator("th", has_text=name)).locator("td").inner_text()


def _press(page: Page, label: str, portal_url: str) -> None:
    page.get_by_role("button", name=label).click()
    page.wait_for_url(portal_url)  # every portal action comes back to the portal page


def test_plan_changes_cancel_and_resume_in_the_portal_reach_our_state(
    server: Server, page: Page, artifacts: Path
) -> None:
    api = server.api(ACCOUNT)
    subscribe(server.base, api, "growth")
    period_end = subscription(api)["current_period_end"]
    opened = api.post("/billing/portal", json={})
    assert opened.status_code == 201, opened.text
    portal = opened.json()["url"]

    page.goto(portal)
    assert_plainly_a_sandbox(page)
    assert_no_card_fields(page)
    assert _row(page, "Plan") == "growth (monthly)"
    assert _row(page, "Scheduled change") == "none"
    # Each choice says which way it goes and when (a cheaper yearly term applies now).
    choices = page.locator("form[action$='/change-plan'] button").all_inner_texts()
    assert choices == [
        "Downgrade to starter per month (19.00 USD) at the period end",
        "Switch to starter per year (190.00 USD) now",
        "Switch to growth per year (490.00 USD) now",
        "Upgrade to business per month (99.00 USD) now",
        "Upgrade to business per year (990.00 USD) now",
    ]

    # Downgrade: scheduled for the period end; the current plan stays until then.
    _press(page, "Downgrade to starter per month (19.00 USD) at the period end", portal)
    assert _row(page, "Plan") == "growth (monthly)"
    assert _row(page, "Scheduled change") == f"starter (monthly) on {period_end[:10]}"
    assert (
        f"Your plan changes to starter (monthly) on {period_end[:10]}; growth stays until then."
        in status_text(page)
    )
    assert page.get_by_role("button", name="Downgrade to starter per month").count() == 0
    page.screenshot(path=artifacts / "portal-downgrade-scheduled.png", full_page=True)
    sub = subscription(api)
    assert sub["plan"] == "growth"
    assert sub["pending_change"] == {
        "plan": "starter",
        "interval": "month",
        "effective_at": period_end,
    }

    # Upgrade: at once, and it replaces the scheduled downgrade.
    _press(page, "Upgrade to business per month (99.00 USD) now", portal)
    assert _row(page, "Plan") == "business (monthly)"
    assert _row(page, "Scheduled change") == "none"
    assert status_text(page) == ""
    sub = subscription(api)
    assert (sub["plan"], sub["pending_change"]) == ("business", None)
    assert sub["features"]["seats"] is None  # Business's unlimited seats, now

    # Cancel: access continues until the period end.
    _press(page, "Cancel at the end of the period", portal)
    assert _row(page, "Cancels at period end") == "yes"
    assert f"access continues until {period_end[:10]}" in status_text(page)
    page.screenshot(path=artifacts / "portal-canceled.png", full_page=True)
    sub = subscription(api)
    assert (sub["status"], sub["cancel_at_period_end"]) == ("active", True)
    assert sub["access_until"] == sub["current_period_end"] == period_end

    # Resume: the renewal is back on.
    _press(page, "Renew plan (undo the cancellation)", portal)
    assert _row(page, "Cancels at period end") == "no"
    assert page.get_by_role("button", name="Cancel at the end of the period").is_visible()
    sub = subscription(api)
    assert (sub["plan"], sub["status"], sub["cancel_at_period_end"]) == (
        "business",
        "active",
        False,
    )

    assert status_text(page) == ""

    page.get_by_role("link", name="Return to ResponseIQ").click()
    page.wait_for_url(f"{server.base}/")
    assert page.get_by_role("heading", level=1).inner_text() == "Back at ResponseIQ"


def test_the_portal_lists_the_invoices_and_each_pdf_link_opens_a_pdf(
    server: Server, page: Page, artifacts: Path
) -> None:
    api = server.api(ACCOUNT)
    subscribe(server.base, api, "growth")
    portal = api.post("/billing/portal", json={}).json()["url"]
    page.goto(portal)
    _press(page, "Upgrade to business per month (99.00 USD) now", portal)  # a prorated invoice

    invoices = api.get("/billing/invoices").json()["data"]
    assert len(invoices) == 2
    page.screenshot(path=artifacts / "portal-invoices.png", full_page=True)
    links = page.get_by_role("link", name="PDF")
    assert links.count() == 2
    hrefs = [links.nth(i).get_attribute("href") or "" for i in range(2)]
    assert hrefs == [invoice["pdf_url"] for invoice in invoices]  # newest first, as the API
    for invoice in invoices:
        assert invoice["number"] in page.locator("body").inner_text()

    # Chromium shows a PDF in its viewer, whose page is not the document: keep the bytes the
    # link's navigation actually received on the way through.
    received: list[bytes] = []

    def keep_body(route: Route) -> None:
        fetched = route.fetch()
        received.append(fetched.body())
        route.fulfill(response=fetched)

    page.route(hrefs[0], keep_body)
    with page.expect_response(hrefs[0]) as opened:
        links.nth(0).click()
    response = opened.value
    assert response.status == 200
    assert response.headers["content-type"] == "application/pdf"
    assert page.url == hrefs[0]
    assert len(received) == 1 and received[0].startswith(b"%PDF-")
    assert received[0].rstrip().endswith(b"%%EOF")
