"""Engine configuration, database URLs and the storage of instants."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
import sqlalchemy as sa

from responseiq_billing.adapters.sql.database import (
    DEFAULT_DATABASE_URL,
    create_engine_from_url,
    database_url_from_env,
    normalise_url,
    sql_unit_of_work_factory,
)
from responseiq_billing.adapters.sql.migrate import upgrade
from responseiq_billing.adapters.sql.tables import audit_log
from responseiq_billing.application.ports import AuditEntry
from tests.sql_fixtures import postgres_database, sqlite_url


def test_the_database_url_defaults_to_a_sqlite_file_in_the_working_directory() -> None:
    assert database_url_from_env({}) == DEFAULT_DATABASE_URL == "sqlite:///./billing.db"
    assert database_url_from_env({"BILLING_DATABASE_URL": "  "}) == DEFAULT_DATABASE_URL
    pg = "postgresql+psycopg://billing@db:5432/billing"
    assert database_url_from_env({"BILLING_DATABASE_URL": pg}) == pg


@pytest.mark.parametrize("given", ["postgres://u@h/db", "postgresql://u@h/db"])
def test_a_postgres_url_without_a_driver_uses_psycopg(given: str) -> None:
    assert normalise_url(given).drivername == "postgresql+psycopg"


def test_creating_an_engine_does_not_touch_the_database(tmp_path: Path) -> None:
    engine = create_engine_from_url(sqlite_url(tmp_path, "later.db"))
    assert not (tmp_path / "later.db").exists()
    engine.dispose()


def test_sqlite_runs_with_foreign_keys_wal_and_a_busy_timeout(tmp_path: Path) -> None:
    engine = create_engine_from_url(sqlite_url(tmp_path))
    with engine.connect() as conn:
        pragmas = {
            name: conn.exec_driver_sql(f"PRAGMA {name}").scalar()
            for name in ("foreign_keys", "journal_mode", "busy_timeout")
        }
    engine.dispose()
    assert pragmas == {"foreign_keys": 1, "journal_mode": "wal", "busy_timeout": 5000}


def test_a_unit_of_work_is_only_usable_inside_its_with_block(tmp_path: Path) -> None:
    engine = create_engine_from_url(sqlite_url(tmp_path))
    uow = sql_unit_of_work_factory(engine)()
    with pytest.raises(RuntimeError):
        uow.commit()
    engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[sa.Engine]:
    def made(url: str) -> sa.Engine:
        upgrade(url)
        return create_engine_from_url(url)

    if request.param == "sqlite":
        eng = made(sqlite_url(tmp_path))
        yield eng
        eng.dispose()
    else:
        with postgres_database("billing_types") as url:
            eng = made(url)
            yield eng
            eng.dispose()


def test_instants_are_stored_as_utc_and_come_back_aware_in_utc(engine: sa.Engine) -> None:
    cest = timezone(timedelta(hours=2))
    written = datetime(2026, 3, 29, 3, 30, 0, 500, tzinfo=cest)
    uow = sql_unit_of_work_factory(engine)
    with uow() as u:
        u.audit.append(AuditEntry("acct_ada", "x", {}, "ok", written))
        u.commit()
    with uow() as u:
        [entry] = u.audit.for_account("acct_ada")
    assert entry.at == written
    assert entry.at.tzinfo is UTC
    assert entry.at.hour == 1


def test_a_naive_datetime_is_refused_rather_than_guessed(engine: sa.Engine) -> None:
    with engine.connect() as conn, pytest.raises(sa.exc.StatementError, match="naive"):
        conn.execute(
            audit_log.insert().values(
                account_id="a", action="x", inputs={}, outcome="ok", at=datetime(2026, 3, 1)
            )
        )
