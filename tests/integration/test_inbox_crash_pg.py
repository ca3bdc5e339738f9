"""Crash: a worker process killed mid-event leaves it to the next worker once its lease expires.

The child (this module run with `python -m`) is a real worker process on PostgreSQL that
stalls inside the transaction applying the event: the subscription is written, the inbox
row is marked applied, nothing is committed. The test SIGKILLs it there. PostgreSQL rolls
the transaction back; the lease the child took at claim time still holds the event until it
expires, then another worker applies it. The audit log and the inbox row prove it was
applied once.
"""

from __future__ import annotations

import os
import selectors
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import TestClient

from responseiq_billing.adapters.app import create_app
from responseiq_billing.adapters.container import Container
from responseiq_billing.adapters.fake.clock import ControllableClock
from responseiq_billing.adapters.sql.migrate import upgrade
from responseiq_billing.application import use_cases
from responseiq_billing.application.ports import GatewayEvent, InboxStatus, UnitOfWork
from responseiq_billing.domain.plans import default_catalog
from tests.sql_fixtures import postgres_database
from tests.stripe_double import StripeDouble, running_double
from tests.webhooks.harness import (
    AUTH_SECRET,
    audit_of,
    body_of,
    inbox_rows,
    sign,
    stripe_env,
)

ROOT = Path(__file__).resolve().parents[2]
LEASE_SECONDS = 5
STALLED = "stalled inside the apply transaction"
ACCOUNT = "acct_crash"


class StallInsideTheTransaction(use_cases.ApplyGatewayEvent):
    """Applies as usual, then stops for good just before the transaction would commit."""

    def __call__(
        self, event: GatewayEvent, *, within: use_cases.Within | None = None
    ) -> use_cases.ApplyOutcome:
        def stall(uow: UnitOfWork, outcome: use_cases.ApplyOutcome) -> None:
            if within is not None:
                within(uow, outcome)  # the inbox row is marked applied, uncommitted
            print(f"{STALLED}: {event.id}", flush=True)
            time.sleep(600)  # until the test kills this process

        return super().__call__(event, within=stall)


def child_main() -> None:
    """The worker process: one pass with a short lease, stalling inside the apply."""
    from responseiq_billing.adapters.config import Settings
    from responseiq_billing.adapters.container import build_container

    container = build_container(Settings.from_env(os.environ))
    stalling = StallInsideTheTransaction(
        uow=container.uow(), gateway=container.gateway(), clock=container.clock()
    )
    process = container.process_inbox(apply=stalling, lease=timedelta(seconds=LEASE_SECONDS))
    print(f"worker {process.worker}", flush=True)
    process.run_once(limit=1)
    print("finished without stalling", flush=True)


# -- the test ---------------------------------------------------------------------------------


@pytest.fixture
def database() -> Iterator[str]:
    with postgres_database("billing_crash") as url:
        upgrade(url)
        yield url


@pytest.fixture
def double() -> Iterator[StripeDouble]:
    # Both processes read the system clock (leases are wall-clock time); the double's
    # clock starts there too, so event times and lease times are comparable.
    with running_double(ControllableClock(datetime.now(UTC)), default_catalog()) as stripe_double:
        yield stripe_double


def _read_line(child: subprocess.Popen[str], prefix: str, timeout: float = 30) -> str:
    assert child.stdout is not None
    selector = selectors.DefaultSelector()
    selector.register(child.stdout, selectors.EVENT_READ)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if selector.select(timeout=0.1):
            line = child.stdout.readline()
            if not line:
                break
            if line.startswith(prefix):
                return line.strip()
    raise AssertionError(f"the child never printed {prefix!r} (exit code {child.poll()})")


@pytest.mark.postgres
def test_a_worker_killed_mid_event_leaves_it_to_another_worker_after_the_lease_expires(
    database: str, double: StripeDouble
) -> None:
    env = stripe_env(double, database)
    from responseiq_billing.adapters.config import Settings
    from responseiq_billing.adapters.container import build_container

    container: Container = build_container(Settings.from_env(env))
    from tests.http.conftest import bearer

    with TestClient(create_app(container)) as client:
        started = client.post(
            "/billing/checkout",
            headers=bearer(ACCOUNT, secret=AUTH_SECRET),
            json={"plan": "growth", "interval": "month"},
        )
        assert started.status_code == 201, started.text
        double.complete_checkout(started.json()["checkout_id"])
        # The customer never comes back from Checkout: only the webhook tells us.
        [created] = double.events_of("customer.subscription.created")
        body = body_of(created)
        stored = client.post(
            "/webhooks/stripe", content=body, headers={"Stripe-Signature": sign(body)}
        )
        assert stored.status_code == 200, stored.text

    child = subprocess.Popen(
        [sys.executable, "-m", "tests.integration.test_inbox_crash_pg"],
        cwd=ROOT,
        env={**os.environ, **env, "PYTHONUNBUFFERED": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        child_worker = _read_line(child, "worker ").removeprefix("worker ")
        assert _read_line(child, STALLED) == f"{STALLED}: {created['id']}"
        [held] = inbox_rows(container)
        # Claimed (that commit is done), the apply not committed: nothing visible yet.
        assert (held.status, held.locked_by, held.attempts) == (
            InboxStatus.PENDING,
            child_worker,
            1,
        )
        assert _subscription(container) is None

        os.kill(child.pid, signal.SIGKILL)  # a real crash: no cleanup, no rollback by us
        assert child.wait(timeout=10) == -signal.SIGKILL
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()

    survivor = container.process_inbox()
    assert held.locked_until is not None
    if datetime.now(UTC) < held.locked_until - timedelta(seconds=1):
        # The lease still holds the event: nobody else takes it yet.
        assert survivor.run_once().claimed == 0
    assert _subscription(container) is None
    time.sleep(max((held.locked_until - datetime.now(UTC)).total_seconds(), 0) + 0.2)

    report = survivor.run_once()

    assert (report.claimed, report.applied, report.failed) == (1, 1, 0)
    [row] = inbox_rows(container)
    assert row.status is InboxStatus.APPLIED
    assert (row.attempts, row.outcome, row.locked_by) == (2, "applied", None)
    sub = _subscription(container)
    assert sub is not None and sub.plan_id == "growth"
    applied = [e for e in audit_of(container, ACCOUNT) if e.action.startswith("gateway_event.")]
    assert [(e.inputs["event_id"], e.outcome) for e in applied] == [(created["id"], "applied")]
    # Another pass, even after the lease would have run out, finds nothing to apply again.
    entries = audit_of(container, ACCOUNT)
    time.sleep(0.1)
    assert container.process_inbox().run_once().claimed == 0
    assert audit_of(container, ACCOUNT) == entries
    container.storage().close()


def _subscription(container: Container) -> Any:
    uow: UnitOfWork
    with container.uow()() as uow:
        return uow.subscriptions.for_account(ACCOUNT)


if __name__ == "__main__":
    child_main()
