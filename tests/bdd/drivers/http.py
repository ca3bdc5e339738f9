"""The HTTP driver: the scenarios through the API and the sandbox's hosted pages, as a browser would.

Only time and the bank's mood are set on the sandbox gateway directly, as a Stripe test clock
and test cards are: they are the payment network, not our API.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from litestar.testing import TestClient

from responseiq_billing.adapters.app import create_app
from responseiq_billing.adapters.config import Settings
from responseiq_billing.adapters.container import Container, start
from responseiq_billing.adapters.fake.clock import ControllableClock
from responseiq_billing.adapters.fake.gateway import FakeGateway
from responseiq_billing.adapters.http.auth import issue_token
from responseiq_billing.application.ports import UnitOfWorkFactory
from responseiq_billing.domain.plans import Catalog
from tests.bdd.drivers.base import (
    BILLING_PAGE,
    INVOICE_PAGE_SIZE,
    Card,
    EntitlementFacts,
    InvoiceFacts,
    PortalFacts,
    QuoteFacts,
    Rejected,
    ScheduledChange,
    SubscriptionFacts,
)
from tests.wiring import GivenUnits, container_for

PUBLIC_URL = "http://billing.test"
SECRET = "bdd-http-driver-secret-at-least-32-chars"
_ERROR_CODE = re.compile(r"<code>([^<]+)</code>")


def _time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value is not None else None


def _at(value: str) -> datetime:
    return datetime.fromisoformat(value)


class HttpDriver:
    """Drives the Litestar app over HTTP (Litestar's TestClient), with the sandbox gateway."""

    def __init__(
        self, *, catalog: Catalog, clock: ControllableClock, uow: UnitOfWorkFactory
    ) -> None:
        settings = Settings.from_env(
            {"BILLING_AUTH_SECRET": SECRET, "BILLING_PUBLIC_URL": PUBLIC_URL}
        )
        # The store the scenario chose (`--bdd-store`) is the container's storage.
        self.container: Container = container_for(
            settings, catalog=catalog, clock=clock, storage=GivenUnits(uow)
        )
        self.uow = uow
        self.clock = clock
        start(self.container)  # connects the sandbox's events (its webhooks) to the service
        self.gateway: FakeGateway = self.container.gateway()
        self.client = TestClient(create_app(self.container), base_url=PUBLIC_URL)

    # -- plumbing ---------------------------------------------------------------------------
    def _headers(self, account: str) -> dict[str, str]:
        # Tokens live in real time (the host application signs them), not the sandbox's time.
        token = issue_token(SECRET, account, ttl=timedelta(hours=1))
        return {"Authorization": f"Bearer {token}"}

    def _call(self, account: str, method: str, path: str, body: Any = None) -> Any:
        response = self.client.request(
            method, path, headers=self._headers(account), json=body, follow_redirects=False
        )
        if response.status_code >= 400:
            error = response.json()
            raise Rejected(error["code"], error["detail"])
        return response

    def _json(self, account: str, method: str, path: str, body: Any = None) -> Any:
        return self._call(account, method, path, body).json()

    def _page(self, url: str, form: dict[str, str] | None = None) -> Any:
        """A sandbox page: GET it, or POST one of its buttons; a refusal page is `Rejected`."""
        path = urlsplit(url).path
        if form is None:
            response = self.client.get(path, follow_redirects=False)
        else:
            response = self.client.post(path, data=form, follow_redirects=False)
        if response.status_code >= 400:
            found = _ERROR_CODE.search(response.text)
            raise Rejected(found.group(1) if found else f"http.{response.status_code}")
        return response

    def _portal(self, account: str) -> str:
        url: str = self._json(account, "POST", "/billing/portal", {"return_url": BILLING_PAGE})[
            "url"
        ]
        return url

    # -- time and the payment network -----------------------------------------------------
    def now(self) -> datetime:
        return self.clock.now()

    def advance_to(self, moment: datetime) -> None:
        delta = moment - self.clock.now()
        if delta >= timedelta(0) and delta % timedelta(days=1) == timedelta(0):
            response = self.client.post("/sandbox/clock/advance", json={"days": delta.days})
            assert response.status_code == 200, response.text
        else:
            self.gateway.advance_to(moment)

    def decline_next_payment(self) -> None:
        self.gateway.decline_next_payment()

    # -- starting and changing a subscription -----------------------------------------------
    def subscribe(self, account: str, plan: str, interval: str, card: str) -> SubscriptionFacts:
        checkout = self._json(
            account,
            "POST",
            "/billing/checkout",
            {"plan": plan, "interval": interval, "return_url": BILLING_PAGE},
        )
        page = self._page(checkout["url"])
        assert "no real payment" in page.text
        done = self._page(f"{checkout['url']}/complete", {"outcome": "succeeded", "card": card})
        if "declined=1" in done.headers["location"]:
            raise Rejected("payment.declined", "The checkout did not complete.")
        return self.subscription(account)

    def preview(self, account: str, plan: str, interval: str) -> QuoteFacts:
        body = {"plan": plan, "interval": interval}
        quote = self._json(account, "POST", "/billing/subscription/preview", body)
        return QuoteFacts(
            id=quote["quote_id"],
            plan=plan,
            interval=interval,
            takes_effect="now" if quote["timing"] == "immediate" else "end_of_period",
            amount_due_now=quote["amount_due_now"]["amount"],
            currency=quote["amount_due_now"]["currency"],
            effective_at=_at(quote["effective_at"]),
            expires_at=_at(quote["expires_at"]),
        )

    def change_plan(
        self, account: str, plan: str, interval: str, *, quote_id: str | None = None
    ) -> SubscriptionFacts:
        body: dict[str, str] = {"plan": plan, "interval": interval}
        if quote_id is not None:
            body["quote_id"] = quote_id
        return _facts(self._json(account, "POST", "/billing/subscription/change", body))

    def cancel_scheduled_change(self, account: str) -> SubscriptionFacts:
        return _facts(self._json(account, "DELETE", "/billing/subscription/pending-change"))

    def cancel(self, account: str) -> SubscriptionFacts:
        return _facts(self._json(account, "POST", "/billing/subscription/cancel"))

    def resume(self, account: str) -> SubscriptionFacts:
        return _facts(self._json(account, "POST", "/billing/subscription/resume"))

    def update_payment_method(self, account: str, card: str) -> Card | None:
        setup = self._json(
            account, "POST", "/billing/payment-method/setup", {"return_url": BILLING_PAGE}
        )
        self._page(setup["url"])
        done = self._page(f"{setup['url']}/complete", {"outcome": "succeeded", "card": card})
        if "declined=1" in done.headers["location"]:
            return None
        try:
            return self.subscription(account).card
        except Rejected:
            return None

    # -- the customer portal (Manage Billing) ---------------------------------------------
    def open_billing_portal(self, account: str) -> PortalFacts:
        url = self._portal(account)
        page = self._page(url)
        back = re.search(r'<a href="([^"]+)">← Return to ResponseIQ</a>', page.text)
        session_id = urlsplit(url).path.rsplit("/", 1)[1]
        customer = self.gateway.portal_session_customer(session_id)
        with self.uow() as uow:
            owner = uow.customers.account_for(customer)
        return PortalFacts(
            url=url, account=owner, returns_to=back.group(1).replace("&amp;", "&") if back else ""
        )

    def portal_change_plan(self, account: str, plan: str, interval: str) -> None:
        self._page(f"{self._portal(account)}/change-plan", {"plan": plan, "interval": interval})

    def portal_cancel(self, account: str) -> None:
        self._page(f"{self._portal(account)}/cancel", {})

    def portal_resume(self, account: str) -> None:
        self._page(f"{self._portal(account)}/resume", {})

    def portal_update_payment_method(self, account: str, card: str) -> None:
        self._page(f"{self._portal(account)}/payment-method", {"card": card})

    # -- reading ---------------------------------------------------------------------------
    def subscription(self, account: str) -> SubscriptionFacts:
        return _facts(self._json(account, "GET", "/billing/subscription"))

    def entitlements(self, account: str) -> EntitlementFacts:
        body = self._json(account, "GET", "/billing/entitlements")
        features = body["features"]
        return EntitlementFacts(
            plan=body["plan"],
            seats=features["seats"],
            monthly_responses=features["monthly_responses"],
            flags=frozenset(features["flags"]),
            access_until=_time(body["access_until"]),
        )

    def invoices(self, account: str) -> list[InvoiceFacts]:
        out: list[InvoiceFacts] = []
        query = f"?limit={INVOICE_PAGE_SIZE}"
        while True:
            page = self._json(account, "GET", f"/billing/invoices{query}")
            out.extend(_invoice(i) for i in page["data"])
            if not page["has_more"] or not page["data"]:
                return out
            query = f"?limit={INVOICE_PAGE_SIZE}&starting_after={page['data'][-1]['id']}"

    def invoice_pdf(self, account: str, invoice_id: str) -> bytes:
        redirect = self._call(account, "GET", f"/billing/invoices/{invoice_id}/pdf")
        assert redirect.status_code == 302, redirect.text
        document = self._page(redirect.headers["location"])
        assert document.headers["content-type"] == "application/pdf"
        content: bytes = document.content
        return content


def _facts(body: dict[str, Any]) -> SubscriptionFacts:
    change = body["pending_change"]
    card = body["payment_method"]
    return SubscriptionFacts(
        plan=body["plan"],
        interval=body["interval"],
        status=body["status"],
        period_start=_at(body["current_period_start"]),
        period_end=_at(body["current_period_end"]),
        cancel_at_period_end=body["cancel_at_period_end"],
        scheduled_change=(
            ScheduledChange(change["plan"], change["interval"], _at(change["effective_at"]))
            if change is not None
            else None
        ),
        card=Card(card["brand"], card["last4"]) if card is not None else None,
    )


def _invoice(body: dict[str, Any]) -> InvoiceFacts:
    return InvoiceFacts(
        id=body["id"],
        created=_at(body["created"]),
        amount_due=body["amount_due"],
        amount_paid=body["amount_paid"],
        currency=body["currency"],
        status=body["status"],
        reason=body["billing_reason"],
        has_pdf=body["pdf_url"] is not None,
    )
