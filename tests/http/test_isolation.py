"""The isolation matrix: with its own token, account B can neither read nor change anything of A."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from litestar.testing import TestClient

from responseiq_billing.adapters.container import Container
from tests.http.conftest import bearer, memory_store

A, B = "acct_a", "acct_b"


def _state_of_a(client: TestClient[Any], container: Container) -> dict[str, Any]:
    h = bearer(A)
    store = memory_store(container)
    return {
        "subscription": client.get("/billing/subscription", headers=h).json(),
        "entitlements": client.get("/billing/entitlements", headers=h).json(),
        "invoices": client.get("/billing/invoices", headers=h).json(),
        "audit": [(e.action, e.outcome) for e in store.data.audit if e.account_id == A],
    }


@pytest.fixture
def a_with_history(client: TestClient[Any], subscribed: Callable[..., str]) -> dict[str, str]:
    """A: subscribed, a new card, a scheduled downgrade, an open quote, invoices. A's ids."""
    checkout = subscribed(A, "growth", "month")
    h = bearer(A)
    setup = client.post("/billing/payment-method/setup", headers=h).json()["setup_id"]
    client.post(
        f"/sandbox/setup/{setup}/complete",
        data={"outcome": "succeeded", "card": "mastercard"},
        follow_redirects=False,
    )
    quote = client.post(
        "/billing/subscription/preview", headers=h, json={"plan": "business", "interval": "month"}
    ).json()["quote_id"]
    client.post(
        "/billing/subscription/change", headers=h, json={"plan": "starter", "interval": "month"}
    )
    invoice = client.get("/billing/invoices", headers=h).json()["data"][0]["id"]
    return {"quote": quote, "invoice": invoice, "checkout": checkout, "setup": setup}


# (method, path, body) for every /billing route; `{invoice}`, `{quote}`, `{checkout}` and
# `{setup}` are A's ids.
ROUTES: list[tuple[str, str, dict[str, Any] | None]] = [
    ("GET", "/billing/plans", None),
    ("GET", "/billing/subscription", None),
    ("GET", "/billing/entitlements", None),
    ("POST", "/billing/checkout", {"plan": "business", "interval": "year"}),
    ("POST", "/billing/checkout/{checkout}/complete", None),
    ("POST", "/billing/portal", {}),
    ("POST", "/billing/subscription/preview", {"plan": "business", "interval": "month"}),
    (
        "POST",
        "/billing/subscription/change",
        {"plan": "business", "interval": "month", "quote_id": "{quote}"},
    ),
    ("POST", "/billing/subscription/change", {"plan": "starter", "interval": "year"}),
    ("DELETE", "/billing/subscription/pending-change", None),
    ("POST", "/billing/subscription/cancel", None),
    ("POST", "/billing/subscription/resume", None),
    ("POST", "/billing/payment-method/setup", {}),
    ("POST", "/billing/payment-method/setup/{setup}/complete", None),
    ("GET", "/billing/invoices", None),
    ("GET", "/billing/invoices?starting_after={invoice}", None),
    ("GET", "/billing/invoices/{invoice}/pdf", None),
]


def _call(
    client: TestClient[Any], account: str, route: tuple[str, str, Any], ids: dict[str, str]
) -> Any:
    method, path, body = route
    path = path.format(**ids)
    if isinstance(body, dict):
        body = {k: v.format(**ids) if isinstance(v, str) else v for k, v in body.items()}
    return client.request(method, path, headers=bearer(account), json=body, follow_redirects=False)


def _ids(route: tuple[str, str, Any]) -> str:
    return f"{route[0]} {route[1]}" + (" +quote" if route[2] and "quote_id" in route[2] else "")


def _b_calls_leaving_a_untouched(
    client: TestClient[Any], container: Container, route: tuple[str, str, Any], ids: dict[str, str]
) -> Any:
    """B calls `route` with A's ids: no 5xx, nothing of A's in the answer, A's state unchanged."""
    before = _state_of_a(client, container)
    response = _call(client, B, route, ids)
    assert response.status_code < 500
    assert A not in response.text
    for value in ids.values():
        assert value not in response.text
    assert _state_of_a(client, container) == before
    return response


@pytest.mark.parametrize("route", ROUTES, ids=_ids)
def test_an_account_without_a_subscription_cannot_touch_another_accounts_billing(
    client: TestClient[Any],
    container: Container,
    a_with_history: dict[str, str],
    route: tuple[str, str, Any],
) -> None:
    response = _b_calls_leaving_a_untouched(client, container, route, a_with_history)
    if "{invoice}" in route[1]:
        assert response.status_code == 404
        assert response.json()["code"] == "invoice.not_found"
    if "{checkout}" in route[1]:
        assert (response.status_code, response.json()["code"]) == (404, "checkout.not_found")
    if "{setup}" in route[1]:  # B has no billing customer at all yet
        assert (response.status_code, response.json()["code"]) == (404, "customer.not_found")


@pytest.mark.parametrize("route", ROUTES, ids=_ids)
def test_a_subscribed_account_acts_only_on_its_own_subscription(
    client: TestClient[Any],
    container: Container,
    subscribed: Callable[..., str],
    a_with_history: dict[str, str],
    route: tuple[str, str, Any],
) -> None:
    subscribed(B, "business", "month")
    response = _b_calls_leaving_a_untouched(client, container, route, a_with_history)
    if "{invoice}" in route[1]:
        assert response.status_code == 404
    if "{checkout}" in route[1] or "{setup}" in route[1]:
        assert (response.status_code, response.json()["code"]) == (404, "checkout.not_found")
    if "quote_id" in (route[2] or {}):
        assert response.status_code == 404
        assert response.json()["code"] == "quote.not_found"
    if route[1] == "/billing/subscription":
        assert response.json()["plan"] == "business"


def test_another_accounts_portal_session_is_for_its_own_customer_only(
    client: TestClient[Any], container: Container, subscribed: Callable[..., str]
) -> None:
    subscribed(A)
    subscribed(B, "starter", "month")
    fake = container.gateway()
    url_b = client.post("/billing/portal", headers=bearer(B), json={}).json()["url"]
    customer_b = fake.portal_session_customer(url_b.rsplit("/", 1)[1])
    store = memory_store(container)
    assert customer_b == store.data.customers[B]
    assert customer_b != store.data.customers[A]
