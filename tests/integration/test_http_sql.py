"""The HTTP API on real databases: SQLite (the embedded default) and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from litestar.testing import TestClient

from responseiq_billing.adapters.app import create_app
from responseiq_billing.adapters.cli import main
from responseiq_billing.adapters.config import Settings
from responseiq_billing.adapters.container import Container, build_container
from responseiq_billing.adapters.sql.migrate import SchemaOutOfDate, downgrade, upgrade
from tests.http.conftest import SECRET, bearer, subscribe
from tests.sql_fixtures import postgres_database, sqlite_url

A, B = "acct_sql_a", "acct_sql_b"


def _container(url: str) -> Container:
    return build_container(
        Settings.from_env({"BILLING_DATABASE_URL": url, "BILLING_AUTH_SECRET": SECRET})
    )


@pytest.fixture
def sqlite(tmp_path: Path) -> str:
    return sqlite_url(tmp_path)


@pytest.fixture
def client(sqlite: str) -> Iterator[TestClient]:
    with TestClient(create_app(_container(sqlite))) as test_client:
        yield test_client


def test_start_migrates_the_sqlite_database_and_the_app_is_ready(
    client: TestClient, sqlite: str
) -> None:
    assert client.get("/ready").json() == {"status": "ready"}
    tables = set(sa.inspect(sa.create_engine(sqlite)).get_table_names())
    assert {"subscriptions", "alembic_version"} <= tables


def test_a_subscription_journey_is_stored_in_sqlite(client: TestClient, sqlite: str) -> None:
    subscribe(client, A)
    h = bearer(A)
    preview = client.post(
        "/billing/subscription/preview", headers=h, json={"plan": "business", "interval": "month"}
    ).json()
    changed = client.post(
        "/billing/subscription/change",
        headers=h,
        json={"plan": "business", "interval": "month", "quote_id": preview["quote_id"]},
    )
    assert changed.status_code == 200
    assert client.post("/billing/subscription/cancel", headers=h).status_code == 200
    invoices = client.get("/billing/invoices", headers=h).json()["data"]
    assert len(invoices) == 2
    # Another account sees none of it.
    assert client.get("/billing/subscription", headers=bearer(B)).status_code == 404
    pdf = client.get(f"/billing/invoices/{invoices[0]['id']}/pdf", headers=bearer(B))
    assert pdf.status_code == 404
    # A second app on the same file reads what the first one stored.
    with TestClient(create_app(_container(sqlite))) as again:
        sub = again.get("/billing/subscription", headers=h).json()
    assert (sub["plan"], sub["cancel_at_period_end"]) == ("business", True)


def test_ready_reports_a_schema_that_is_not_current(client: TestClient, sqlite: str) -> None:
    downgrade(sqlite, "base")
    response = client.get("/ready")
    assert response.status_code == 503
    assert response.json()["code"] == "not_ready"
    upgrade(sqlite)
    assert client.get("/ready").status_code == 200


@pytest.mark.postgres
def test_an_out_of_date_postgresql_schema_stops_start_up_with_the_command_to_run() -> None:
    with postgres_database("billing_http") as url:
        container = _container(url)
        with pytest.raises(SchemaOutOfDate, match="billing db upgrade"):
            container.storage().prepare()
        container.storage().close()


@pytest.mark.postgres
def test_on_postgresql_the_cli_migrates_and_the_app_serves(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with postgres_database("billing_http") as url:
        monkeypatch.setenv("BILLING_DATABASE_URL", url)
        assert main(["db", "upgrade"]) == 0
        assert "upgraded to head" in capsys.readouterr().out
        container = _container(url)
        with TestClient(create_app(container)) as client:
            assert client.get("/ready").json() == {"status": "ready"}
            subscribe(client, A)
            assert client.get("/billing/subscription", headers=bearer(A)).status_code == 200
        container.storage().close()
        assert main(["db", "downgrade", "base"]) == 0
