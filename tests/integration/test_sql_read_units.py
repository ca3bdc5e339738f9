"""Units of work that only read: SQLite begins them deferred; writes keep BEGIN IMMEDIATE."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from responseiq_billing.adapters.container import SqlStorage, _read_cache
from responseiq_billing.adapters.sql.database import (
    create_engine_from_url,
    sql_unit_of_work_factory,
)
from responseiq_billing.adapters.sql.migrate import upgrade
from responseiq_billing.application.ports import AuditEntry
from tests.sql_fixtures import sqlite_url


@pytest.fixture
def url(tmp_path: Path) -> str:
    upgrade(sqlite_url(tmp_path))
    return sqlite_url(tmp_path)


@pytest.fixture
def engine(url: str) -> Iterator[sa.Engine]:
    eng = create_engine_from_url(url)
    yield eng
    eng.dispose()


def _begins(engine: sa.Engine) -> list[str]:
    seen: list[str] = []

    @sa.event.listens_for(engine, "before_cursor_execute")
    def note(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        if statement.startswith("BEGIN"):
            seen.append(statement)

    return seen


def test_a_read_only_unit_begins_deferred_and_a_unit_that_may_write_takes_the_lock(
    engine: sa.Engine,
) -> None:
    begins = _begins(engine)
    with sql_unit_of_work_factory(engine, read_only=True)() as uow:
        uow.subscriptions.for_account("acct_ada")
    with sql_unit_of_work_factory(engine)() as uow:
        uow.subscriptions.for_account("acct_ada")
    assert begins == ["BEGIN", "BEGIN IMMEDIATE"]


def test_a_read_only_unit_reads_while_another_connection_holds_the_write_lock(
    engine: sa.Engine, tmp_path: Path
) -> None:
    with sql_unit_of_work_factory(engine)() as uow:
        uow.audit.append(AuditEntry("acct_ada", "test", {}, "ok", datetime(2026, 3, 1, tzinfo=UTC)))
        uow.commit()
    writer = sqlite3.connect(tmp_path / "billing.db", isolation_level=None)
    try:
        writer.execute("BEGIN IMMEDIATE")  # holds the write lock until the end of the test
        # A BEGIN IMMEDIATE here would wait for the writer and fail (busy); deferred, it reads
        # the last committed state.
        with sql_unit_of_work_factory(engine, read_only=True)() as uow:
            assert [e.action for e in uow.audit.for_account("acct_ada")] == ["test"]
    finally:
        writer.execute("ROLLBACK")
        writer.close()


def test_a_read_only_unit_refuses_to_commit(engine: sa.Engine) -> None:
    with (
        sql_unit_of_work_factory(engine, read_only=True)() as uow,
        pytest.raises(RuntimeError, match="read-only"),
    ):
        uow.commit()


def test_the_read_cache_loads_through_read_only_units(url: str) -> None:
    storage = SqlStorage(url)
    begins = _begins(storage.engine)
    try:
        cache = _read_cache(storage)
        assert cache._load("acct_ada") is None
    finally:
        storage.close()
    assert begins == ["BEGIN"]
