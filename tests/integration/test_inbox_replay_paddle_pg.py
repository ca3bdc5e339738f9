"""Replay on Paddle: a recorded notification stream, duplicated and shuffled, applied by two
workers on PostgreSQL.

Thirty accounts live two months at the Paddle double, through our API in Paddle mode: sign-ups
(some never come back from Paddle's checkout), upgrades, downgrades the service keeps (and the
worker switches at Paddle an hour before the renewal), their withdrawal, cancellations and
resumes, card changes, declined renewals. Our webhook is down all along, so local state knows
only what our own calls recorded. Then Paddle's retries arrive: every notification, a share of
them more than once, shuffled, some signed with the secret being rotated out, through
`POST /webhooks/paddle`, while two workers drain the inbox side by side. Afterwards every
account must show what Paddle shows, every event must be applied exactly once, and nothing
may be left over.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from dependency_injector import providers
from litestar.testing import TestClient

from responseiq_billing.adapters.app import create_app
from responseiq_billing.adapters.config import Settings
from responseiq_billing.adapters.container import Container, build_container
from responseiq_billing.adapters.fake.clock import ControllableClock
from responseiq_billing.adapters.paddle.gateway import PaddleGateway
from responseiq_billing.adapters.sql.migrate import upgrade
from responseiq_billing.adapters.worker import run_worker
from responseiq_billing.application.ports import InboxStatus, UnitOfWork
from responseiq_billing.domain.plans import default_catalog
from tests.http.conftest import bearer
from tests.integration.replay import DRAIN_TIMEOUT, Delivery, audit_counts, wait_until_drained
from tests.paddle_double import TEST_KEY, PaddleDouble
from tests.paddle_double.state import parse
from tests.paddle_double.worker_steps import WORKER_TICK_BEFORE_RENEWAL
from tests.sql_fixtures import postgres_database

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

ACCOUNTS = 30
WORKERS = 2
DUPLICATE_SHARE = 0.40  # of the events, delivered more than once
SEED = 20260301
T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
AUTH_SECRET = "paddle-replay-tests-secret-long-enough-for-hs256"
SECRET = "pdl_ntfset_replay_current_0001"
OLD_SECRET = "pdl_ntfset_replay_previous_0000"


@dataclass
class Account:
    id: str
    story: int
    subscription: str = ""
    returned_from_checkout: bool = True
    # What the core keeps at the end (Paddle holds no scheduled plan change): plan, interval.
    kept_change: tuple[str, str] | None = None
    notes: list[str] = field(default_factory=list)


class World:
    """Our API in Paddle mode on PostgreSQL, Paddle's double, the customer and the bank."""

    def __init__(
        self,
        client: TestClient[Any],
        double: PaddleDouble,
        container: Container,
        accounts: list[Account],
    ) -> None:
        self.client, self.double, self.container = client, double, container
        self.accounts = accounts
        self.paddle: PaddleGateway = container.gateway_adapter()
        self.apply_due_changes = container.apply_due_changes()

    def api(self, method: str, path: str, account: Account, **body: Any) -> dict[str, Any]:
        answer = self.client.request(
            method, path, headers=bearer(account.id, secret=AUTH_SECRET), json=body or None
        )
        assert answer.status_code in (200, 201), f"{method} {path}: {answer.text}"
        account.notes.append(f"{method} {path}")
        result: dict[str, Any] = answer.json() if answer.content else {}
        return result

    def sign_up(self, account: Account, plan: str, interval: str = "month") -> None:
        started = self.api("POST", "/billing/checkout", account, plan=plan, interval=interval)
        txn = self.double.pay(started["checkout_id"], "visa")
        account.subscription = str(txn["subscription_id"])
        if account.returned_from_checkout:
            self.api("POST", f"/billing/checkout/{started['checkout_id']}/complete", account)

    def upgrade(self, account: Account, plan: str, interval: str = "month") -> None:
        quote = self.api(
            "POST", "/billing/subscription/preview", account, plan=plan, interval=interval
        )
        self.api(
            "POST",
            "/billing/subscription/change",
            account,
            plan=plan,
            interval=interval,
            quote_id=quote["quote_id"],
        )

    def downgrade(self, account: Account, plan: str, interval: str = "month") -> None:
        self.api("POST", "/billing/subscription/change", account, plan=plan, interval=interval)

    def update_card(self, account: Account, card: str) -> None:
        setup = self.api("POST", "/billing/payment-method/setup", account)
        self.double.pay(setup["setup_id"], card)
        self.api("POST", f"/billing/payment-method/setup/{setup['setup_id']}/complete", account)

    def pass_time(self, horizon: datetime, declined: set[str]) -> None:
        """Renewals up to `horizon` one at a time (accounts in `declined` are declined), with
        the worker's scheduled step inside the hour before each kept downgrade's renewal (and
        before Paddle's 30-minute lock), as a running `billing worker` takes it."""
        owner = {a.subscription: a.id for a in self.accounts}
        while True:
            now = self.double.clock.now()
            moments: list[tuple[datetime, str]] = []
            with self.double.state.lock:
                for sub in self.double.state.subscriptions.values():
                    due = sub["next_billed_at"]
                    if sub["status"] == "active" and due and parse(due) <= horizon:
                        moments.append((parse(due), owner.get(sub["id"], "")))
            uow: UnitOfWork
            with self.container.uow()() as uow:
                for account in self.accounts:
                    held = uow.subscriptions.for_account(account.id)
                    change = held.pending_change if held is not None else None
                    if (
                        change is not None
                        and now < change.effective_at - WORKER_TICK_BEFORE_RENEWAL <= horizon
                    ):
                        moments.append((change.effective_at - WORKER_TICK_BEFORE_RENEWAL, "worker"))
            if not moments:
                break
            at, who = min(moments)
            if who == "worker":
                self.double.advance_to(at)
                self.apply_due_changes()
                continue
            if who in declined:
                self.double.decline_next_payment()
            self.double.advance_to(at)
        self.double.advance_to(horizon)


def live_two_months(world: World, accounts: list[Account]) -> None:
    """Each account's story (by `story`, ten kinds), interleaved in time as they would be."""
    by: dict[int, list[Account]] = {}
    for account in accounts:
        by.setdefault(account.story, []).append(account)

    def each(story: int, action: Callable[[Account], object]) -> None:
        for account in by.get(story, []):
            action(account)

    def keep(story: int, plan: str, interval: str = "month") -> None:
        for account in by.get(story, []):
            account.kept_change = (plan, interval)

    plans = {0: "starter", 1: "business", 6: "business", 7: "starter"}
    for index, account in enumerate(accounts):  # sign-ups ten minutes apart
        world.double.advance_to(T0 + timedelta(minutes=10 * index))
        interval = "year" if account.story == 6 else "month"
        world.sign_up(account, plans.get(account.story, "growth"), interval)

    world.double.advance_to(T0 + timedelta(days=2))  # round A
    each(0, lambda a: world.upgrade(a, "growth"))
    each(1, lambda a: world.downgrade(a, "growth"))  # kept; switched before the renewal
    each(2, lambda a: world.api("POST", "/billing/subscription/cancel", a))
    each(3, lambda a: world.api("POST", "/billing/subscription/cancel", a))
    each(5, lambda a: world.downgrade(a, "starter"))
    each(6, lambda a: world.downgrade(a, "growth", "year"))  # a year away: still kept
    keep(6, "growth", "year")
    each(9, lambda a: world.update_card(a, "mastercard"))

    world.double.advance_to(T0 + timedelta(days=5))  # round B
    each(3, lambda a: world.api("POST", "/billing/subscription/resume", a))
    each(5, lambda a: world.api("DELETE", "/billing/subscription/pending-change", a))
    each(7, lambda a: world.upgrade(a, "business"))

    # First renewals: downgrades take effect, cancellations end, some cards are declined.
    world.pass_time(T0 + timedelta(days=33), declined={a.id for a in accounts if a.story == 4})

    each(8, lambda a: world.update_card(a, "amex"))  # round C
    each(9, lambda a: world.api("POST", "/billing/subscription/cancel", a))
    each(0, lambda a: world.downgrade(a, "starter"))  # kept again...
    each(7, lambda a: world.downgrade(a, "growth"))

    world.pass_time(T0 + timedelta(days=64), declined=set())  # ...and applied at the renewal

    world.double.clock.advance(timedelta(hours=1))  # round D: changes still pending at the end
    each(8, lambda a: world.downgrade(a, "starter"))
    keep(8, "starter")
    each(3, lambda a: world.api("POST", "/billing/subscription/cancel", a))


def deliver(client: TestClient[Any], events: list[dict[str, Any]], rng: random.Random) -> Delivery:
    """Paddle's retries: each notification at least once, some two or three times, shuffled."""
    copies = list(events)
    for event in rng.sample(events, k=int(len(events) * DUPLICATE_SHARE)):
        copies.extend([event] * rng.choice((1, 1, 2)))
    rng.shuffle(copies)
    report = Delivery(distinct=len(events), duplicates=len(copies) - len(events))
    seen: set[str] = set()
    for event in copies:
        body = json.dumps(event)
        secret = OLD_SECRET if rng.random() < 0.2 else SECRET  # mid-rotation
        answer = client.post(
            "/webhooks/paddle",
            content=body,
            # Paddle signs a delivery with the time it sends it.
            headers={
                "Paddle-Signature": PaddleDouble.signed(body, int(time.time()), secret),
                "Content-Type": "application/json",
            },
        )
        report.sent += 1
        if answer.status_code != 200:
            report.refused.append(f"{event['event_id']}: {answer.status_code} {answer.text}")
            continue
        duplicate = answer.json()["duplicate"]
        assert duplicate == (event["event_id"] in seen), event["event_id"]
        report.acknowledged_as_duplicate += duplicate
        seen.add(event["event_id"])
    return report


@pytest.fixture
def database() -> Iterator[str]:
    with postgres_database("billing_replay_paddle") as url:
        upgrade(url)
        yield url


def paddle_container(double: PaddleDouble, clock: ControllableClock, database: str) -> Container:
    settings = Settings.from_env(
        {
            "BILLING_GATEWAY": "paddle",
            "PADDLE_API_KEY": TEST_KEY,
            "PADDLE_API_BASE": double.url,
            "PADDLE_WEBHOOK_SECRET": f"{SECRET},{OLD_SECRET}",
            "BILLING_AUTH_SECRET": AUTH_SECRET,
            "BILLING_PUBLIC_URL": "http://billing.test",
            "BILLING_DATABASE_URL": database,
        }
    )
    container = build_container(settings)
    container.clock.override(providers.Object(clock))  # one clock for the double and us
    return container


def test_a_shuffled_paddle_stream_with_duplicates_converges_on_every_account(
    database: str, record_property: Callable[[str, object], None]
) -> None:
    started = time.monotonic()
    rng = random.Random(SEED)
    clock = ControllableClock(T0)
    double = PaddleDouble(clock).start()
    double.seed_catalog(default_catalog())
    container = paddle_container(double, clock, database)
    accounts = [
        Account(id=f"acct_paddle_{n:02d}", story=n % 10, returned_from_checkout=n % 10 != 4)
        for n in range(ACCOUNTS)
    ]
    try:
        with TestClient(create_app(container)) as client:
            world = World(client, double, container, accounts)
            live_two_months(world, accounts)
            generated = time.monotonic()
            events = double.events
            stale_before = _compare_with_paddle(container, world.paddle, accounts)
            assert len({e["event_id"] for e in events}) == len(events)

            stop = threading.Event()
            workers = [container.process_inbox() for _ in range(WORKERS)]
            applied = [0] * WORKERS

            def work(n: int) -> None:
                applied[n] = run_worker(workers[n], stop, idle_seconds=0.02, batch=10)

            threads = [threading.Thread(target=work, args=(n,)) for n in range(WORKERS)]
            for thread in threads:
                thread.start()
            try:
                delivery = deliver(client, events, rng)
                drained = wait_until_drained(container)
            finally:
                stop.set()
                for thread in threads:
                    thread.join(timeout=30)
            finished = time.monotonic()

            mismatches = _compare_with_paddle(container, world.paddle, accounts)
            final = _tally(container, world.paddle, accounts)
            audited = audit_counts(database)
            rows = list(_inbox(container))
    finally:
        double.stop()

    outcomes = Counter(r.outcome for r in rows)
    summary = (
        f"paddle replay: {len(accounts)} accounts, {delivery.sent} deliveries = "
        f"{delivery.distinct} distinct + {delivery.duplicates} duplicates; {WORKERS} workers "
        f"applied {sum(applied)} (per worker {applied}); outcomes {dict(outcomes)}; accounts "
        f"matching Paddle before delivery {len(accounts) - len(stale_before)}/{len(accounts)}, "
        f"after {len(accounts) - len(mismatches)}/{len(accounts)}; final {final}; generation "
        f"{generated - started:.1f}s, delivery+drain {finished - generated:.1f}s"
    )
    print(f"\n{summary}")
    record_property("replay_summary", summary)

    # The stream is what brought state up to date: without it, some accounts were behind.
    assert stale_before, "every account already matched: the replay would prove nothing"
    assert {"active", "past_due", "canceled", "kept_change", "cancel_at_period_end"} <= set(
        final
    ), final
    assert delivery.refused == []
    assert delivery.duplicates / delivery.sent >= 0.25
    assert delivery.acknowledged_as_duplicate == delivery.duplicates
    assert drained, f"the inbox did not drain in {DRAIN_TIMEOUT}s"
    # Nothing lost: every distinct notification stored once, applied, none pending or parked.
    assert sorted(r.event_id for r in rows) == sorted(e["event_id"] for e in events)
    stats = container.inbox_admin().stats()
    assert (stats.pending, stats.parked, stats.applied) == (0, 0, len(events))
    assert all(r.status is InboxStatus.APPLIED and r.last_error is None for r in rows)
    # Exactly once.
    assert max(audited.values(), default=0) <= 1, audited.most_common(3)
    assert all(audited[r.event_id] == 1 for r in rows if r.outcome == "applied")
    assert sum(applied) == len(events)
    # Converged: local state equals Paddle's, and the downgrades the core keeps are intact.
    assert mismatches == {}


def _inbox(container: Container) -> Iterator[Any]:
    uow: UnitOfWork
    with container.uow()() as uow:
        yield from uow.inbox.list(None, limit=100_000)


def _compare_with_paddle(
    container: Container, paddle: PaddleGateway, accounts: list[Account]
) -> dict[str, str]:
    """Each account's local subscription against Paddle's; the pending change against what
    the story left the core keeping (Paddle holds none)."""
    mismatches: dict[str, str] = {}
    uow: UnitOfWork
    for account in accounts:
        with container.uow()() as uow:
            held = uow.subscriptions.for_account(account.id)
        truth = paddle.get_subscription(account.subscription)
        want = (
            truth.subscription_ref,
            truth.plan_id,
            truth.interval,
            truth.status,
            truth.current_period_end,
            truth.cancel_at_period_end,
            truth.payment_method,
            account.kept_change,
        )
        change = held.pending_change if held is not None else None
        have = (
            None
            if held is None
            else (
                held.subscription_ref,
                held.plan_id,
                held.interval,
                held.status,
                held.current_period_end,
                held.cancel_at_period_end,
                held.payment_method,
                (change.plan_id, change.interval.value) if change is not None else None,
            )
        )
        if have != want:
            mismatches[account.id] = f"story {account.story}: ours {have} != Paddle {want}"
    return mismatches


def _tally(container: Container, paddle: PaddleGateway, accounts: list[Account]) -> dict[str, int]:
    tally: Counter[str] = Counter()
    for account in accounts:
        truth = paddle.get_subscription(account.subscription)
        tally[truth.status.value] += 1
        tally["cancel_at_period_end"] += truth.cancel_at_period_end
        tally["kept_change"] += account.kept_change is not None
    return dict(tally)
