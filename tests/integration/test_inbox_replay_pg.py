"""Replay: a recorded Stripe stream, duplicated and shuffled, applied by two workers on PostgreSQL.

Forty accounts live two months at the Stripe double: sign-ups through our API (some never
come back from Checkout), upgrades, downgrades and their withdrawal, cancellations and
resumes, declined renewals and their recovery, plan changes, cancellations and card updates
made in the portal, and period ends by moving time. Our webhook is down all along, so
local state knows only what our own API calls recorded. Then Stripe's retries arrive: every
event, a third of the deliveries duplicates, in shuffled order, through `POST /webhooks/stripe`,
while two workers drain the inbox side by side. Afterwards every account must show what
Stripe shows, every event must have been applied exactly once, and nothing may be left over.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from litestar.testing import TestClient

from responseiq_billing.adapters.app import create_app
from responseiq_billing.adapters.container import Container
from responseiq_billing.adapters.fake.clock import ControllableClock
from responseiq_billing.adapters.sql.migrate import upgrade
from responseiq_billing.adapters.stripe.gateway import StripeGateway
from responseiq_billing.adapters.worker import run_worker
from responseiq_billing.application.ports import InboxStatus, UnitOfWork
from responseiq_billing.domain.plans import Interval
from tests.integration.replay import DRAIN_TIMEOUT, Delivery, audit_counts, wait_until_drained
from tests.sql_fixtures import postgres_database
from tests.stripe_double import StripeDouble
from tests.webhooks.harness import (
    AUTH_SECRET,
    OLD_SECRET,
    SECRET,
    body_of,
    inbox_rows,
    sign,
    start_double,
    stripe_container,
)

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

ACCOUNTS = 40
WORKERS = 2
DUPLICATE_SHARE = 0.40  # of the events, delivered more than once
SEED = 20260301
T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


@dataclass
class Account:
    id: str
    story: int
    customer: str = ""
    subscription: str = ""
    returned_from_checkout: bool = True
    notes: list[str] = field(default_factory=list)


class World:
    """Our API on PostgreSQL and Stripe's double, with the customer's and the bank's controls."""

    def __init__(self, client: TestClient[Any], double: StripeDouble, container: Container) -> None:
        self.client, self.double, self.container = client, double, container
        self.gateway: StripeGateway = container.gateway_adapter()

    # -- our API ----------------------------------------------------------------------------
    def api(self, method: str, path: str, account: Account, **body: Any) -> dict[str, Any]:
        token = _token(account.id)
        answer = self.client.request(method, path, headers=token, json=body or None)
        assert answer.status_code in (200, 201), f"{method} {path}: {answer.text}"
        account.notes.append(f"{method} {path}")
        result: dict[str, Any] = answer.json() if answer.content else {}
        return result

    def sign_up(self, account: Account, plan: str, interval: str = "month") -> None:
        started = self.api("POST", "/billing/checkout", account, plan=plan, interval=interval)
        self.double.complete_checkout(started["checkout_id"])
        if account.returned_from_checkout:
            self.api("POST", f"/billing/checkout/{started['checkout_id']}/complete", account)
        with self.double._lock:
            session = self.double.state.get(started["checkout_id"], "checkout.session")
            account.customer, account.subscription = session["customer"], session["subscription"]

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
        self.double.complete_checkout(setup["setup_id"], card=card)
        self.api("POST", f"/billing/payment-method/setup/{setup['setup_id']}/complete", account)

    # -- Stripe's hosted portal -------------------------------------------------------------
    def portal_plan(self, account: Account, plan: str, interval: str = "month") -> None:
        price = self.gateway.prices.price_id(plan, Interval(interval))
        assert price is not None
        assert self.double.portal_change_price(account.subscription, price)
        account.notes.append(f"portal plan {plan}/{interval}")

    def portal_cancel(self, account: Account) -> None:
        self.double.portal_cancel(account.subscription)
        account.notes.append("portal cancel")

    def portal_resume(self, account: Account) -> None:
        self.double.portal_resume(account.subscription)
        account.notes.append("portal resume")

    def portal_card(self, account: Account, card: str) -> None:
        self.double.portal_update_payment_method(account.customer, card)
        account.notes.append(f"portal card {card}")

    # -- time and the bank --------------------------------------------------------------------
    def renewals_until(self, horizon: datetime, declined: set[str]) -> None:
        """Every period end up to `horizon`, one at a time; accounts in `declined` are declined."""
        while True:
            with self.double._lock:
                due = [
                    (s["items"]["data"][0]["current_period_end"], s["metadata"]["account_id"])
                    for s in self.double.state.all("subscription")
                    if s["status"] in ("active", "past_due")
                    and s["items"]["data"][0]["current_period_end"] <= horizon.timestamp()
                ]
            if not due:
                break
            end, account = min(due)
            if account in declined:
                self.double.decline_next_payment()
            self.double.advance_to(datetime.fromtimestamp(end, UTC))
        self.double.advance_to(horizon)


def _token(account_id: str) -> dict[str, str]:
    from tests.http.conftest import bearer

    return bearer(account_id, secret=AUTH_SECRET)


def live_two_months(world: World, accounts: list[Account]) -> None:
    """Each account's story (by `story`, ten kinds), interleaved in time as they would be."""
    clock = world.double.clock
    by: dict[int, list[Account]] = {}
    for account in accounts:
        by.setdefault(account.story, []).append(account)

    def each(story: int, action: Callable[[Account], object]) -> None:
        for account in by.get(story, []):
            action(account)

    plans = {0: "starter", 1: "business", 4: "growth", 5: "growth", 6: "growth", 8: "starter"}
    for index, account in enumerate(accounts):  # sign-ups ten minutes apart
        world.double.advance_to(T0 + timedelta(minutes=10 * index))
        interval = "year" if account.story == 6 else "month"
        world.sign_up(account, plans.get(account.story, "growth"), interval)

    world.double.advance_to(T0 + timedelta(days=2))  # round A
    each(0, lambda a: world.upgrade(a, "growth"))
    each(1, lambda a: world.downgrade(a, "growth"))
    each(2, lambda a: world.api("POST", "/billing/subscription/cancel", a))
    each(3, lambda a: world.api("POST", "/billing/subscription/cancel", a))
    each(5, lambda a: world.portal_plan(a, "business"))
    each(5, lambda a: world.portal_card(a, "amex"))
    each(6, lambda a: world.downgrade(a, "starter", "year"))
    each(7, lambda a: world.portal_plan(a, "growth", "year"))
    each(9, lambda a: world.update_card(a, "mastercard"))

    world.double.advance_to(T0 + timedelta(days=5))  # round B
    each(3, lambda a: world.api("POST", "/billing/subscription/resume", a))
    each(5, world.portal_cancel)
    each(6, lambda a: world.api("DELETE", "/billing/subscription/pending-change", a))
    world.double.advance_to(T0 + timedelta(days=6))
    each(5, world.portal_resume)

    # First renewals: downgrades take effect, cancellations end, some cards are declined.
    failing = {a.id for a in accounts if a.story in (4, 8)}
    world.renewals_until(T0 + timedelta(days=33), declined=failing)

    each(4, lambda a: world.portal_card(a, "mastercard"))  # round C: the customer fixes it
    each(8, lambda a: world.update_card(a, "amex"))
    each(9, world.portal_cancel)

    # Second renewals: the fixed cards pay (recovered); the others keep failing.
    world.renewals_until(T0 + timedelta(days=64), declined={a.id for a in accounts if a.story == 8})

    clock.advance(timedelta(hours=1))  # round D: changes still pending at the end
    each(1, lambda a: world.portal_plan(a, "starter"))
    each(3, world.portal_cancel)
    each(5, lambda a: world.portal_plan(a, "growth"))
    each(6, lambda a: world.upgrade(a, "business", "year"))
    each(7, lambda a: world.portal_plan(a, "growth", "month"))


def deliver(client: TestClient[Any], events: list[dict[str, Any]], rng: random.Random) -> Delivery:
    """Stripe's retries: each event at least once, some two or three times, all shuffled."""
    copies = list(events)
    for event in rng.sample(events, k=int(len(events) * DUPLICATE_SHARE)):
        copies.extend([event] * rng.choice((1, 1, 2)))
    rng.shuffle(copies)
    report = Delivery(distinct=len(events), duplicates=len(copies) - len(events))
    seen: set[str] = set()
    for event in copies:
        body = body_of(event)
        # Some deliveries are still signed with the secret being rotated out.
        secret = OLD_SECRET if rng.random() < 0.2 else SECRET
        answer = client.post(
            "/webhooks/stripe",
            content=body,
            headers={"Stripe-Signature": sign(body, secret), "Content-Type": "application/json"},
        )
        report.sent += 1
        if answer.status_code != 200:
            report.refused.append(f"{event['id']}: {answer.status_code} {answer.text}")
            continue
        duplicate = answer.json()["duplicate"]
        assert duplicate == (event["id"] in seen), event["id"]
        report.acknowledged_as_duplicate += duplicate
        seen.add(event["id"])
    return report


@pytest.fixture
def database() -> Iterator[str]:
    with postgres_database("billing_replay") as url:
        upgrade(url)
        yield url


def test_a_shuffled_stream_with_duplicates_converges_to_stripes_state_on_every_account(
    database: str, record_property: Callable[[str, object], None]
) -> None:
    started = time.monotonic()
    rng = random.Random(SEED)
    clock = ControllableClock(T0)
    double = start_double(clock)
    container = stripe_container(double, clock, database)
    accounts = [
        Account(
            id=f"acct_replay_{n:02d}", story=n % 10, returned_from_checkout=n % 10 not in (5, 7)
        )
        for n in range(ACCOUNTS)
    ]
    try:
        with TestClient(create_app(container)) as client:
            world = World(client, double, container)
            live_two_months(world, accounts)
            generated = time.monotonic()
            events = double.events_since(0)
            stale_before = _compare_with_stripe(container, world.gateway, accounts)
            assert len({e["id"] for e in events}) == len(events)

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

            mismatches = _compare_with_stripe(container, world.gateway, accounts)
            final = _tally(container, world.gateway, accounts)
            audited = audit_counts(database)
            rows = inbox_rows(container)
    finally:
        double.stop()

    per_event_audits = Counter(audited[r.event_id] for r in rows)
    outcomes = Counter(r.outcome for r in rows)
    summary = (
        f"replay: {len(accounts)} accounts, {delivery.sent} deliveries sent = "
        f"{delivery.distinct} distinct events + {delivery.duplicates} duplicates "
        f"({delivery.duplicates / delivery.sent:.0%} of deliveries); "
        f"{WORKERS} workers applied {sum(applied)} (per worker {applied}); "
        f"outcomes {dict(outcomes)}; events audited as applied once "
        f"{per_event_audits[1]}, more than once {sum(per_event_audits[k] for k in per_event_audits if k > 1)}; accounts matching Stripe before delivery "
        f"{len(accounts) - len(stale_before)}/{len(accounts)}, after "
        f"{len(accounts) - len(mismatches)}/{len(accounts)}; final states at Stripe {final}; "
        f"generation {generated - started:.1f}s, delivery+drain {finished - generated:.1f}s"
    )
    print(f"\n{summary}")
    record_property("replay_summary", summary)

    # The stream is what brought state up to date: without it most accounts were behind.
    assert len(stale_before) >= len(accounts) // 2, stale_before
    # The stories reached every kind of final state the comparison must get right.
    assert {"active", "past_due", "canceled", "pending_change", "cancel_at_period_end"} <= set(
        final
    ), final
    assert delivery.refused == []
    assert delivery.duplicates / delivery.sent >= 0.30
    assert delivery.acknowledged_as_duplicate == delivery.duplicates
    assert drained, (
        f"the inbox did not drain in {DRAIN_TIMEOUT}s: {container.inbox_admin().stats()}"
    )
    # Nothing lost: every distinct event stored once, applied, none pending or parked.
    assert sorted(r.event_id for r in rows) == sorted(e["id"] for e in events)
    stats = container.inbox_admin().stats()
    assert (stats.pending, stats.parked, stats.applied) == (0, 0, len(events))
    assert all(r.status is InboxStatus.APPLIED and r.last_error is None for r in rows)
    # Exactly once: no event has more than one audit entry for being applied, and every
    # event that changed something has exactly one, with the outcome the inbox recorded.
    assert max(audited.values(), default=0) <= 1, audited.most_common(3)
    assert all(audited[r.event_id] == 1 for r in rows if r.outcome == "applied")
    assert sum(applied) == len(events)
    # Converged: local state equals Stripe's for every account.
    assert mismatches == {}


def _compare_with_stripe(
    container: Container, gateway: StripeGateway, accounts: list[Account]
) -> dict[str, str]:
    mismatches: dict[str, str] = {}
    uow: UnitOfWork
    for account in accounts:
        with container.uow()() as uow:
            held = uow.subscriptions.for_account(account.id)
            customer = uow.customers.get(account.id)
        truth = gateway.get_subscription(account.subscription)
        want = (
            account.customer,
            truth.subscription_ref,
            truth.plan_id,
            truth.interval,
            truth.status,
            truth.current_period_end,
            truth.cancel_at_period_end,
            truth.pending_change,
            truth.payment_method,
        )
        have = (
            None
            if held is None
            else (
                customer,
                held.subscription_ref,
                held.plan_id,
                held.interval,
                held.status,
                held.current_period_end,
                held.cancel_at_period_end,
                held.pending_change,
                held.payment_method,
            )
        )
        if have != want:
            mismatches[account.id] = f"story {account.story}: ours {have} != Stripe {want}"
    return mismatches


def _tally(container: Container, gateway: StripeGateway, accounts: list[Account]) -> dict[str, int]:
    """Final states at Stripe, and how many local payment methods differ."""
    tally: Counter[str] = Counter()
    uow: UnitOfWork
    for account in accounts:
        truth = gateway.get_subscription(account.subscription)
        tally[truth.status.value] += 1
        tally["pending_change"] += truth.pending_change is not None
        tally["cancel_at_period_end"] += truth.cancel_at_period_end
        with container.uow()() as uow:
            held = uow.subscriptions.for_account(account.id)
        tally["payment_method_differs"] += (
            held is None or held.payment_method != truth.payment_method
        )
    return dict(tally)
