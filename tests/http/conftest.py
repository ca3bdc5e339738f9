"""Fixtures for the HTTP tests: an app on the sandbox gateway and in-memory storage, and tokens."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from dependency_injector import providers
from litestar.testing import TestClient

from responseiq_billing.adapters.app import create_app
from responseiq_billing.adapters.config import Settings
from responseiq_billing.adapters.container import Container, MemoryStorage, build_container
from responseiq_billing.adapters.fake.clock import ControllableClock
from responseiq_billing.adapters.fake.gateway import FakeGateway
from responseiq_billing.adapters.fake.repositories import InMemoryStore
from responseiq_billing.adapters.http.auth import issue_token

SECRET = "test-secret-that-is-long-enough-for-hs256!"
ENV = {"BILLING_DATABASE_URL": "memory://", "BILLING_AUTH_SECRET": SECRET}

START = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)

Headers = dict[str, str]


@pytest.fixture
def settings() -> Settings:
    return Settings.from_env(ENV)


@pytest.fixture
def container(settings: Settings) -> Container:
    container = build_container(settings)
    # A fixed start keeps period dates in assertions readable.
    container.clock.override(providers.Singleton(ControllableClock, START))
    return container


@pytest.fixture
def client(container: Container) -> Iterator[TestClient[Any]]:
    with TestClient(create_app(container)) as test_client:
        yield test_client


@pytest.fixture
def fake(container: Container) -> FakeGateway:
    gateway: FakeGateway = container.gateway()
    return gateway


def memory_store(container: Container) -> InMemoryStore:
    """The in-memory store behind the container's storage (these tests' `memory://`)."""
    storage = container.storage()
    assert isinstance(storage, MemoryStorage), storage
    return storage.store


def bearer(
    account_id: str, *, secret: str = SECRET, ttl: timedelta = timedelta(hours=1)
) -> Headers:
    return {"Authorization": f"Bearer {issue_token(secret, account_id, ttl=ttl)}"}


@pytest.fixture
def auth() -> Callable[[str], Headers]:
    return bearer


def subscribe(
    client: TestClient[Any], account_id: str, plan: str = "growth", interval: str = "month"
) -> str:
    """Checkout through the API and pay on the sandbox page; returns the checkout id."""
    started = client.post(
        "/billing/checkout", headers=bearer(account_id), json={"plan": plan, "interval": interval}
    )
    assert started.status_code == 201, started.text
    checkout_id: str = started.json()["checkout_id"]
    paid = client.post(
        f"/sandbox/checkout/{checkout_id}/complete",
        data={"outcome": "succeeded", "card": "visa"},
        follow_redirects=False,
    )
    assert paid.status_code == 303, paid.text
    return checkout_id


@pytest.fixture
def subscribed(client: TestClient[Any]) -> Callable[..., str]:
    def make(account_id: str, plan: str = "growth", interval: str = "month") -> str:
        return subscribe(client, account_id, plan, interval)

    return make
