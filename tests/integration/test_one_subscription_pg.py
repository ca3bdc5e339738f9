"""Twenty checkouts at once for one account end in one paying subscription (issue 9, item 4).

A real app (the API and the sandbox's checkout pages) on PostgreSQL, and on SQLite: twenty
threads start checkouts for one account at the same moment, then every checkout page that
can still be paid is paid at once. The gateway must end with one live subscription, one
creation charge kept (any other refunded), and nothing else renewing once the sandbox clock
passes a renewal. The sandbox clock is pinned and only moved on purpose.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import pytest
import sqlalchemy as sa
from dependency_injector import providers
from litestar.testing import TestClient

from responseiq_billing.adapters.app import create_app
from responseiq_billing.adapters.config import Settings
from responseiq_billing.adapters.container import Container, build_container
from responseiq_billing.adapters.fake.clock import ControllableClock
from responseiq_billing.adapters.fake.gateway import FakeGateway
from responseiq_billing.adapters.sql.database import create_engine_from_url
from responseiq_billing.adapters.sql.migrate import upgrade
from responseiq_billing.adapters.sql.tables import accounts, checkouts
from responseiq_billing.application.ports import CheckoutStatus, InboxStatus, UiMode
from responseiq_billing.domain.invoices import BillingReason, Invoice, InvoiceStatus
from responseiq_billing.domain.subscription import Status
from tests.http.conftest import SECRET, bearer
from tests.sql_fixtures import postgres_database, sqlite_url

THREADS = 20
ACCOUNT = "acct_twenty_tabs"
H = bearer(ACCOUNT)
START = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
T = TypeVar("T")


@pytest.fixture(params=[pytest.param("postgres", marks=pytest.mark.postgres), "sqlite"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        url = sqlite_url(tmp_path)
        upgrade(url)
        yield url
    else:
        with postgres_database("billing_one_subscription") as url:
            upgrade(url)
            yield url


@contextmanager
def _app(url: str) -> Iterator[tuple[TestClient[Any], Container]]:
    container = build_container(
        Settings.from_env({"BILLING_DATABASE_URL": url, "BILLING_AUTH_SECRET": SECRET})
    )
    container.clock.override(providers.Singleton(ControllableClock, START))
    with TestClient(create_app(container)) as client:
        yield client, container
    container.storage().close()


def _at_once(calls: list[Callable[[], T]]) -> list[T]:
    """Run every call in its own thread, all released together; any exception fails the test."""
    start = threading.Barrier(len(calls))
    results: list[T | None] = [None] * len(calls)
    errors: list[BaseException] = []

    def run(n: int) -> None:
        start.wait()
        try:
            results[n] = calls[n]()
        except BaseException as error:  # collected so the main thread fails loudly
            errors.append(error)

    threads = [threading.Thread(target=run, args=(n,)) for n in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    return [r for r in results if r is not None]


def _drain(container: Container) -> None:
    """Apply everything stored, retrying at once what backed off (the sandbox clock is still)."""
    admin, process = container.inbox_admin(), container.process_inbox()
    for _ in range(50):
        while process.run_once(limit=50).claimed:
            pass
        waiting = admin.list(InboxStatus.PENDING, limit=500)
        if not waiting:
            return
        for event in waiting:
            admin.retry(event.event_id)
    raise AssertionError("the inbox did not drain")


def _customer(container: Container) -> str:
    with container.storage().unit_of_work() as uow:
        customer = uow.customers.get(ACCOUNT)
    assert customer is not None
    return customer


def _pay(client: TestClient[Any], checkout_id: str) -> Any:
    return client.post(
        f"/sandbox/checkout/{checkout_id}/complete",
        data={"outcome": "succeeded", "card": "visa"},
        follow_redirects=False,
    )


def _creation_invoices(fake: FakeGateway, customer: str) -> list[Invoice]:
    return [
        i
        for i in fake.customer_invoices(customer)
        if i.billing_reason is BillingReason.SUBSCRIPTION_CREATE and i.status is InvoiceStatus.PAID
    ]


def _after_a_renewal_only_one_renews(
    client: TestClient[Any], container: Container, fake: FakeGateway, customer: str
) -> str:
    """Moves the sandbox past the first renewal; returns the one live subscription's ref."""
    moved = client.post("/sandbox/clock/advance", headers=H, json={"days": 32})
    assert moved.status_code == 200, moved.text
    _drain(container)
    [live] = [s for s in fake.customer_subscriptions(customer) if s.status.is_live]
    renewals = [
        i.subscription_ref
        for i in fake.customer_invoices(customer)
        if i.billing_reason is BillingReason.SUBSCRIPTION_CYCLE
    ]
    assert renewals == [live.subscription_ref]
    held = client.get("/billing/subscription", headers=H).json()
    assert (held["plan"], held["status"]) == ("growth", "active")
    with container.storage().unit_of_work() as uow:
        stored = uow.subscriptions.for_account(ACCOUNT)
        stats = uow.inbox.stats(container.clock().now())
    assert stored is not None and stored.subscription_ref == live.subscription_ref
    assert (stats.pending, stats.parked) == (0, 0)
    return live.subscription_ref


def test_twenty_concurrent_checkouts_leave_one_payable_page_and_one_paying_subscription(
    database: str,
) -> None:
    with _app(database) as (client, container):
        fake: FakeGateway = container.gateway()

        started = _at_once(
            [
                lambda: client.post(
                    "/billing/checkout", headers=H, json={"plan": "growth", "interval": "month"}
                )
                for _ in range(THREADS)
            ]
        )
        assert [r.status_code for r in started] == [201] * THREADS, [r.text for r in started]
        ids = [r.json()["checkout_id"] for r in started]
        assert len(set(ids)) == THREADS

        # Every page is paid at once: only the checkout recorded last can still take money.
        paid = _at_once([partial(_pay, client, i) for i in ids])
        assert sorted(r.status_code for r in paid) == [303] + [409] * (THREADS - 1)
        assert all("expired" in r.text for r in paid if r.status_code == 409)
        _drain(container)

        customer = _customer(container)
        [sub] = fake.customer_subscriptions(customer)
        assert sub.status is Status.ACTIVE
        [charge] = _creation_invoices(fake, customer)
        assert fake.invoice_refund(charge.id) is None
        engine = create_engine_from_url(database)
        with engine.connect() as conn:
            rows = conn.execute(sa.select(checkouts.c.id, checkouts.c.status)).all()
        engine.dispose()
        statuses = sorted(status for _, status in rows)
        assert statuses == ["complete"] + ["expired"] * (THREADS - 1)
        assert {checkout_id for checkout_id, _ in rows} == set(ids)
        assert [fake.get_checkout(i).status for i in ids].count(CheckoutStatus.COMPLETE) == 1

        assert _after_a_renewal_only_one_renews(client, container, fake, customer) == (
            sub.subscription_ref
        )


def test_twenty_checkouts_paid_before_they_could_be_expired_keep_one_and_refund_nineteen(
    database: str,
) -> None:
    # The race the gateway lets through: twenty pages all still open (as if each was paid
    # before the next start could expire it), paid at the same moment.
    with _app(database) as (client, container):
        fake: FakeGateway = container.gateway()
        first = client.post(
            "/billing/checkout", headers=H, json={"plan": "growth", "interval": "month"}
        )
        assert first.status_code == 201, first.text
        customer = _customer(container)
        price = container.catalog().price("growth", "month")
        others = [
            fake.start_checkout(
                customer_ref=customer,
                account_id=ACCOUNT,
                price=price,
                success_url="http://127.0.0.1:8000/?checkout=success&checkout_id={CHECKOUT_SESSION_ID}",
                cancel_url="http://127.0.0.1:8000/?checkout=canceled",
                ui_mode=UiMode.HOSTED,
                idempotency_key=f"elsewhere:{n}",
            ).id
            for n in range(THREADS - 1)
        ]
        ids = [first.json()["checkout_id"], *others]

        paid = _at_once([partial(_pay, client, i) for i in ids])
        assert [r.status_code for r in paid] == [303] * THREADS, [r.text for r in paid]
        _drain(container)

        subs = fake.customer_subscriptions(customer)
        assert len(subs) == THREADS
        [live] = [s for s in subs if s.status.is_live]
        assert sorted(s.status.value for s in subs if s is not live) == ["canceled"] * (THREADS - 1)
        charges = _creation_invoices(fake, customer)
        assert len(charges) == THREADS
        kept = [i for i in charges if fake.invoice_refund(i.id) is None]
        assert [i.subscription_ref for i in kept] == [live.subscription_ref]
        with container.storage().unit_of_work() as uow:
            entries = [
                e
                for e in uow.audit.for_account(ACCOUNT)
                if e.action == "subscription.duplicate_canceled"
            ]
        assert sorted(e.inputs["subscription"] for e in entries) == sorted(
            s.subscription_ref for s in subs if s is not live
        )
        assert {e.inputs["kept"] for e in entries} == {live.subscription_ref}

        assert _after_a_renewal_only_one_renews(client, container, fake, customer) == (
            live.subscription_ref
        )


def test_the_database_itself_refuses_a_second_open_checkout_for_an_account(database: str) -> None:
    engine = create_engine_from_url(database)
    row = {
        "account_id": ACCOUNT,
        "plan_id": "growth",
        "interval": "month",
        "created_at": START,
    }
    try:
        with engine.begin() as conn:
            conn.execute(
                accounts.insert().values(account_id=ACCOUNT, customer_ref="cus_x", created_at=START)
            )
            conn.execute(checkouts.insert().values(id="cs_1", status="open", **row))
            conn.execute(
                checkouts.insert().values(id="cs_2", status="expired", closed_at=START, **row)
            )
        with pytest.raises(sa.exc.IntegrityError), engine.begin() as conn:
            conn.execute(checkouts.insert().values(id="cs_3", status="open", **row))
        with pytest.raises(sa.exc.IntegrityError), engine.begin() as conn:
            conn.execute(checkouts.update().where(checkouts.c.id == "cs_2").values(status="open"))
    finally:
        engine.dispose()
