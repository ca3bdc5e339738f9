"""The audit log is append-only in the database itself: rows can be added, never changed."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from responseiq_billing.adapters.sql.database import (
    create_engine_from_url,
    sql_unit_of_work_factory,
)
from responseiq_billing.adapters.sql.migrate import downgrade
from responseiq_billing.application.ports import AuditEntry


def _append(url: str) -> None:
    engine = create_engine_from_url(url)
    try:
        uow = sql_unit_of_work_factory(engine)
        with uow() as u:
            u.audit.append(
                AuditEntry("acct_ada", "plan.change", {"plan": "business"}, "ok", datetime.now(UTC))
            )
            u.commit()
    finally:
        engine.dispose()


@pytest.mark.parametrize(
    "statement",
    ["UPDATE audit_log SET outcome = 'rewritten'", "DELETE FROM audit_log"],
    ids=["update", "delete"],
)
def test_the_database_refuses_to_change_or_remove_audit_entries(
    migrated: str, statement: str
) -> None:
    _append(migrated)
    engine = create_engine_from_url(migrated)
    try:
        with pytest.raises(sa.exc.DBAPIError, match="append-only"), engine.begin() as conn:
            conn.execute(sa.text(statement))
        with engine.connect() as conn:
            rows = conn.execute(sa.text("SELECT outcome FROM audit_log")).scalars().all()
        assert rows == ["ok"]
    finally:
        engine.dispose()


def test_downgrading_past_the_guard_lifts_it(migrated: str) -> None:
    _append(migrated)
    downgrade(migrated, "0001")
    engine = create_engine_from_url(migrated)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("DELETE FROM audit_log"))
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT count(*) FROM audit_log")).scalar_one() == 0
    finally:
        engine.dispose()
