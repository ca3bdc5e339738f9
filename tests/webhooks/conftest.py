"""The app in Stripe mode on a SQLite file, the Stripe double it talks to, and a webhook sender."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from litestar.testing import TestClient

from responseiq_billing.adapters.app import create_app
from responseiq_billing.adapters.container import Container
from responseiq_billing.adapters.fake.clock import ControllableClock
from responseiq_billing.domain.plans import default_catalog
from tests.http.conftest import bearer
from tests.sql_fixtures import sqlite_url
from tests.stripe_double import StripeDouble, running_double
from tests.webhooks.harness import (
    AUTH_SECRET,
    SECRET,
    body_of,
    sign,
    stripe_container,
)


@pytest.fixture
def double(clock: ControllableClock) -> Iterator[StripeDouble]:
    with running_double(clock, default_catalog()) as stripe_double:
        yield stripe_double


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    return sqlite_url(tmp_path)


@pytest.fixture
def container(double: StripeDouble, clock: ControllableClock, database_url: str) -> Container:
    return stripe_container(double, clock, database_url)


@pytest.fixture
def client(container: Container) -> Iterator[TestClient[Any]]:
    with TestClient(create_app(container)) as test_client:
        yield test_client


class Stripe:
    """Stripe's side: the double's events, delivered signed to `POST /webhooks/stripe`."""

    def __init__(self, client: TestClient[Any], double: StripeDouble) -> None:
        self.client, self.double = client, double
        self.cursor = 0

    def post(
        self,
        event: dict[str, Any] | bytes,
        *,
        secret: str = SECRET,
        at: int | None = None,
        header: str | None = None,
    ) -> httpx.Response:
        body = event if isinstance(event, bytes) else body_of(event)
        headers = {"Content-Type": "application/json"}
        signature = sign(body, secret, at) if header is None else header
        if signature:
            headers["Stripe-Signature"] = signature
        return self.client.post("/webhooks/stripe", content=body, headers=headers)

    def new_events(self) -> list[dict[str, Any]]:
        events = self.double.events_since(self.cursor)
        self.cursor += len(events)
        return events

    def deliver_new(self) -> list[dict[str, Any]]:
        """Every event emitted since the last delivery, each acknowledged with 200."""
        events = self.new_events()
        for event in events:
            answer = self.post(event)
            assert answer.status_code == 200, answer.text
        return events


@pytest.fixture
def stripe(client: TestClient[Any], double: StripeDouble) -> Stripe:
    return Stripe(client, double)


def headers(account_id: str) -> dict[str, str]:
    return bearer(account_id, secret=AUTH_SECRET)


def subscription_shown(client: TestClient[Any], account_id: str) -> dict[str, Any]:
    """What `GET /billing/subscription` shows the account."""
    shown: dict[str, Any] = client.get("/billing/subscription", headers=headers(account_id)).json()
    return shown


def sign_up(client: TestClient[Any], double: StripeDouble, account_id: str, plan: str) -> str:
    """Checkout through the API, paid on Stripe's page, return page visited; the checkout id."""
    started = client.post(
        "/billing/checkout", headers=headers(account_id), json={"plan": plan, "interval": "month"}
    )
    assert started.status_code == 201, started.text
    checkout_id: str = started.json()["checkout_id"]
    double.complete_checkout(checkout_id)
    done = client.post(f"/billing/checkout/{checkout_id}/complete", headers=headers(account_id))
    assert done.status_code == 200, done.text
    assert done.json()["status"] == "complete", done.text
    return checkout_id
