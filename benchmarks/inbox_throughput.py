"""Prints how fast the webhook inbox stores and applies gateway events, by worker count.

A sandbox gateway generates a realistic stream (sign-ups, upgrades, downgrades, renewals,
cancellations) for many accounts; the events are stored through `ReceiveGatewayEvent` (what the
webhook route does after verifying) and drained by 1, 2 and 4 worker threads, each with its
own lease-holding `ProcessInbox`, on a fresh PostgreSQL database (or SQLite with --sqlite).

Run: `.venv/bin/python benchmarks/inbox_throughput.py [--accounts 100] [--sqlite]`.
Prints figures only.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from adapters.fake.clock import ControllableClock
from adapters.fake.codec import SandboxEventDecoder, encode_event
from adapters.fake.gateway import FakeGateway
from adapters.fake.repositories import InMemoryStore
from adapters.sql.database import create_engine_from_url, sql_unit_of_work_factory
from adapters.sql.migrate import upgrade
from application import commands as c
from application import use_cases as uc
from application.inbox import ProcessInbox, ReceiveGatewayEvent
from application.ports import GatewayEvent
from domain.plans import Interval, default_catalog


def generate(accounts: int) -> tuple[FakeGateway, ControllableClock, list[GatewayEvent]]:
    """Drive a sandbox through a month of activity; return its events."""
    catalog = default_catalog()
    clock = ControllableClock(datetime(2026, 3, 1, 9, tzinfo=UTC))
    fake = FakeGateway(catalog, clock)
    events: list[GatewayEvent] = []
    fake.subscribe(events.append)
    scratch = InMemoryStore()  # only to start checkouts; the measured store starts empty
    start = uc.StartCheckout(uow=scratch.unit_of_work, gateway=fake, clock=clock, catalog=catalog)
    customers = []
    for n in range(accounts):
        session = start(
            c.StartCheckout(f"acct_{n}", "growth", "month", "https://a/ok", "https://a/no")
        )
        fake.complete_checkout(session.id)
        with scratch.unit_of_work() as u:
            customers.append(u.customers.get(f"acct_{n}"))
        clock.advance(timedelta(seconds=7))
    for n, customer in enumerate(customers):
        assert customer is not None
        if n % 4 == 0:
            fake.portal_change_plan(customer, "business", Interval.MONTH)
        elif n % 4 == 1:
            fake.portal_change_plan(customer, "starter", Interval.MONTH)
        elif n % 4 == 2:
            fake.portal_cancel(customer)
        clock.advance(timedelta(seconds=3))
    fake.advance(timedelta(days=32))
    return fake, clock, events


def run(
    url: str, workers: int, fake: FakeGateway, clock: ControllableClock, events: list[GatewayEvent]
) -> None:
    upgrade(url)
    engine = create_engine_from_url(url)
    uow = sql_unit_of_work_factory(engine)
    receive = ReceiveGatewayEvent(uow=uow, clock=clock)
    began = time.perf_counter()
    for event in events:
        receive(
            gateway="sandbox",
            event_id=event.id,
            type=event.gateway_type,
            payload=encode_event(event),
            event_created=event.created,
            object_ref=event.object_ref,
        )
    stored = time.perf_counter() - began
    apply = uc.ApplyGatewayEvent(uow=uow, gateway=fake, clock=clock)

    def work(name: str) -> None:
        process = ProcessInbox(
            uow=uow,
            gateway=fake,
            clock=clock,
            apply=apply,
            worker=name,
            decoders={"sandbox": SandboxEventDecoder()},
        )
        while process.run_once(limit=10).claimed:
            pass

    began = time.perf_counter()
    threads = [threading.Thread(target=work, args=(f"w{i}",)) for i in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    applied = time.perf_counter() - began
    with uow() as u:
        stats = u.inbox.stats(clock.now())
    engine.dispose()
    print(
        f"{workers} worker(s): stored {len(events)} events in {stored:.2f}s "
        f"({len(events) / stored:.0f}/s); applied in {applied:.2f}s "
        f"({len(events) / applied:.0f}/s); pending={stats.pending} parked={stats.parked}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--accounts", type=int, default=100)
    parser.add_argument("--sqlite", action="store_true")
    args = parser.parse_args()
    fake, clock, events = generate(args.accounts)
    print(f"{args.accounts} accounts, {len(events)} gateway events")
    for workers in (1, 2, 4):
        if args.sqlite:
            with tempfile.TemporaryDirectory() as tmp:
                run(f"sqlite:///{tmp}/inbox.db", workers, fake, clock, events)
        else:
            sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
            from tests.sql_fixtures import postgres_database

            with postgres_database("billing_bench") as url:
                run(url, workers, fake, clock, events)


if __name__ == "__main__":
    main()
