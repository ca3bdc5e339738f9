"""Sync vs async SQLAlchemy for one typical use-case transaction; prints figures (ADR 0004).

The transaction is what every subscription command does: load the account's subscription,
save it with the version check (in a savepoint, as the repository does), append an audit
entry, commit. Sync runs through the real `SqlUnitOfWork`, one thread and a pool of threads
(as Litestar runs sync handlers); async runs the same statements on `postgresql+psycopg_async`
in one event loop, one task and many concurrent tasks.

    .venv/bin/python benchmarks/sql_sync_vs_async.py [--n 400] [--concurrency 8]

SQLite has no async driver installed (aiosqlite runs each connection on a thread anyway), so
SQLite is measured sync only. PostgreSQL: 127.0.0.1:5432, a throwaway database.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from datetime import UTC, datetime, timedelta

import psycopg
import sqlalchemy as sa

from responseiq_billing.adapters.sql.database import (
    create_engine_from_url,
    sql_unit_of_work_factory,
)
from responseiq_billing.adapters.sql.migrate import upgrade
from responseiq_billing.adapters.sql.tables import audit_log, subscriptions
from responseiq_billing.application.ports import AuditEntry
from responseiq_billing.domain.errors import StaleVersion
from responseiq_billing.domain.plans import Interval
from responseiq_billing.domain.subscription import Status, Subscription

T0 = datetime(2026, 3, 1, tzinfo=UTC)
PG = "postgresql+psycopg://postgres@127.0.0.1:5432/"


@contextmanager
def postgres_database() -> Iterator[str]:
    name = f"billing_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect("host=127.0.0.1 user=postgres dbname=postgres", autocommit=True) as c:
        c.execute(f"CREATE DATABASE {name}")
    try:
        yield PG + name
    finally:
        with psycopg.connect("host=127.0.0.1 user=postgres dbname=postgres", autocommit=True) as c:
            c.execute(f"DROP DATABASE {name} WITH (FORCE)")


def seed(url: str, accounts: int) -> None:
    engine = create_engine_from_url(url)
    uow = sql_unit_of_work_factory(engine)
    with uow() as u:
        for i in range(accounts):
            u.subscriptions.add(
                Subscription(
                    account_id=f"acct_{i}",
                    customer_ref=f"cus_{i}",
                    subscription_ref=f"sub_{i}",
                    plan_id="growth",
                    interval=Interval.MONTH,
                    status=Status.ACTIVE,
                    current_period_start=T0,
                    current_period_end=T0 + timedelta(days=31),
                )
            )
        u.commit()
    engine.dispose()


def report(label: str, latencies: list[float], wall: float) -> None:
    ms = sorted(x * 1000 for x in latencies)
    p95 = ms[int(len(ms) * 0.95) - 1]
    print(
        f"  {label:<42} {len(ms) / wall:8.0f} tx/s   "
        f"mean {statistics.fmean(ms):6.2f} ms   p95 {p95:6.2f} ms"
    )


# -- sync -------------------------------------------------------------------------------------


def sync_tx(uow: Callable[[], object], account: str) -> None:
    with uow() as u:  # type: ignore[attr-defined]
        sub = u.subscriptions.for_account(account)
        sub.cancel_at_period_end = not sub.cancel_at_period_end
        u.subscriptions.save(sub)
        u.audit.append(AuditEntry(account, "flip", {"plan": sub.plan_id}, "ok", T0))
        u.commit()


def bench_sync(url: str, n: int, threads: int) -> None:
    engine = create_engine_from_url(url, pool_size=max(threads, 5))
    uow = sql_unit_of_work_factory(engine)
    for i in range(20):  # warm the pool and statement caches
        sync_tx(uow, f"acct_{i % threads}")

    latencies: list[float] = []
    mine = threading.local()
    numbers = iter(range(threads))

    def one(_: int) -> None:
        if not hasattr(mine, "account"):
            mine.account = f"acct_{next(numbers)}"  # one account per worker: no conflicts
        started = time.perf_counter()
        with suppress(StaleVersion):
            sync_tx(uow, mine.account)
        latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    if threads == 1:
        for i in range(n):
            one(i)
    else:
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(one, range(n)))
    report(f"sync, {threads} thread(s)", latencies, time.perf_counter() - started)
    engine.dispose()


# -- async (same statements, SQLAlchemy asyncio on psycopg) -----------------------------------


async def async_tx(engine: sa.ext.asyncio.AsyncEngine, account: str) -> None:
    async with engine.connect() as conn:
        row = (
            (
                await conn.execute(
                    sa.select(subscriptions)
                    .where(subscriptions.c.account_id == account)
                    .order_by(subscriptions.c.current_period_start.desc())
                    .limit(1)
                )
            )
            .mappings()
            .one()
        )
        async with conn.begin_nested():
            result = await conn.execute(
                subscriptions.update()
                .where(
                    subscriptions.c.subscription_ref == row["subscription_ref"],
                    subscriptions.c.version == row["version"],
                )
                .values(
                    cancel_at_period_end=not row["cancel_at_period_end"],
                    version=subscriptions.c.version + 1,
                    updated_at=datetime.now(UTC),
                )
            )
        if result.rowcount != 1:
            raise StaleVersion()
        await conn.execute(
            audit_log.insert().values(
                account_id=account,
                action="flip",
                inputs={"plan": row["plan_id"]},
                outcome="ok",
                at=T0,
            )
        )
        await conn.commit()


async def bench_async(url: str, n: int, tasks: int) -> None:
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(
        url.replace("postgresql+psycopg://", "postgresql+psycopg_async://"),
        pool_size=max(tasks, 5),
        pool_pre_ping=True,
    )
    for i in range(20):
        await async_tx(engine, f"acct_{i % tasks}")
    latencies: list[float] = []
    queue = list(range(n))

    async def worker(w: int) -> None:
        while queue:
            queue.pop()
            started = time.perf_counter()
            await async_tx(engine, f"acct_{w}")
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(worker(w) for w in range(tasks)))
    report(f"async psycopg, {tasks} task(s)", latencies, time.perf_counter() - started)
    await engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=400, help="transactions per run")
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    n, c = args.n, args.concurrency

    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/bench.db"
        upgrade(url)
        seed(url, c)
        print(f"SQLite (file, WAL), {n} transactions")
        bench_sync(url, n, 1)
        bench_sync(url, n, c)
        print("  async: not measured (no aiosqlite; it would run on threads anyway)")

    with postgres_database() as url:
        upgrade(url)
        seed(url, c)
        print(f"PostgreSQL 127.0.0.1, {n} transactions")
        bench_sync(url, n, 1)
        bench_sync(url, n, c)
        try:
            import greenlet  # noqa: F401  (SQLAlchemy's asyncio layer needs it)
        except ImportError:
            print("  async: not measured (greenlet is not installed)")
            return
        asyncio.run(bench_async(url, n, 1))
        asyncio.run(bench_async(url, n, c))


if __name__ == "__main__":
    main()
