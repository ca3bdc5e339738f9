"""Reads and webhook apply at 10,000 and at 1,000,000 subscriptions on PostgreSQL, in one run.

Issue 11, target 4: p50 of the reads and the per-event apply cost at 1,000,000 subscriptions
at most 1.3 times those at 10,000.

What it does:
1. A sandbox gateway signs up `--accounts` accounts through `StartCheckout`; their events are
   stored through `ReceiveGatewayEvent` and applied by `ProcessInbox` into a scratch database,
   so these accounts' rows (account, subscription, checkout, invoice, audit entries, applied
   inbox events) are the service's own. Then the sandbox makes a month of changes for them
   (upgrades, downgrades, cancellations, card changes, every renewal): the measured events.
2. Two databases are created (dropped on exit): `--small` and `--large` subscriptions, each
   seeded by COPY (`tests/scale_data.py`: per subscription its account, customer, a checkout,
   three invoices, three audit entries, four applied inbox events; a quote for one in four),
   with the scratch database's accounts put at random places among them, then VACUUM ANALYZE.
3. Reads, no cache, as the routes do on a cache miss: `GetSubscription` and `GetEntitlements`
   (`for_account` in a read-only unit of work) and an invoice page (`ListInvoices` with the
   gateway down, so the page comes from our table), for `--reads` random seeded accounts per
   database, in blocks of 100 alternating between the two databases; p50 and p95 of each.
4. Apply: the measured events are stored in each database through `ReceiveGatewayEvent` (its
   PostgreSQL units: autocommit, `adapters/sql/ingest.py`), then drained by `ProcessInbox`
   with `SqlBatch` (`--batch` per claim, as `billing worker` runs it), one pass on one
   database then one on the other; wall time per event. It checks that both applied every
   event once, with the same outcomes.
5. EXPLAIN: every distinct statement the repositories ran during 3-4, and every other
   repository method once (`tests/scale_data.probe`), is explained on the large database
   (EXPLAIN ANALYZE inside a transaction that is rolled back) and on the small one: which index
   serves it, or that it reads a whole table.

Run: `.venv/bin/python benchmarks/scale.py [--large 1000000] [--small 10000] [--accounts 400]
[--reads 3000] [--batch 20] [--timeout 3600]`; a quick run: `--large 100000`.
PostgreSQL at BILLING_TEST_POSTGRES_HOST/PORT/USER (default postgres@127.0.0.1:5432), as
the tests use. Here (2 cores shared with other test runs, PostgreSQL 15 with its default
128 MB shared_buffers) two full runs took 549 s and 638 s, 7.5 to 9 minutes of it seeding the
large database (29,000 and 25,000 rows/s); `--large 100000` took 92 s.
Prints figures only; nothing here is a test.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import statistics
import sys
import time
from collections import Counter
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import sqlalchemy as sa
from figures import record
from sqlalchemy.engine import Engine
from tests import scale_data
from tests.sql_fixtures import postgres_database
from tests.streams import store_sandbox_event
from tests.wiring import GivenUnits, container_for, sandbox_settings

from responseiq_billing.adapters.container import Container
from responseiq_billing.adapters.fake.clock import ControllableClock
from responseiq_billing.adapters.fake.gateway import FakeGateway
from responseiq_billing.adapters.sql.migrate import upgrade
from responseiq_billing.application import commands
from responseiq_billing.application.inbox import ProcessInbox, ReceiveGatewayEvent
from responseiq_billing.application.ports import GatewayEvent, ScheduledChanges
from responseiq_billing.domain.errors import GatewayUnavailable
from responseiq_billing.domain.plans import Interval, default_catalog

BLOCK = 100  # reads per database before switching to the other
WARMUP = 100  # reads per database before the measured ones (pool, statement caches)
TARGET = 1.3


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# -- the sandbox's accounts and their month -------------------------------------------------


def drain(process: ProcessInbox, batch: int) -> None:
    while process.run_once(limit=batch).claimed:
        pass


def store(receive: ReceiveGatewayEvent, events: list[GatewayEvent]) -> None:
    for event in events:
        store_sandbox_event(receive, event)


def service(url: str, fake: Any, clock: ControllableClock, storage: Any = None) -> Container:
    """The container as `billing worker` builds it on `url` (SQL storage: a batch per claim,
    autocommit ingestion on PostgreSQL), over the sandbox `fake` (or a gateway standing for
    it) and `clock`; `storage`: one already made, to share its engine."""
    return container_for(
        sandbox_settings(database_url=url),
        catalog=default_catalog(),
        clock=clock,
        gateway=fake,
        storage=storage,
    )


def worker(container: Container, name: str) -> ProcessInbox:
    """`ProcessInbox` as `billing worker` gets it from the container."""
    process: ProcessInbox = container.process_inbox(worker=name)
    return process


def sandbox_month(
    accounts: int, batch: int, rng: random.Random
) -> tuple[FakeGateway, ControllableClock, list[GatewayEvent], scale_data.Spliced]:
    """Sign `accounts` up through the service into a scratch database (kept as `Spliced` rows),
    then let the sandbox make a month of changes; return that month's events."""
    catalog = default_catalog()
    clock = ControllableClock(scale_data.NOW)
    fake = FakeGateway(catalog, clock)
    events: list[GatewayEvent] = []
    fake.subscribe(events.append)
    with postgres_database("billing_scale_scratch") as url:
        upgrade(url)
        scratch = service(url, fake, clock)
        uow = scratch.uow()
        start = scratch.start_checkout()
        ids = [f"acct_{rng.getrandbits(64):016x}" for _ in range(accounts)]
        for account in ids:
            session = start(
                commands.StartCheckout(account, "growth", "month", "https://a/ok", "https://a/no")
            )
            fake.complete_checkout(session.id)
            clock.advance(timedelta(seconds=7))
        store(scratch.receive_gateway_event(), events)
        drain(worker(scratch, "scale:history"), batch)
        with uow() as u:
            customers = [u.customers.get(account) for account in ids]
        scratch.storage().close()
        spliced = scale_data.dump(url)
    events.clear()
    for n, customer in enumerate(customers):
        assert customer is not None
        if n % 5 == 0:
            fake.portal_change_plan(customer, "business", Interval.MONTH)  # upgrade
        elif n % 5 == 1:
            fake.portal_change_plan(customer, "starter", Interval.MONTH)  # downgrade
        elif n % 5 == 2:
            fake.portal_cancel(customer)
        elif n % 5 == 3:
            fake.portal_update_payment_method(customer, "mastercard")  # card change
        clock.advance(timedelta(seconds=3))
    fake.advance(timedelta(days=32))  # renewals
    return fake, clock, list(events), spliced


# -- one database -----------------------------------------------------------------------------


class _GatewayDown:
    """The gateway as `ListInvoices` meets it when unreachable: the page comes from our table."""

    scheduled_changes = ScheduledChanges.GATEWAY  # as the sandbox it stands for

    def list_invoices(self, **_: Any) -> Any:
        raise GatewayUnavailable()


@dataclass
class Target:
    label: str
    size: int
    url: str
    seeded: scale_data.Seeded
    engine: Engine
    service: Container  # its storage's engine is `engine`
    seconds: dict[str, list[float]] = field(default_factory=dict)
    store_seconds: float = 0.0
    drain_seconds: float = 0.0
    passes: list[tuple[float, int]] = field(default_factory=list)
    outcomes: Counter[str] = field(default_factory=Counter)
    twice: int = 0
    left: int = 0
    bytes: int = 0

    def p(self, op: str, q: float) -> float:
        values = sorted(self.seconds[op])
        return values[min(len(values) - 1, int(q * len(values)))] * 1000


READS = ("subscription", "entitlements", "invoice page")


def read_block(target: Target, accounts: list[str], clock: ControllableClock, keep: bool) -> None:
    storage = target.service.storage()
    down = _GatewayDown()
    # Reads in read-only units of the target's engine, as the routes' cache misses read.
    reads = service(target.url, down, clock, storage=GivenUnits(storage.read_unit_of_work))
    get = reads.get_subscription()
    entitlements = reads.get_entitlements()
    invoices = service(target.url, down, clock, storage=storage).list_invoices()
    tick = time.perf_counter
    for account in accounts:
        t0 = tick()
        get(account)
        t1 = tick()
        entitlements(account)
        t2 = tick()
        page = invoices(commands.ListInvoices(account, limit=10))
        t3 = tick()
        assert page.items, account
        if keep:
            for op, seconds in zip(READS, (t1 - t0, t2 - t1, t3 - t2), strict=True):
                target.seconds.setdefault(op, []).append(seconds)


def measure_reads(targets: list[Target], reads: int, clock: ControllableClock) -> None:
    """Warm each database up, then alternate blocks of reads between them."""
    for target in targets:
        read_block(target, target.seeded.sample[:WARMUP], clock, keep=False)
    for start in range(WARMUP, WARMUP + reads, BLOCK):
        for target in targets:
            read_block(target, target.seeded.sample[start : start + BLOCK], clock, keep=True)


def measure_apply(
    targets: list[Target],
    events: list[GatewayEvent],
    fake: FakeGateway,
    clock: ControllableClock,
    batch: int,
) -> None:
    for target in targets:
        receive = target.service.receive_gateway_event()
        began = time.perf_counter()
        store(receive, events)
        target.store_seconds = time.perf_counter() - began
    processes = {t.label: worker(t.service, f"scale:{t.label}") for t in targets}
    active = list(targets)
    while active:
        for target in list(active):
            began = time.perf_counter()
            report = processes[target.label].run_once(limit=batch)
            seconds = time.perf_counter() - began
            if not report.claimed:
                active.remove(target)
                continue
            target.drain_seconds += seconds
            target.passes.append((seconds, report.claimed))


def check_apply(target: Target, events: list[GatewayEvent], audit_before: int) -> None:
    ids = [e.id for e in events]
    with target.engine.connect() as conn:
        t = sa.table("webhook_inbox", sa.column("event_id"), sa.column("outcome"))
        rows = conn.execute(sa.select(t.c.outcome).where(t.c.event_id.in_(ids))).scalars()
        target.outcomes = Counter(o or "pending or parked" for o in rows)
        target.left = conn.execute(
            sa.text("SELECT count(*) FROM webhook_inbox WHERE applied_at IS NULL")
        ).scalar_one()
        target.twice = conn.execute(
            sa.text(
                "SELECT count(*) FROM (SELECT inputs->>'event_id' FROM audit_log WHERE id > :before"
                " AND action LIKE 'gateway_event.%' GROUP BY 1 HAVING count(*) > 1) twice"
            ),
            {"before": audit_before},
        ).scalar_one()
        target.bytes = conn.execute(
            sa.text("SELECT pg_database_size(current_database())")
        ).scalar_one()


def max_audit_id(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.text("SELECT coalesce(max(id), 0) FROM audit_log")).scalar_one())


# -- EXPLAIN ----------------------------------------------------------------------------------


@dataclass
class Reviewed:
    caller: str
    large: scale_data.Plan
    small: scale_data.Plan
    during_run: bool  # ran during the measured reads or apply (else: only in the probe)


def review(targets: list[Target], captured: scale_data.Capture, account: str) -> list[Reviewed]:
    small, large = targets
    probed = scale_data.probe(large.engine, account)
    ran = {scale_data.shape(statement) for statement in captured.seen}
    found = []
    for c in scale_data.describe([captured, probed]):
        found.append(
            Reviewed(
                c.caller,
                scale_data.explain(large.engine, c, analyze=True),
                scale_data.explain(small.engine, c),
                scale_data.shape(c.statement) in ran,
            )
        )
    return found


# -- the run ----------------------------------------------------------------------------------


def ratio_row(name: str, small: float, large: float, target: str = "") -> str:
    return f"{name:<42} {small:>10.3f} {large:>10.3f} {large / small:>7.2f} {target:>8}"


def report(
    targets: list[Target], events: list[GatewayEvent], args: argparse.Namespace, began: float
) -> None:
    small, large = targets
    with large.engine.connect() as conn:
        version = conn.execute(sa.text("SHOW server_version")).scalar_one()
        buffers = conn.execute(sa.text("SHOW shared_buffers")).scalar_one()
    mix = Counter(e.gateway_type for e in events)
    print(
        f"scale: PostgreSQL {version} (shared_buffers {buffers}), {os.cpu_count()} cores, "
        f"load average at the end {os.getloadavg()[0]:.1f}"
    )
    print(
        f"reads: {args.reads} random seeded accounts per database, no cache, blocks of {BLOCK} "
        f"alternating; apply: {len(events)} events of {args.accounts} accounts "
        f"({', '.join(f'{k} {v}' for k, v in mix.most_common())}), batch {args.batch}, 1 worker"
    )
    print()
    head = f"{'':<42} {small.size:>10,} {large.size:>10,} {'ratio':>7} {'target':>8}"
    part = f"scale, {large.size:,} vs {small.size:,} subscriptions"
    print(head)
    print("-" * len(head))
    for op in READS:
        print(ratio_row(f"{op} p50 ms", small.p(op, 0.5), large.p(op, 0.5), f"<= {TARGET}"))
        record(
            part,
            f"{op} p50 (no cache)",
            large.p(op, 0.5),
            "ms",
            baseline=small.p(op, 0.5),
            target=("<=", TARGET),
        )
        print(ratio_row(f"{op} p95 ms", small.p(op, 0.95), large.p(op, 0.95)))
    n = len(events)
    record(
        part,
        "apply, per event (drain / events)",
        large.drain_seconds / n * 1000,
        "ms",
        baseline=small.drain_seconds / n * 1000,
        target=("<=", TARGET),
    )
    print(
        ratio_row(
            "apply ms per event (drain / events)",
            small.drain_seconds / n * 1000,
            large.drain_seconds / n * 1000,
            f"<= {TARGET}",
        )
    )

    def pass_p50(t: Target) -> float:
        return statistics.median(s / c for s, c in t.passes) * 1000

    print(ratio_row("apply ms per event, p50 of passes", pass_p50(small), pass_p50(large)))
    print(
        ratio_row(
            "store ms per event (ReceiveGatewayEvent)",
            small.store_seconds / n * 1000,
            large.store_seconds / n * 1000,
        )
    )
    print()
    for t in targets:
        s = t.seeded
        print(
            f"{t.size:>10,} subscriptions: seeded {s.total_rows:,} rows by COPY in {s.seconds:.1f} s "
            f"({s.rows_per_second:,.0f} rows/s; {', '.join(f'{k} {v:,}' for k, v in s.rows.items())}),"
            f" VACUUM ANALYZE {s.vacuum_seconds:.1f} s, database {t.bytes / 2**20:,.0f} MiB"
        )
        print(
            f"{'':>10}  outcomes {dict(t.outcomes.most_common())}; audited twice {t.twice}; "
            f"left unapplied {t.left}"
        )
    same = small.outcomes == large.outcomes
    print(f"same outcomes in both databases: {'yes' if same else 'NO'}")
    print(f"measured in {time.perf_counter() - began:.0f} s", flush=True)


def report_plans(targets: list[Target], reviewed: list[Reviewed], began: float) -> None:
    small, large = targets
    print()
    print(
        f"query plans at {large.size:,} subscriptions (EXPLAIN ANALYZE, rolled back; - = only "
        "planned; * = ran during the measured reads or apply, else only in the probe):"
    )
    print(f"{'repository method':<38} {'ms':>8} {'blocks':>7}  plan")
    for r in reviewed:
        star = "*" if r.during_run else " "
        at_small = r.small.summary()
        differs = "" if at_small == r.large.summary() else f"   [at {small.size:,}: {at_small}]"
        ms = "-" if r.large.milliseconds is None else f"{r.large.milliseconds:.3f}"
        blocks = "-" if r.large.buffers is None else str(r.large.buffers)
        print(f"{star}{r.caller:<37} {ms:>8} {blocks:>7}  {r.large.summary()}{differs}")
    scans = sorted({(r.caller, rel) for r in reviewed for rel in r.large.seq_scans()})
    print(f"whole-table reads: {', '.join(f'{c} ({rel})' for c, rel in scans) or 'none'}")
    print(f"run time {time.perf_counter() - began:.0f} s")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--large", type=int, default=1_000_000)
    parser.add_argument("--small", type=int, default=10_000)
    parser.add_argument("--accounts", type=int, default=400, help="sandbox accounts with events")
    parser.add_argument("--reads", type=int, default=3000, help="measured reads per database")
    parser.add_argument("--batch", type=int, default=20, help="events claimed per pass")
    parser.add_argument("--timeout", type=int, default=3600, help="seconds before giving up")
    args = parser.parse_args()
    if args.small < args.accounts + args.reads + WARMUP:
        raise SystemExit("--small must hold --accounts + --reads + 100 subscriptions")

    def give_up(signum: int, _frame: Any) -> None:
        raise SystemExit(f"stopped by signal {signum}; the databases are dropped")

    signal.signal(signal.SIGALRM, give_up)
    signal.signal(signal.SIGTERM, give_up)
    signal.alarm(args.timeout)
    began = time.perf_counter()
    rng = random.Random(11)
    log(f"signing up {args.accounts} sandbox accounts through the service (scratch database)")
    fake, clock, events, spliced = sandbox_month(args.accounts, args.batch, rng)
    log(f"{len(events)} events to apply; {len(spliced.accounts)} accounts' rows to put in place")
    with ExitStack() as stack:
        targets = []
        for label, size in (("small", args.small), ("large", args.large)):
            url = stack.enter_context(postgres_database(f"billing_scale_{label}"))
            upgrade(url)
            log(f"seeding {size:,} subscriptions")
            seeded = scale_data.seed(
                url, size, seed=size, spliced=spliced, sample=WARMUP + args.reads, log=log
            )
            log(
                f"  {seeded.total_rows:,} rows in {seeded.seconds:.1f} s "
                f"({seeded.rows_per_second:,.0f} rows/s), VACUUM ANALYZE {seeded.vacuum_seconds:.1f} s"
            )
            container = service(url, fake, clock)
            storage = container.storage()
            stack.callback(storage.close)
            targets.append(Target(label, size, url, seeded, storage.engine, container))
        captured = scale_data.Capture()
        captured.listen_all()
        stack.callback(captured.stop)
        log("reads")
        measure_reads(targets, args.reads, clock)
        audit_before = {t.label: max_audit_id(t.engine) for t in targets}
        log("apply")
        measure_apply(targets, events, fake, clock, args.batch)
        captured.stop()
        for t in targets:
            check_apply(t, events, audit_before[t.label])
        report(targets, events, args, began)
        log("EXPLAIN")
        report_plans(targets, review(targets, captured, targets[1].seeded.sample[0]), began)
    signal.alarm(0)


if __name__ == "__main__":
    main()
