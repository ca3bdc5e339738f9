"""The billing page in Stripe mode: the Stripe adapter over real HTTP to the local Stripe double.

Stripe's own pages (Checkout, the portal) are the double's business; here the page must show
what the adapter reads back (plan, banners, invoices) and send people to Stripe's pages.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import TestClient

from responseiq_billing.adapters.app import create_app
from responseiq_billing.adapters.container import Container
from responseiq_billing.adapters.fake.clock import ControllableClock
from responseiq_billing.adapters.http.auth import issue_token
from responseiq_billing.domain.plans import default_catalog
from tests.sql_fixtures import sqlite_url
from tests.stripe_double import StripeDouble, running_double
from tests.webhooks.harness import AUTH_SECRET, stripe_container

BASE = "https://billing.test"
ACCOUNT = "acct_page_stripe"


@pytest.fixture
def double(clock: ControllableClock) -> Iterator[StripeDouble]:
    with running_double(clock, default_catalog()) as stripe_double:
        yield stripe_double


@pytest.fixture
def container(double: StripeDouble, clock: ControllableClock, tmp_path: Path) -> Container:
    return stripe_container(double, clock, sqlite_url(tmp_path))


@pytest.fixture
def client(container: Container) -> Iterator[TestClient[Any]]:
    with TestClient(create_app(container), base_url=BASE) as test_client:
        yield test_client


def text_of(html: str) -> str:
    main = html.split("<main", 1)[1].split("</main>", 1)[0]
    return " ".join(re.sub(r"<[^>]+>", " ", main).split())


def csrf(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found is not None
    return found.group(1)


def fact(html: str, name: str) -> str:
    found = re.search(rf'<dd id="plan-{name}">(.*?)</dd>', html, re.S)
    assert found is not None, name
    return " ".join(re.sub(r"<[^>]+>", " ", found.group(1)).split())


def post(client: TestClient[Any], path: str, page: str, **fields: str) -> Any:
    return client.post(path, data={"csrf_token": csrf(page), **fields}, follow_redirects=False)


def change(client: TestClient[Any], plan: str) -> tuple[str, str]:
    """Preview on the page, then confirm; returns the preview's text and the page after."""
    shown = client.get(f"/billing/page/change?plan={plan}&interval=month")
    assert shown.status_code == 200, shown.text
    quote = re.search(r'name="quote_id" value="([^"]+)"', shown.text)
    assert quote is not None
    done = post(
        client, "/billing/page/change", shown.text, plan=plan, interval="month", quote_id=quote[1]
    )
    assert (done.status_code, done.headers["location"]) == (303, "/billing"), done.text
    return text_of(shown.text), client.get("/billing").text


def test_the_page_on_stripe_shows_plan_banners_invoices_and_sends_people_to_stripes_pages(
    client: TestClient[Any], double: StripeDouble
) -> None:
    token = issue_token(AUTH_SECRET, ACCOUNT, ttl=timedelta(minutes=5))
    page = client.get(f"/billing/session?token={token}").text
    assert "Choose a plan" in text_of(page)
    assert "(Stripe)" in page.split("<footer", 1)[1] and "Sandbox" not in page
    shown = client.get("/billing")
    csp = shown.headers["content-security-policy"]
    assert "form-action 'self' https://checkout.stripe.com https://billing.stripe.com" in csp
    assert "script-src 'self';" in csp

    # Subscribe: Stripe Checkout's page, then the return records the subscription at once.
    started = post(client, "/billing/page/checkout", page, plan="growth", interval="month")
    assert started.status_code == 303
    checkout_url = started.headers["location"]
    assert checkout_url.startswith("https://checkout.stripe.com/c/pay/cs_")
    checkout_id = checkout_url.rsplit("/", 1)[1]
    double.complete_checkout(checkout_id)
    back = client.get(f"/billing/page/checkout/return?checkout_id={checkout_id}")
    page = back.text
    assert "Payment received: your subscription is active." in text_of(page)
    assert (fact(page, "name"), fact(page, "interval"), fact(page, "status")) == (
        "Growth",
        "Monthly",
        "Active",
    )
    assert fact(page, "renewal") == "1 April 2026: 49.00 USD"
    assert fact(page, "card") == "Visa ending in 4242"

    # The invoice, and its PDF link leading to Stripe's document.
    rows = re.findall(r'href="(/billing/page/invoices/(in_[^/"]+)/pdf)"', page)
    assert len(rows) == 1
    pdf = client.get(rows[0][0], follow_redirects=False)
    assert pdf.status_code == 302
    assert pdf.headers["location"] == double.invoices(_customer(double))[0]["invoice_pdf"]

    # Downgrade: the date it applies, then the banner; withdraw it.
    preview, page = change(client, "starter")
    assert "Charged now Nothing" in preview and "Takes effect 1 April 2026" in preview
    assert (
        "Your plan changes to Starter, monthly on 1 April 2026. "
        "You keep your current features until then." in text_of(page)
    )
    assert fact(page, "name") == "Growth"
    done = post(client, "/billing/page/withdraw-change", page)
    page = client.get(done.headers["location"]).text
    assert "The scheduled change was withdrawn" in text_of(page)
    assert "Downgrade scheduled" not in text_of(page)

    # Upgrade: Stripe's prorated amount is shown first and charged as shown.
    preview, page = change(client, "business")
    amount = re.search(r"Charged now (\d+\.\d\d USD)", preview)
    assert amount is not None
    assert fact(page, "name") == "Business"
    assert amount[1] in text_of(page).split("Invoices", 1)[1]

    # Cancel and resume: the banner says until when access continues.
    done = post(client, "/billing/page/cancel", page)
    page = client.get(done.headers["location"]).text
    assert "Access continues until 1 April 2026" in text_of(page)
    done = post(client, "/billing/page/resume", page)
    page = client.get(done.headers["location"]).text
    assert "Your subscription continues and will renew as before." in text_of(page)
    assert "Subscription canceled" not in text_of(page)

    # Manage Billing and Update payment method go to Stripe's own pages.
    portal = post(client, "/billing/page/portal", page)
    assert portal.status_code == 303
    assert portal.headers["location"].startswith("https://billing.stripe.com/p/session/")
    setup = post(client, "/billing/page/payment-method", page)
    assert setup.status_code == 303
    assert setup.headers["location"].startswith("https://checkout.stripe.com/")


def _customer(double: StripeDouble) -> str:
    subscriptions = double.state.all("subscription")
    assert len(subscriptions) == 1
    return str(subscriptions[0]["customer"])
