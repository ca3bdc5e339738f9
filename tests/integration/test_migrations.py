"""Alembic migrations: empty -> head -> base -> head on SQLite and PostgreSQL; models agree."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from responseiq_billing.adapters.sql.database import create_engine_from_url
from responseiq_billing.adapters.sql.migrate import (
    SchemaOutOfDate,
    current_revision,
    downgrade,
    ensure_schema,
    head_revision,
    is_up_to_date,
    schema_diff,
    upgrade,
)
from responseiq_billing.adapters.sql.tables import metadata
from tests.sql_fixtures import postgres_database, sqlite_url


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def empty_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield sqlite_url(tmp_path)
    else:
        with postgres_database("billing_migrations") as url:
            yield url


def tables_in(url: str) -> set[str]:
    engine = create_engine_from_url(url)
    try:
        return set(sa.inspect(engine).get_table_names()) - {"alembic_version"}
    finally:
        engine.dispose()


def test_upgrade_downgrade_and_upgrade_again_leave_the_schema_of_the_models(
    empty_database: str,
) -> None:
    url, every_table = empty_database, set(metadata.tables)
    assert current_revision(url) is None

    upgrade(url)
    assert (current_revision(url), tables_in(url)) == (head_revision(), every_table)

    downgrade(url)
    assert (current_revision(url), tables_in(url)) == (None, set())

    upgrade(url)
    assert tables_in(url) == every_table
    assert is_up_to_date(url)
    assert schema_diff(url) == []


def test_the_first_migration_creates_every_table_of_the_models_but_later_ones(
    empty_database: str,
) -> None:
    upgrade(empty_database, "0001")
    assert tables_in(empty_database) == set(metadata.tables) - {"checkouts"}  # 0003
    upgrade(empty_database, "0003")
    assert tables_in(empty_database) == set(metadata.tables)


def test_an_autogenerate_diff_notices_a_missing_index(empty_database: str) -> None:
    # Guards the guard: the empty diff above means something only if a drift shows up.
    upgrade(empty_database)
    engine = create_engine_from_url(empty_database)
    with engine.begin() as conn:
        conn.execute(sa.text("DROP INDEX ix_audit_log_account_id"))
    engine.dispose()
    assert any("ix_audit_log_account_id" in repr(change) for change in schema_diff(empty_database))


def test_sqlite_migrates_itself_on_start(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path)
    ensure_schema(url)
    assert is_up_to_date(url)
    ensure_schema(url)  # already at head: nothing to do
    assert current_revision(url) == head_revision()


@pytest.mark.postgres
def test_postgres_refuses_an_out_of_date_schema_and_names_the_command() -> None:
    with postgres_database("billing_ensure") as url:
        with pytest.raises(SchemaOutOfDate, match="billing db upgrade"):
            ensure_schema(url)
        assert current_revision(url) is None  # it did not migrate by itself

        upgrade(url)
        ensure_schema(url)
        assert is_up_to_date(url)
