"""The read cache never serves a stale subscription: a write committed anywhere shows on the
next read in every process, on SQLite and on PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import attrs
import httpx
import pytest
from litestar.testing import TestClient

from responseiq_billing.adapters.app import create_app
from responseiq_billing.adapters.config import Settings
from responseiq_billing.adapters.container import build_container
from responseiq_billing.adapters.http.auth import issue_token
from responseiq_billing.adapters.sql.database import (
    create_engine_from_url,
    sql_unit_of_work_factory,
)
from responseiq_billing.domain.plans import Interval
from responseiq_billing.domain.subscription import Status, Subscription
from tests.serving import billing_serve

SECRET = "test-secret-that-is-long-enough-for-hs256!"
ACCOUNT = "acct_cache"
START = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)

Read = Callable[[str], httpx.Response]


class Writer:
    """Another process's writes: its own engine and transactions, no cache of its own."""

    def __init__(self, url: str) -> None:
        self.engine = create_engine_from_url(url)
        self.uow = sql_unit_of_work_factory(self.engine)

    def add(self, plan: str) -> None:
        with self.uow() as uow:
            uow.customers.add(ACCOUNT, "cus_cache")
            uow.subscriptions.add(
                Subscription(
                    account_id=ACCOUNT,
                    customer_ref="cus_cache",
                    subscription_ref="sub_cache",
                    plan_id=plan,
                    interval=Interval.MONTH,
                    status=Status.ACTIVE,
                    current_period_start=START,
                    current_period_end=START + timedelta(days=31),
                )
            )
            uow.commit()

    def change(self, **fields: Any) -> None:
        with self.uow() as uow:
            sub = uow.subscriptions.for_account(ACCOUNT)
            assert sub is not None
            uow.subscriptions.save(attrs.evolve(sub, **fields))
            uow.commit()


def readers_never_see_a_stale_subscription(readers: list[Read], writer: Writer) -> None:
    def seen() -> list[tuple[int, Any, Any]]:
        out = []
        for read in readers:
            for _ in range(2):  # the second read is served from what the first one filled
                response = read("/billing/subscription")
                body = response.json() if response.status_code == 200 else {}
                out.append(
                    (response.status_code, body.get("plan"), body.get("cancel_at_period_end"))
                )
                assert read("/billing/entitlements").status_code == 200
        return out

    assert set(seen()) == {(404, None, None)}
    writer.add("growth")
    assert set(seen()) == {(200, "growth", False)}
    for plan in ("business", "starter", "growth", "business"):
        writer.change(plan_id=plan)
        assert set(seen()) == {(200, plan, False)}
    writer.change(cancel_at_period_end=True)
    assert set(seen()) == {(200, "business", True)}


def _token() -> str:
    return issue_token(SECRET, ACCOUNT, ttl=timedelta(hours=1))


def test_two_apps_over_one_database_never_read_a_stale_subscription(migrated: str) -> None:
    settings = Settings.from_env({"BILLING_DATABASE_URL": migrated, "BILLING_AUTH_SECRET": SECRET})
    auth = {"Authorization": f"Bearer {_token()}"}
    with ExitStack() as stack:
        clients = [
            stack.enter_context(TestClient(create_app(build_container(settings)))) for _ in range(2)
        ]
        readers: list[Read] = [
            (lambda path, client=client: client.get(path, headers=auth)) for client in clients
        ]
        readers_never_see_a_stale_subscription(readers, Writer(migrated))


@pytest.fixture
def two_servers(migrated: str, tmp_path: Path) -> Iterator[list[str]]:
    env = {"BILLING_DATABASE_URL": migrated, "BILLING_AUTH_SECRET": SECRET}
    with ExitStack() as stack:
        bases = []
        for name in ("a", "b"):
            (tmp_path / name).mkdir()
            bases.append(stack.enter_context(billing_serve(tmp_path / name, env=env)))
        yield bases


def test_two_billing_serve_processes_never_read_a_stale_subscription(
    migrated: str, two_servers: list[str]
) -> None:
    auth = {"Authorization": f"Bearer {_token()}"}
    readers: list[Read] = [
        (lambda path, base=base: httpx.get(base + path, headers=auth)) for base in two_servers
    ]
    readers_never_see_a_stale_subscription(readers, Writer(migrated))
