"""Many threads change one subscription at once: each change applies on top of the latest or fails."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from responseiq_billing.adapters.sql.database import (
    create_engine_from_url,
    sql_unit_of_work_factory,
)
from responseiq_billing.adapters.sql.migrate import upgrade
from responseiq_billing.application.ports import AuditEntry
from responseiq_billing.domain.errors import StaleVersion
from responseiq_billing.domain.plans import Interval
from responseiq_billing.domain.subscription import Status, Subscription
from tests.sql_fixtures import postgres_database, sqlite_url

THREADS, ATTEMPTS = 8, 25
T0 = datetime(2026, 3, 1, tzinfo=UTC)


@pytest.fixture(params=[pytest.param("postgres", marks=pytest.mark.postgres), "sqlite"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        url = sqlite_url(tmp_path)
        upgrade(url)
        yield url
    else:
        with postgres_database("billing_concurrency") as url:
            upgrade(url)
            yield url


def test_concurrent_changes_never_lose_an_update(database: str) -> None:
    engine = create_engine_from_url(database, pool_size=THREADS)
    uow = sql_unit_of_work_factory(engine)
    with uow() as u:
        u.subscriptions.add(
            Subscription(
                account_id="acct_ada",
                customer_ref="cus_ada",
                subscription_ref="sub_1",
                plan_id="growth",
                interval=Interval.MONTH,
                status=Status.ACTIVE,
                current_period_start=T0,
                current_period_end=T0 + timedelta(days=31),
            )
        )
        u.commit()

    start = threading.Barrier(THREADS)
    lock = threading.Lock()
    successes: list[int] = []  # the version each successful change was built on
    stale: list[int] = []
    errors: list[BaseException] = []

    def worker(n: int) -> None:
        start.wait()
        for attempt in range(ATTEMPTS):
            try:
                with uow() as u:
                    sub = u.subscriptions.by_gateway_ref("sub_1")
                    assert sub is not None
                    seen = sub.version
                    sub.cancel_at_period_end = not sub.cancel_at_period_end
                    sub.plan_id = f"plan-{n}-{attempt}"
                    time.sleep(0.001)  # widen the read-to-write window so writers collide
                    u.subscriptions.save(sub)
                    u.audit.append(
                        AuditEntry("acct_ada", "flip", {"seen": str(seen)}, f"{n}-{attempt}", T0)
                    )
                    u.commit()
                with lock:
                    successes.append(seen)
            except StaleVersion:
                with lock:
                    stale.append(n)
            except BaseException as error:  # collected so the main thread fails loudly
                with lock:
                    errors.append(error)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    with uow() as u:
        final = u.subscriptions.by_gateway_ref("sub_1")
        log = u.audit.for_account("acct_ada")
    engine.dispose()

    assert errors == []
    if database.startswith("postgresql"):
        # Writers really collided (about 30 of 200 succeed on two cores); on SQLite every
        # unit takes the write lock at BEGIN, so they queue instead and all succeed.
        assert stale
    assert len(successes) + len(stale) == THREADS * ATTEMPTS
    assert final is not None
    # Every success built on a distinct version, 1, 2, 3, ...: none was overwritten.
    assert sorted(successes) == list(range(1, len(successes) + 1))
    assert final.version == 1 + len(successes)
    assert final.cancel_at_period_end is (len(successes) % 2 == 1)
    # The audit log agrees with the state: one entry per applied change, in version order,
    # and the last entry is the change that the stored state shows.
    assert [int(e.inputs["seen"]) for e in log] == list(range(1, len(successes) + 1))
    n, attempt = log[-1].outcome.split("-")
    assert final.plan_id == f"plan-{n}-{attempt}"
