"""Fixtures shared by every test folder: the catalog, a controllable clock, in-memory storage."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from responseiq_billing.adapters.fake.clock import ControllableClock
from responseiq_billing.adapters.fake.repositories import InMemoryStore
from responseiq_billing.domain.plans import Catalog, default_catalog


@pytest.fixture
def catalog() -> Catalog:
    return default_catalog()


@pytest.fixture
def clock() -> ControllableClock:
    return ControllableClock(datetime(2026, 3, 1, 9, 0, tzinfo=UTC))


@pytest.fixture
def store() -> InMemoryStore:
    return InMemoryStore()


def pytest_addoption(parser: pytest.Parser) -> None:
    """Options of the Gherkin suite (tests/bdd); pytest reads this hook only from the root conftest."""
    group = parser.getgroup("bdd", "the help article as Gherkin")
    group.addoption(
        "--bdd-driver",
        default="use_cases,http,stripe,paddle",
        help="how the scenarios reach the service, comma-separated (default: all four): "
        "use_cases (in process), http (the API), stripe (the Stripe adapter over HTTP to the "
        "local Stripe double), paddle (the Paddle adapter over HTTP to the local Paddle double, "
        "its notifications through POST /webhooks/paddle)",
    )
    group.addoption(
        "--bdd-store",
        default="memory",
        choices=("memory", "sqlite"),
        help="where the service keeps its state while the scenarios run",
    )
