"""Settings → Billing in a real browser: the help article, step by step, against `billing serve`.

Every state is checked with axe-core (no serious or critical violations), photographed at
desktop and phone width, and must fit a 375 px screen without sideways scrolling.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from tests.e2e.conftest import Server
from tests.e2e.helpers import assert_no_card_fields, assert_plainly_a_sandbox, subscribe
from tests.serving import billing_serve

if TYPE_CHECKING:
    from playwright.sync_api import Page, Route

# The sandbox calendar is pinned: a monthly period started on 15 January 2027 ends on
# 15 February 2027, whatever today is.
CLOCK_START = "2027-01-15T10:00:00+00:00"
PERIOD_END = "15 February 2027"
NEXT_PERIOD_END = "15 March 2027"
WIDTHS = {"desktop": 1280, "phone": 375}
ALLOWED_FORM_FIELDS = {"csrf_token", "request_id", "plan", "interval", "quote_id"}


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    """`billing serve` (sandbox) with its clock pinned; replaces the conftest's unpinned one."""
    cwd = tmp_path / "serve"
    cwd.mkdir()
    env = {"BILLING_SANDBOX_CLOCK_START": CLOCK_START}
    with billing_serve(cwd, "--host", "127.0.0.1", within=20, env=env) as base:
        yield Server(base, cwd)


@pytest.fixture(scope="session")
def axe() -> Any:
    from axe_playwright_python.sync_playwright import Axe  # type: ignore[import-untyped]

    return Axe()


# -- helpers ------------------------------------------------------------------------------------


def open_billing(page: Page, server: Server, account: str) -> None:
    """What the host application's Settings → Billing link does: a token, then the page."""
    token = server.api(account).headers["Authorization"].removeprefix("Bearer ")
    page.goto(f"{server.base}/billing/session?token={token}")
    page.wait_for_url(f"{server.base}/billing")
    assert "token" not in page.url


def fact(page: Page, name: str) -> str:
    return page.locator(f"#plan-{name}").inner_text().strip()


def status(page: Page) -> str:
    return page.locator("#status").inner_text().strip()


def focused_id(page: Page) -> str:
    return str(page.evaluate("document.activeElement && document.activeElement.id"))


def invoice_rows(page: Page) -> list[str]:
    return [" ".join(t.split()) for t in page.locator("table.invoices tbody tr").all_inner_texts()]


def advance_days(server: Server, days: int) -> None:
    moved = httpx.post(f"{server.base}/sandbox/clock/advance", json={"days": days})
    assert moved.status_code == 200, moved.text


def arm_next_payment(server: Server, outcome: str) -> None:
    armed = httpx.post(f"{server.base}/sandbox/next-payment", json={"outcome": outcome})
    assert armed.status_code == 200, armed.text


def confirm_change(page: Page, verb: str, target: str) -> dict[str, str]:
    """Press Upgrade/Downgrade, read the confirmation step, confirm; returns what it showed."""
    page.get_by_role("link", name=f"{verb} to {target}", exact=True).click()
    page.wait_for_url("**/billing/page/change?*")
    heading = page.get_by_role("heading", level=1).inner_text()
    assert heading == f"{verb} to {target}"
    shown = {
        "charged_now": page.locator("#amount-now").inner_text(),
        "text": page.locator("main").inner_text(),
    }
    page.get_by_role("button", name=f"Confirm {verb.lower()}").click()
    page.wait_for_url("**/billing")
    return shown


def assert_no_card_inputs(page: Page) -> None:
    """Our page has nothing to type into: hidden fields of known names, buttons and links."""
    assert_no_card_fields(page)
    names = page.locator("input").evaluate_all("els => els.map(e => [e.type, e.name])")
    assert all(kind == "hidden" for kind, _ in names), names
    assert {name for _, name in names} <= ALLOWED_FORM_FIELDS, names


def check_state(page: Page, axe: Any, artifacts: Path, state: str) -> None:
    """axe-core finds nothing serious; desktop and phone screenshots; nothing wider than 375 px."""
    assert_no_card_inputs(page)
    results = axe.run(page)
    assert results.response["testEngine"]["name"] == "axe-core"
    assert len(results.response["passes"]) > 10, "axe-core ran its rules on the page"
    serious = [
        f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']]}"
        for v in results.response["violations"]
        if v["impact"] in ("serious", "critical")
    ]
    assert serious == [], f"{state}: {serious}"
    for label, width in WIDTHS.items():
        page.set_viewport_size({"width": width, "height": 900})
        page.screenshot(path=artifacts / f"billing-{state}-{label}.png", full_page=True)
        overflow = page.evaluate("document.documentElement.scrollWidth")
        assert overflow <= width, f"{state} is {overflow}px wide at {width}px"
    page.set_viewport_size({"width": WIDTHS["desktop"], "height": 900})


# -- the article, in order ----------------------------------------------------------------------


def test_subscribe_upgrade_downgrade_undo_and_renew_on_the_billing_page(
    server: Server, page: Page, axe: Any, artifacts: Path
) -> None:
    account = "acct_e2e_page_article"
    api = server.api(account)
    # Arriving without the host application's link: the page says how to get in.
    page.goto(f"{server.base}/billing")
    assert "Open Billing from the app to see this page." in page.locator("main").inner_text()
    assert f"echo {server.base}/billing/session?token=$(billing token" in page.content()
    printed = (server.cwd / "serve.log").read_text()
    assert f"echo {server.base}/billing/session?token=$(" in printed
    check_state(page, axe, artifacts, "no-session")

    open_billing(page, server, account)
    assert page.get_by_role("heading", level=1).inner_text() == "Billing"
    assert page.get_by_role("heading", name="Choose a plan").is_visible()
    assert "No invoices yet." in page.locator("main").inner_text()
    check_state(page, axe, artifacts, "no-subscription")

    # Subscribe: the sandbox's checkout page, a test card, and back to the page.
    page.get_by_role("button", name="Subscribe to Growth, monthly").click()
    page.wait_for_url(f"{server.base}/sandbox/checkout/*")
    assert_plainly_a_sandbox(page)
    page.get_by_role("button", name="Pay with test visa •••• 4242").click()
    page.wait_for_url(f"{server.base}/billing")
    assert status(page) == "Payment received: your subscription is active."
    assert focused_id(page) == "status"
    assert (fact(page, "name"), fact(page, "interval"), fact(page, "status")) == (
        "Growth",
        "Monthly",
        "Active",
    )
    assert fact(page, "renewal") == f"{PERIOD_END}: 49.00 USD"
    assert fact(page, "card") == "Visa ending in 4242"
    assert invoice_rows(page) == ["15 Jan 2027 RIQ-0001 49.00 USD Paid PDF of invoice RIQ-0001"]
    check_state(page, axe, artifacts, "active")

    # Manage Billing opens the portal in a new tab; this page stays.
    with page.context.expect_page() as opened:
        page.get_by_role("button", name="Manage Billing").click()
    portal = opened.value
    portal.wait_for_load_state()
    assert portal.url.startswith(f"{server.base}/sandbox/portal/")
    assert portal.get_by_role("heading", level=1).inner_text() == "Manage billing"
    portal.close()
    assert page.url == f"{server.base}/billing"

    # Upgrade: the prorated amount first, then the change at once, charged as shown.
    page.get_by_role("link", name="Upgrade to Business, monthly", exact=True).click()
    page.wait_for_url("**/billing/page/change?*")
    assert page.locator("#amount-now").inner_text() == "50.00 USD"
    assert focused_id(page) == "heading"
    check_state(page, axe, artifacts, "upgrade-preview")
    page.get_by_role("link", name="Keep my current plan").click()
    shown = confirm_change(page, "Upgrade", "Business, monthly")
    assert shown["charged_now"] == "50.00 USD"
    assert "prorated" in shown["text"]
    assert status(page).startswith("Your plan was changed now.")
    assert fact(page, "name") == "Business"
    assert invoice_rows(page)[0] == "15 Jan 2027 RIQ-0002 50.00 USD Paid PDF of invoice RIQ-0002"

    # Downgrade: nothing charged, the date it takes effect, then the banner.
    shown = confirm_change(page, "Downgrade", "Starter, monthly")
    assert shown["charged_now"] == "Nothing"
    assert f"on {PERIOD_END}; you keep your current features until then" in shown["text"]
    banner = page.locator("#pending-change")
    assert banner.get_by_role("heading").inner_text() == "Downgrade scheduled"
    assert (
        f"Your plan changes to Starter, monthly on {PERIOD_END}. "
        "You keep your current features until then." in banner.inner_text()
    )
    assert fact(page, "name") == "Business"
    assert fact(page, "renewal") == f"{PERIOD_END}: 19.00 USD"
    check_state(page, axe, artifacts, "downgrade-scheduled")

    # Undo it: the banner goes, the renewal is Business again.
    page.get_by_role("button", name="Keep Business (withdraw the downgrade)").click()
    page.wait_for_url("**/billing")
    assert status(page) == "The scheduled change was withdrawn: your plan stays as it is."
    assert page.locator("#pending-change").count() == 0
    assert fact(page, "renewal") == f"{PERIOD_END}: 99.00 USD"

    # Downgrade again and let the period end: the new plan and its renewal invoice.
    confirm_change(page, "Downgrade", "Starter, monthly")
    advance_days(server, 32)
    page.reload()
    assert page.locator("#pending-change").count() == 0
    assert (fact(page, "name"), fact(page, "status")) == ("Starter", "Active")
    assert fact(page, "renewal") == f"{NEXT_PERIOD_END}: 19.00 USD"
    rows = invoice_rows(page)
    assert rows[0] == "15 Feb 2027 RIQ-0003 19.00 USD Paid PDF of invoice RIQ-0003"
    assert len(rows) == 3
    check_state(page, axe, artifacts, "renewed")
    assert api.get("/billing/subscription").json()["plan"] == "starter"

    # Download the renewal invoice: our link redirects to the gateway's document, a real PDF.
    # (Chromium shows a PDF in its viewer, and a route sees only a redirect's first request:
    # the link's request is fetched here, redirects followed, and its bytes kept.)
    received: list[tuple[str, int, str, bytes]] = []

    def keep_body(route: Route) -> None:
        fetched = route.fetch()
        received.append(
            (fetched.url, fetched.status, fetched.headers["content-type"], fetched.body())
        )
        route.fulfill(response=fetched)

    page.route("**/billing/page/invoices/*/pdf", keep_body)
    page.get_by_role("link", name="PDF of invoice RIQ-0003").click()
    page.wait_for_url("**/billing/page/invoices/*/pdf")
    [(url, code, kind, body)] = received
    assert url.startswith(f"{server.base}/sandbox/invoices/in_") and url.endswith(".pdf")
    assert (code, kind) == (200, "application/pdf")
    assert body.startswith(b"%PDF-") and body.rstrip().endswith(b"%%EOF")


def test_cancel_resume_cancel_again_and_access_ends_after_the_period(
    server: Server, page: Page, axe: Any, artifacts: Path
) -> None:
    account = "acct_e2e_page_cancel"
    api = server.api(account)
    subscribe(server.base, api, "growth")
    open_billing(page, server, account)

    page.get_by_role("button", name="Cancel subscription").click()
    page.wait_for_url("**/billing")
    assert status(page).startswith("Your subscription is canceled.")
    banner = page.locator("#canceling")
    assert f"Access continues until {PERIOD_END}" in banner.inner_text()
    assert fact(page, "access-until") == PERIOD_END
    assert page.locator("#plan-renewal").count() == 0
    assert "Resume your subscription to change its plan." in page.locator("main").inner_text()
    check_state(page, axe, artifacts, "canceling")

    page.get_by_role("button", name="Resume subscription").click()
    page.wait_for_url("**/billing")
    assert status(page) == "Your subscription continues and will renew as before."
    assert page.locator("#canceling").count() == 0
    assert fact(page, "renewal") == f"{PERIOD_END}: 49.00 USD"

    page.get_by_role("button", name="Cancel subscription").click()
    page.wait_for_url("**/billing")
    assert page.locator("#canceling").is_visible()
    assert api.get("/billing/entitlements").json()["plan"] == "growth"  # until the period ends

    advance_days(server, 32)
    page.reload()
    ended = page.locator("#ended")
    assert f"Your Growth plan ended on {PERIOD_END}." in ended.inner_text()
    assert page.get_by_role("button", name="Subscribe to Growth, monthly").is_visible()
    assert page.get_by_role("button", name="Cancel subscription").count() == 0
    assert api.get("/billing/entitlements").json()["plan"] is None
    check_state(page, axe, artifacts, "ended")


def test_updating_the_card_happens_on_the_gateway_page_and_shows_here(
    server: Server, page: Page, axe: Any, artifacts: Path
) -> None:
    account = "acct_e2e_page_card"
    subscribe(server.base, server.api(account), "growth", card="visa")
    open_billing(page, server, account)
    assert fact(page, "card") == "Visa ending in 4242"
    assert "never reach ResponseIQ" in page.locator("footer").inner_text()

    page.get_by_role("button", name="Update payment method").click()
    page.wait_for_url(f"{server.base}/sandbox/setup/*")
    assert_plainly_a_sandbox(page)
    page.get_by_role("link", name="Cancel and return").click()
    page.wait_for_url("**/billing")
    assert status(page) == "Your payment method was not changed."

    page.get_by_role("button", name="Update payment method").click()
    page.wait_for_url(f"{server.base}/sandbox/setup/*")
    page.get_by_role("button", name="Save with test mastercard •••• 4444").click()
    page.wait_for_url("**/billing")
    assert status(page) == "Your payment method was updated: the next charge uses the new card."
    assert fact(page, "card") == "Mastercard ending in 4444"
    check_state(page, axe, artifacts, "card-updated")


def test_declines_and_a_payment_needing_confirmation_are_explained_and_change_nothing(
    server: Server, page: Page, axe: Any, artifacts: Path
) -> None:
    account = "acct_e2e_page_declined"
    api = server.api(account)
    open_billing(page, server, account)

    # A declined card at checkout: the gateway's page says so; cancelling starts nothing.
    page.get_by_role("button", name="Subscribe to Starter, monthly").click()
    page.get_by_role("button", name="Pay with a declined test card").click()
    page.wait_for_url("**/sandbox/checkout/*?declined=1")
    assert "declined" in page.get_by_role("alert").inner_text()
    page.get_by_role("link", name="Cancel and return").click()
    page.wait_for_url("**/billing")
    assert status(page) == "Checkout canceled: nothing was charged and no plan was started."
    assert page.get_by_role("heading", name="Choose a plan").is_visible()
    assert api.get("/billing/subscription").status_code == 404

    page.get_by_role("button", name="Subscribe to Starter, monthly").click()
    page.get_by_role("button", name="Pay with test mastercard •••• 4444").click()
    page.wait_for_url("**/billing")
    assert fact(page, "name") == "Starter"

    # A declined upgrade: a sentence, focused; the plan and the invoices are unchanged.
    arm_next_payment(server, "declined")
    confirm_change(page, "Upgrade", "Business, monthly")
    alert = page.get_by_role("alert")
    assert alert.inner_text() == (
        "Your card was declined, so nothing was charged and your plan did not change. "
        "Update your payment method and try again."
    )
    assert focused_id(page) == "status"
    assert "payment.declined" not in page.content()
    assert fact(page, "name") == "Starter"
    assert len(invoice_rows(page)) == 1
    check_state(page, axe, artifacts, "upgrade-declined")

    # The bank asks for confirmation: that happens on the gateway's page, not ours; until the
    # customer confirms there, nothing changes.
    arm_next_payment(server, "requires_action")
    page.get_by_role("link", name="Upgrade to Business, monthly", exact=True).click()
    page.wait_for_url("**/billing/page/change?*")
    page.get_by_role("button", name="Confirm upgrade").click()
    page.wait_for_url("**/sandbox/authenticate/*")
    assert page.get_by_role("heading", level=1).inner_text() == "Confirm the payment"
    assert page.get_by_role("button", name="Confirm with the bank").is_visible()
    page.goto(f"{server.base}/billing")
    assert fact(page, "name") == "Starter"

    # A declined renewal: past due, with the ways to fix it.
    arm_next_payment(server, "declined")
    advance_days(server, 32)
    page.reload()
    assert fact(page, "status") == "Payment overdue"
    notice = page.locator("#past-due")
    assert "Your last payment did not go through" in notice.inner_text()
    pay = notice.get_by_role("link", name="Pay or confirm the unpaid invoice")
    assert (pay.get_attribute("href") or "").startswith(f"{server.base}/sandbox/invoices/in_")
    assert invoice_rows(page)[0].startswith("15 Feb 2027 RIQ-0002 19.00 USD Unpaid")
    assert page.get_by_role("button", name="Update payment method").is_visible()
    check_state(page, axe, artifacts, "past-due")


def test_another_accounts_session_sees_none_of_it(server: Server, page: Page) -> None:
    owner, other = "acct_e2e_page_owner", "acct_e2e_page_other"
    owner_api = server.api(owner)
    checkout_id = subscribe(server.base, owner_api, "business")
    invoice_id = owner_api.get("/billing/invoices").json()["data"][0]["id"]

    open_billing(page, server, owner)
    assert fact(page, "name") == "Business"

    open_billing(page, server, other)  # the same browser, now signed in as another account
    text = page.locator("main").inner_text()
    assert "Business" not in text.split("Choose a plan")[0]
    assert "No invoices yet." in text and "4242" not in text
    assert page.locator("#plan-facts").count() == 0

    page.goto(f"{server.base}/billing/page/invoices/{invoice_id}/pdf")
    page.wait_for_url(f"{server.base}/billing")
    assert page.get_by_role("alert").inner_text().startswith("We could not find that invoice")

    page.goto(f"{server.base}/billing/page/checkout/return?checkout_id={checkout_id}")
    page.wait_for_url(f"{server.base}/billing")
    assert page.get_by_role("alert").inner_text().startswith("We could not find that checkout")
    assert server.api(other).get("/billing/subscription").status_code == 404
    assert owner_api.get("/billing/subscription").json()["plan"] == "business"


def test_a_form_posted_without_its_csrf_token_is_refused_and_changes_nothing(
    server: Server, page: Page
) -> None:
    account = "acct_e2e_page_csrf"
    api = server.api(account)
    subscribe(server.base, api, "growth")
    open_billing(page, server, account)

    # The browser's own cookies go along, as they would from a forged form on another site.
    forged = page.context.request.post(
        f"{server.base}/billing/page/cancel", form={"request_id": "forged"}, max_redirects=0
    )
    assert forged.status == 403
    assert "did not come from your billing page" in forged.text()
    assert api.get("/billing/subscription").json()["cancel_at_period_end"] is False

    page.get_by_role("button", name="Cancel subscription").click()  # the page's own form works
    page.wait_for_url("**/billing")
    assert api.get("/billing/subscription").json()["cancel_at_period_end"] is True


def test_keyboard_alone_reaches_upgrade_and_lands_on_what_happened(
    server: Server, page: Page
) -> None:
    account = "acct_e2e_page_keyboard"
    subscribe(server.base, server.api(account), "growth")
    open_billing(page, server, account)

    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"
    target = "Upgrade to Business, monthly"
    for _ in range(40):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.textContent.trim()") == target:
            break
    else:
        pytest.fail(f"Tab never reached {target!r}")
    page.keyboard.press("Enter")
    page.wait_for_url("**/billing/page/change?*")
    assert focused_id(page) == "heading"
    for _ in range(10):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.tagName") == "BUTTON":
            break
    assert page.evaluate("document.activeElement.textContent").startswith("Confirm upgrade")
    page.keyboard.press("Enter")
    page.wait_for_url("**/billing")
    assert focused_id(page) == "status"
    assert fact(page, "name") == "Business"
