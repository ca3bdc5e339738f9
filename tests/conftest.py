"""Fixtures shared by every test folder: the catalog, a controllable clock, in-memory storage."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from adapters.fake.clock import ControllableClock
from adapters.fake.repositories import InMemoryStore
from domain.plans import Catalog, default_catalog


@pytest.fixture
def catalog() -> Catalog:
    return default_catalog()


@pytest.fixture
def clock() -> ControllableClock:
    return ControllableClock(datetime(2026, 3, 1, 9, 0, tzinfo=UTC))


@pytest.fixture
def store() -> InMemoryStore:
    return InMemoryStore()
