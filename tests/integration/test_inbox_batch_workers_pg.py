"""Two workers applying batches at once on PostgreSQL never deadlock one another.

Events of one account arrive under several objects (its subscription, each invoice, its
customer), and the claim keeps order per object only, so two workers' batches can hold events
of one account. Each batch is one transaction that keeps its row locks until it commits: two
batches writing one account's rows in opposite orders deadlocked, and PostgreSQL aborted one
event (retried after its back-off, seconds later). A batch now applies only the accounts no
other batch holds (a transaction-scoped lock per customer, taken without waiting); events of
an account another batch holds go back to the inbox, uncounted, and the per-object order
still holds.
"""

from __future__ import annotations

import threading
from collections import Counter
from datetime import UTC, datetime, timedelta

import attrs
import pytest
import sqlalchemy as sa

from responseiq_billing.adapters.container import Container
from responseiq_billing.adapters.fake.clock import ControllableClock
from responseiq_billing.adapters.sql.migrate import upgrade
from responseiq_billing.adapters.sql.tables import audit_log, webhook_inbox
from responseiq_billing.domain.plans import default_catalog
from tests.sql_fixtures import postgres_database
from tests.streams import sandbox_stream, store_sandbox_event
from tests.wiring import container_for, sandbox_settings

pytestmark = pytest.mark.postgres

T0 = datetime(2026, 3, 1, 9, tzinfo=UTC)
ACCOUNTS = 10  # few accounts, so the two workers' batches share accounts all the time
ROUNDS = 3


def _worker(container: Container, name: str, errors: list[BaseException]) -> None:
    process = container.process_inbox()
    process = attrs.evolve(process, worker=name)
    try:
        for _ in range(5_000):
            if process.run_once(limit=50).claimed == 0:
                with container.uow()() as u:
                    if u.inbox.stats(container.clock().now()).pending == 0:
                        return
    except BaseException as error:  # the main thread asserts on it
        errors.append(error)


def test_two_workers_batches_of_shared_accounts_apply_every_event_once_without_a_failure() -> None:
    for _ in range(ROUNDS):
        clock = ControllableClock(T0)
        fake, events = sandbox_stream(
            clock,
            ACCOUNTS,
            signup_gap=timedelta(seconds=2),
            renewals=(timedelta(days=32), timedelta(days=31)),
        )
        with postgres_database("billing_workers_round") as round_url:
            upgrade(round_url)
            services = [
                container_for(
                    sandbox_settings(database_url=round_url),
                    catalog=default_catalog(),
                    clock=clock,
                    gateway=fake,
                )
                for _ in range(2)
            ]
            receive = services[0].receive_gateway_event()
            for event in events:
                store_sandbox_event(receive, event)
            errors: list[BaseException] = []
            threads = [
                threading.Thread(target=_worker, args=(service, f"w{n}", errors))
                for n, service in enumerate(services)
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(timeout=120)
            assert errors == []
            assert not any(thread.is_alive() for thread in threads), "a worker never finished"
            engine = sa.create_engine(round_url)
            with engine.connect() as conn:
                failed = conn.execute(
                    sa.select(webhook_inbox.c.event_id, webhook_inbox.c.last_error).where(
                        # claimed once (an event held back is released uncounted), never failed
                        (webhook_inbox.c.attempts > 1) | webhook_inbox.c.last_error.is_not(None)
                    )
                ).all()
                unapplied = conn.scalar(
                    sa.select(sa.func.count()).where(webhook_inbox.c.applied_at.is_(None))
                )
                audited = Counter(
                    conn.scalars(
                        sa.select(audit_log.c.inputs["event_id"].as_string()).where(
                            audit_log.c.action.like("gateway_event.%")
                        )
                    )
                )
            engine.dispose()
            for service in services:
                service.storage().close()
            assert [(row.event_id, str(row.last_error)[:60]) for row in failed] == []
            assert unapplied == 0
            assert all(n == 1 for n in audited.values())
