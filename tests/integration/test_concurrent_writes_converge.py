"""Concurrent cancel / resume / change calls, from the API and the portal, converge on the gateway.

A customer with two tabs, another in the portal, a double click: once every call has returned
and the inbox has drained, what we hold is what the gateway holds. The sandbox clock does not
move during a round, so every write shares one clock second: order must come from re-reading
the gateway on ties, never from which thread happened to record last.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import TestClient

from responseiq_billing.adapters.app import create_app
from responseiq_billing.adapters.config import Settings
from responseiq_billing.adapters.container import Container, build_container
from responseiq_billing.adapters.fake.gateway import FakeGateway
from responseiq_billing.adapters.sql.migrate import upgrade
from responseiq_billing.application.ports import InboxStatus
from responseiq_billing.domain.errors import BillingError
from responseiq_billing.domain.plans import Interval
from tests.http.conftest import SECRET, bearer, subscribe
from tests.sql_fixtures import postgres_database, sqlite_url

ACCOUNT = "acct_two_tabs"
H = bearer(ACCOUNT)
CALLS_PER_ROUND = 20


def _api(
    method: str, path: str, body: dict[str, str] | None = None
) -> Callable[[TestClient[Any]], Any]:
    return lambda client: client.request(method, path, headers=H, json=body)


def _portal(act: Callable[[FakeGateway, str], None]) -> Callable[[FakeGateway, str], None]:
    return act


API_CALLS = [
    _api("POST", "/billing/subscription/cancel"),
    _api("POST", "/billing/subscription/resume"),
    _api("POST", "/billing/subscription/change", {"plan": "starter", "interval": "month"}),
    _api("POST", "/billing/subscription/change", {"plan": "business", "interval": "month"}),
    _api("POST", "/billing/subscription/change", {"plan": "growth", "interval": "month"}),
    _api("DELETE", "/billing/subscription/pending-change"),
]
PORTAL_CALLS = [
    _portal(lambda fake, customer: fake.portal_cancel(customer)),
    _portal(lambda fake, customer: fake.portal_resume(customer)),
    _portal(lambda fake, customer: fake.portal_change_plan(customer, "starter", Interval.MONTH)),
]


@contextmanager
def _app(url: str) -> Iterator[tuple[TestClient[Any], Container]]:
    container = build_container(
        Settings.from_env({"BILLING_DATABASE_URL": url, "BILLING_AUTH_SECRET": SECRET})
    )
    with TestClient(create_app(container)) as client:
        yield client, container
    container.storage().close()


def _drain(container: Container) -> None:
    """Apply everything stored, retrying at once what backed off (the sandbox clock is still)."""
    admin, process = container.inbox_admin(), container.process_inbox()
    for _ in range(50):
        while process.run_once(limit=50).claimed:
            pass
        waiting = [e for e in admin.list(InboxStatus.PENDING, limit=500)]
        if not waiting:
            return
        for event in waiting:
            admin.retry(event.event_id)
    raise AssertionError("the inbox did not drain")


def _race(
    calls: list[Callable[[], Any]],
    succeeded: list[Callable[[], Any]],
    refused: tuple[type[BaseException], ...],
) -> list[BaseException]:
    """Run `calls` at once, one thread each, released together; returns what crashed. A call
    refused by the rules (or by the gateway's own page) is expected, not a crash."""
    start = threading.Barrier(len(calls))
    crashes: list[BaseException] = []

    def run(call: Callable[[], Any]) -> None:
        start.wait()
        try:
            call()
            succeeded.append(call)
        except refused:
            pass
        except Exception as error:
            crashes.append(error)

    threads = [threading.Thread(target=run, args=(call,)) for call in calls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return crashes


def _held_and_truth(client: TestClient[Any], fake: FakeGateway, customer: str) -> tuple[Any, Any]:
    held = client.get("/billing/subscription", headers=H).json()
    truth = fake.customer_subscription(customer)
    assert truth is not None
    pending = held["pending_change"]
    return (
        (held["plan"], held["cancel_at_period_end"], pending and pending["plan"], held["status"]),
        (
            truth.plan_id,
            truth.cancel_at_period_end,
            truth.pending_change and truth.pending_change.plan_id,
            truth.status.value,
        ),
    )


def _rounds(url: str, rounds: int, seed: int) -> None:
    chooser = random.Random(seed)
    with _app(url) as (client, container):
        subscribe(client, ACCOUNT, "growth", "month")
        fake: FakeGateway = container.gateway()
        customer = container.storage().unit_of_work()
        with customer as uow:
            customer_ref = uow.customers.get(ACCOUNT)
        assert customer_ref is not None
        for round_number in range(rounds):
            calls: list[Callable[[], Any]] = []
            for _ in range(CALLS_PER_ROUND):
                if chooser.random() < 0.25:
                    act = chooser.choice(PORTAL_CALLS)
                    calls.append(lambda act=act: act(fake, customer_ref))
                else:
                    call = chooser.choice(API_CALLS)
                    calls.append(lambda call=call: call(client))
            # The portal refuses what the state does not allow (a domain error); nothing crashes.
            assert _race(calls, succeeded=[], refused=(BillingError,)) == []
            _drain(container)
            held, truth = _held_and_truth(client, fake, customer_ref)
            assert held == truth, f"round {round_number}: held {held}, gateway {truth}"


def test_concurrent_writes_converge_on_sqlite(tmp_path: Path) -> None:
    _rounds(sqlite_url(tmp_path), rounds=5, seed=7)


@pytest.mark.postgres
@pytest.mark.slow
def test_concurrent_writes_converge_on_postgresql() -> None:
    with postgres_database("billing_converge") as url:
        upgrade(url)
        _rounds(url, rounds=10, seed=11)


# -- the same mix in Stripe mode: the Stripe adapter over HTTP to the local Stripe double ---------


def _stripe_rounds(tmp_path: Path, rounds: int, seed: int) -> None:
    from responseiq_billing.adapters.fake.clock import ControllableClock
    from responseiq_billing.adapters.sql.database import (
        create_engine_from_url,
        sql_unit_of_work_factory,
    )
    from responseiq_billing.application import commands
    from responseiq_billing.domain.plans import default_catalog
    from tests.bdd.drivers.base import Rejected
    from tests.bdd.drivers.stripe import StripeDriver
    from tests.stripe_double.state import ApiError

    url = sqlite_url(tmp_path)
    upgrade(url)
    engine = create_engine_from_url(url)
    catalog = default_catalog()
    driver = StripeDriver(
        catalog=catalog,
        clock=ControllableClock(datetime(2027, 1, 31, 12, 0, tzinfo=UTC)),
        uow=sql_unit_of_work_factory(engine),
    )
    try:
        driver.subscribe(ACCOUNT, "growth", "month", "visa")
        ref = driver.gateway.get_subscription(
            driver.double.state.all("subscription")[0]["id"]
        ).subscription_ref
        starter = driver.gateway.prices.price_id("starter", Interval.MONTH)
        assert starter is not None
        # Each call as the use case makes it (no delivery in between): events wait, as they
        # do at Stripe, until the round is over.
        api = [
            lambda: driver._cancel(commands.CancelSubscription(ACCOUNT)),
            lambda: driver._resume(commands.ResumeSubscription(ACCOUNT)),
            lambda: driver._change_plan(commands.ChangePlan(ACCOUNT, "starter", "month")),
            lambda: driver._change_plan(commands.ChangePlan(ACCOUNT, "business", "month")),
            lambda: driver._change_plan(commands.ChangePlan(ACCOUNT, "growth", "month")),
            lambda: driver._cancel_pending(commands.CancelPendingChange(ACCOUNT)),
        ]
        portal = [
            lambda: driver.double.portal_cancel(ref),
            lambda: driver.double.portal_resume(ref),
            lambda: driver.double.portal_change_price(ref, starter),
        ]
        chooser = random.Random(seed)
        succeeded: list[Callable[[], Any]] = []
        for round_number in range(rounds):
            calls = [
                chooser.choice(portal if chooser.random() < 0.25 else api)
                for _ in range(CALLS_PER_ROUND)
            ]
            crashes = _race(calls, succeeded, refused=(BillingError, Rejected, ApiError))
            assert crashes == []
            driver._deliver()  # every event of the round, signed, through the webhook route
            held = driver.subscription(ACCOUNT)
            truth = driver.gateway.get_subscription(ref)
            ours = (
                held.plan,
                held.cancel_at_period_end,
                held.scheduled_change and held.scheduled_change.plan,
                held.status,
            )
            theirs = (
                truth.plan_id,
                truth.cancel_at_period_end,
                truth.pending_change and truth.pending_change.plan_id,
                truth.status.value,
            )
            assert ours == theirs, f"round {round_number}: held {ours}, Stripe {theirs}"
        assert len(succeeded) >= rounds * 3, "too few calls went through to test anything"
        assert driver.double.violations == []
    finally:
        driver.close()
        engine.dispose()


def test_concurrent_writes_converge_in_stripe_mode(tmp_path: Path) -> None:
    _stripe_rounds(tmp_path, rounds=5, seed=5)
