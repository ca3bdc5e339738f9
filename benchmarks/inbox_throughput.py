"""Prints how fast the webhook inbox applies gateway events on PostgreSQL, by worker process count.

A sandbox gateway generates a realistic stream for many accounts (sign-ups, upgrades,
downgrades, card changes, cancellations, then a month's renewals); the events are stored
through `ReceiveGatewayEvent` (what the webhook route does after verifying) into a fresh
PostgreSQL database, then drained by 1 and 2 worker PROCESSES, each with its own engine and
lease-holding `ProcessInbox`, as `billing worker` runs them. Each mode is measured on its own
fresh database: `single` (each event in its own transactions, as before ADR 0011) and `batch`
(a claimed batch in one transaction, a savepoint per event). Afterwards it checks that every
event was applied once and nothing is pending or parked.

Run: `.venv/bin/python benchmarks/inbox_throughput.py [--accounts 300] [--batch 100]
[--processes 1 2] [--modes single batch]`. Prints figures only.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import sqlalchemy as sa
from figures import record
from tests.streams import sandbox_stream, store_sandbox_event
from tests.wiring import container_for, sandbox_settings

from responseiq_billing.adapters.container import Container
from responseiq_billing.adapters.fake.clock import ControllableClock
from responseiq_billing.adapters.fake.gateway import FakeGateway
from responseiq_billing.adapters.sql.database import (
    create_engine_from_url,
)
from responseiq_billing.adapters.sql.migrate import upgrade
from responseiq_billing.adapters.sql.tables import audit_log, webhook_inbox
from responseiq_billing.application.ports import GatewayEvent
from responseiq_billing.domain.plans import default_catalog

# Set before forking: the children inherit the sandbox gateway the events came from.
_FAKE: FakeGateway | None = None
_CLOCK: ControllableClock | None = None


def generate(accounts: int) -> tuple[FakeGateway, ControllableClock, list[GatewayEvent]]:
    """Drive a sandbox through a month of activity; return its events."""
    clock = ControllableClock(datetime(2026, 3, 1, 9, tzinfo=UTC))
    fake, events = sandbox_stream(
        clock,
        accounts,
        changes=("upgrade", "downgrade", "cancel", "card", "none"),
        signup_gap=timedelta(seconds=7),
        change_gap=timedelta(seconds=3),
        renewals=(timedelta(days=32),),
    )
    return fake, clock, events


def _service(url: str) -> Container:
    """The container as `billing worker` builds it on `url`, over the sandbox the events came
    from (its gateway and clock)."""
    return container_for(
        sandbox_settings(database_url=url), catalog=default_catalog(), clock=_CLOCK, gateway=_FAKE
    )


def _work(url: str, name: str, mode: str, batch: int, ready: Any) -> None:
    assert _FAKE is not None and _CLOCK is not None
    container = _service(url)
    storage = container.storage()
    uow = container.uow()
    # SQL storage: a claimed batch in one transaction; `single`: each event on its own.
    process = container.process_inbox(worker=name, **({} if mode == "batch" else {"batch": None}))
    with storage.engine.connect():
        pass  # connected before the clock starts
    ready.wait()
    passes = claimed = idle = 0
    began = time.perf_counter()
    while True:
        passes += 1
        if got := process.run_once(limit=batch).claimed:
            claimed += got
            continue
        with uow() as u:  # the other process may hold older events of an object: wait
            if u.inbox.stats(_CLOCK.now()).pending == 0:
                break
        idle += 1
        time.sleep(0.005)
    busy = time.perf_counter() - began - idle * 0.005
    storage.close()
    print(
        f"    {name}: {claimed} claimed in {passes} passes, {idle} idle waits, {busy:.2f}s busy",
        flush=True,
    )


def run(url: str, processes: int, mode: str, batch: int, events: list[GatewayEvent]) -> float:
    assert _CLOCK is not None
    upgrade(url)
    ingest = _service(url)  # what the webhook route stores through
    receive = ingest.receive_gateway_event()
    for event in events:
        store_sandbox_event(receive, event)
    ingest.storage().close()  # no connection of the parent's is inherited by the workers
    engine = create_engine_from_url(url)
    ctx = mp.get_context("fork")
    ready = ctx.Barrier(processes + 1)
    children = [
        ctx.Process(target=_work, args=(url, f"bench:{n}", mode, batch, ready))
        for n in range(processes)
    ]
    for child in children:
        child.start()
    ready.wait()
    began = time.perf_counter()
    for child in children:
        child.join()
    elapsed = time.perf_counter() - began
    with engine.connect() as conn:
        t = webhook_inbox
        applied = conn.scalar(sa.select(sa.func.count()).where(t.c.applied_at.is_not(None)))
        left = conn.scalar(sa.select(sa.func.count()).where(t.c.applied_at.is_(None)))
        audited = Counter(
            conn.scalars(
                sa.select(audit_log.c.inputs["event_id"].as_string()).where(
                    audit_log.c.action.like("gateway_event.%")
                )
            )
        )
    engine.dispose()
    twice = sum(1 for n in audited.values() if n > 1)
    rate = len(events) / elapsed
    print(
        f"{mode:>6}, {processes} process(es), batch {batch}: applied {len(events)} events in "
        f"{elapsed:.2f}s = {rate:.0f} events/s (applied={applied} unapplied={left} "
        f"audited twice={twice})",
        flush=True,
    )
    return rate


def main() -> None:
    global _FAKE, _CLOCK
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--accounts", type=int, default=300)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--processes", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--modes", nargs="+", default=["single", "batch"])
    args = parser.parse_args()
    _FAKE, _CLOCK, events = generate(args.accounts)
    mix = Counter(e.gateway_type for e in events)
    print(f"{args.accounts} accounts, {len(events)} gateway events: {dict(mix.most_common())}")
    from tests.sql_fixtures import postgres_database

    rates = {}
    for processes in args.processes:
        for mode in args.modes:
            with postgres_database("billing_bench") as url:
                claim = args.batch if mode == "batch" else 10
                rates[processes, mode] = run(url, processes, mode, claim, events)
    for processes in args.processes:
        if (processes, "batch") not in rates:
            continue
        record(
            "webhooks, PostgreSQL",
            f"apply, {processes} worker(s), {len(events):,} events"
            + (" (baseline: one event per transaction)" if (processes, "single") in rates else ""),
            rates[processes, "batch"],
            "events/s",
            baseline=rates.get((processes, "single")),
            target=(">=", 1500) if processes == 2 else None,
            on_value=True,
        )


if __name__ == "__main__":
    main()
