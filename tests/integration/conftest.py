"""Fixtures shared by the integration tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from responseiq_billing.adapters.sql.migrate import upgrade
from tests.sql_fixtures import postgres_database, sqlite_url


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def migrated(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of a database migrated to head: a SQLite file, then a throwaway PostgreSQL one."""
    if request.param == "sqlite":
        url = sqlite_url(tmp_path)
        upgrade(url)
        yield url
    else:
        with postgres_database("billing_migrated") as url:
            upgrade(url)
            yield url
