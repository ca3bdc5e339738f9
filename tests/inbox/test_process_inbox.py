"""The webhook inbox applies every stored event exactly once, whatever the delivery order."""

from __future__ import annotations

import random
from datetime import timedelta

import attrs
import pytest

from responseiq_billing.adapters.fake.clock import ControllableClock
from responseiq_billing.adapters.fake.gateway import FakeGateway
from responseiq_billing.adapters.fake.repositories import InMemoryStore
from responseiq_billing.adapters.fake.storage import MemoryStorage
from responseiq_billing.application import commands, use_cases
from responseiq_billing.application.inbox import (
    ProcessInbox,
    ReceiveGatewayEvent,
    backoff,
)
from responseiq_billing.application.ports import GatewayEvent, InboxStatus
from responseiq_billing.domain.errors import StaleVersion
from responseiq_billing.domain.plans import Catalog, Interval
from responseiq_billing.domain.subscription import Status
from tests.streams import store_sandbox_event
from tests.wiring import container_for


class Harness:
    """The container's use cases over one store; the fake gateway's events are collected, not
    applied."""

    def __init__(
        self, store: InMemoryStore, gateway: FakeGateway, clock: ControllableClock, catalog: Catalog
    ) -> None:
        self.store, self.gateway, self.clock, self.catalog = store, gateway, clock, catalog
        self.container = container_for(
            catalog=catalog, clock=clock, gateway=gateway, storage=MemoryStorage(store)
        )
        self.emitted: list[GatewayEvent] = []
        gateway.subscribe(self.emitted.append)
        self.receive: ReceiveGatewayEvent = self.container.receive_gateway_event()
        self.apply: use_cases.ApplyGatewayEvent = self.container.apply_gateway_event()

    def worker(self, name: str = "w1", **options: object) -> ProcessInbox:
        """A worker's pass as the container makes it (`options`: its lease, decoders, ...)."""
        worker: ProcessInbox = self.container.process_inbox(worker=name, **options)
        return worker

    def deliver(self, event: GatewayEvent) -> bool:
        return store_sandbox_event(self.receive, event)

    def drain(self, *workers: ProcessInbox) -> None:
        for _ in range(1000):
            if sum(w.run_once(limit=5).claimed for w in workers or (self.worker(),)) == 0:
                return
        raise AssertionError("the inbox never drained")

    def sign_up(self, account: str, plan: str = "growth") -> str:
        session = self.container.start_checkout()(
            commands.StartCheckout(account, plan, "month", "https://app/ok", "https://app/no")
        )
        self.gateway.complete_checkout(session.id)
        with self.store.unit_of_work() as uow:
            customer = uow.customers.get(account)
        assert customer is not None
        return customer

    def local(self, account: str):  # type: ignore[no-untyped-def]
        with self.store.unit_of_work() as uow:
            return uow.subscriptions.for_account(account)

    def audit_event_ids(self) -> list[str]:
        with self.store.unit_of_work() as uow:
            entries = [e for a in uow.customers.accounts() for e in uow.audit.for_account(a)]
        return [e.inputs["event_id"] for e in entries if e.action.startswith("gateway_event.")]


@pytest.fixture
def h(store: InMemoryStore, catalog: Catalog, clock: ControllableClock) -> Harness:
    return Harness(store, FakeGateway(catalog, clock), clock, catalog)


def test_a_duplicate_delivery_is_stored_once_and_applied_once(h: Harness) -> None:
    h.sign_up("ada")
    first = h.emitted[0]
    assert h.deliver(first) is True
    assert h.deliver(first) is False
    for event in h.emitted:
        h.deliver(event)
    h.drain()
    ids = h.audit_event_ids()
    assert sorted(ids) == sorted({e.id for e in h.emitted if e.kind.value != "ignored"})
    assert len(ids) == len(set(ids))


def test_shuffled_duplicated_portal_changes_converge_to_the_gateways_state(h: Harness) -> None:
    customers = {acct: h.sign_up(acct) for acct in ("ada", "bob", "cy")}
    h.clock.advance(timedelta(days=3))
    h.gateway.portal_change_plan(customers["ada"], "business", Interval.MONTH)
    h.clock.advance(timedelta(seconds=5))
    h.gateway.portal_change_plan(customers["bob"], "starter", Interval.MONTH)
    h.clock.advance(timedelta(seconds=5))
    h.gateway.portal_cancel(customers["cy"])
    h.gateway.advance(timedelta(days=40))  # renewals, the scheduled downgrade, cy's end

    rng = random.Random(7)
    deliveries = h.emitted + rng.sample(h.emitted, k=len(h.emitted) // 2)
    rng.shuffle(deliveries)
    for event in deliveries:
        h.deliver(event)
    h.drain(h.worker("w1"), h.worker("w2"))

    for account, customer in customers.items():
        truth = h.gateway.customer_subscription(customer)
        mine = h.local(account)
        assert truth is not None and mine is not None
        assert (
            mine.plan_id,
            mine.interval,
            mine.status,
            mine.current_period_end,
            mine.pending_change,
        ) == (
            truth.plan_id,
            truth.interval,
            truth.status,
            truth.current_period_end,
            truth.pending_change,
        )
    assert h.local("cy").status is Status.CANCELED
    ids = h.audit_event_ids()
    assert len(ids) == len(set(ids))  # exactly once, though a third of deliveries were repeats


def test_an_event_that_fails_is_retried_with_backoff_and_then_parked(h: Harness) -> None:
    h.receive(  # a payload no decoder understands
        gateway="sandbox",
        event_id="evt_bad",
        type="x",
        payload="{not json",
        event_created=h.clock.now(),
        object_ref=None,
    )
    worker = h.worker(max_attempts=3, backoff_base=timedelta(seconds=10))
    assert worker.run_once().failed == 1
    assert worker.run_once().claimed == 0  # not due before its back-off
    h.clock.advance(timedelta(seconds=10))
    assert worker.run_once().failed == 1
    h.clock.advance(timedelta(seconds=20))
    report = worker.run_once()
    assert (report.failed, report.parked) == (1, 1)
    h.clock.advance(timedelta(hours=2))
    assert worker.run_once().claimed == 0
    admin = h.container.inbox_admin()
    assert [e.event_id for e in admin.list(InboxStatus.PARKED)] == ["evt_bad"]
    assert admin.stats().parked == 1
    assert admin.retry("evt_bad") is True
    assert admin.stats().parked == 0


def test_a_worker_that_dies_mid_event_leaves_it_to_be_claimed_after_the_lease(h: Harness) -> None:
    h.sign_up("ada")
    for event in h.emitted:
        h.deliver(event)
    with h.store.unit_of_work() as uow:  # a worker claims, then dies before applying
        claimed = uow.inbox.claim(
            worker="dead", now=h.clock.now(), lease=timedelta(seconds=60), limit=100
        )
        uow.commit()
    assert claimed
    survivor = h.worker("alive", lease=timedelta(seconds=60))
    assert survivor.run_once().claimed == 0  # the lease still holds
    h.clock.advance(timedelta(seconds=61))
    h.drain(survivor)
    ids = h.audit_event_ids()
    assert len(ids) == len(set(ids)) and ids
    assert h.local("ada") is not None


def _cached_status(h: Harness, invoice_id: str) -> str:
    with h.store.unit_of_work() as uow:
        stored = uow.invoices.get(invoice_id)
    assert stored is not None
    return stored[1].status.value


def test_an_invoice_event_of_the_same_second_is_resolved_by_asking_the_gateway(h: Harness) -> None:
    h.sign_up("ada")
    by_type = {e.gateway_type: e for e in h.emitted if e.invoice is not None}
    paid, created = by_type["invoice.paid"], by_type["invoice.created"]
    assert paid.created == created.created  # Stripe often stamps a whole burst in one second
    h.deliver(paid)
    h.drain()
    h.deliver(created)  # the draft arrives last
    h.drain()
    assert created.invoice is not None
    assert _cached_status(h, created.invoice.id) == "paid"


def test_an_older_invoice_event_is_recorded_but_does_not_roll_a_paid_invoice_back(
    h: Harness,
) -> None:
    h.sign_up("ada")
    paid = next(e for e in h.emitted if e.gateway_type == "invoice.paid")
    h.deliver(paid)
    h.drain()
    older = attrs.evolve(
        next(e for e in h.emitted if e.gateway_type == "invoice.finalized"),
        id="evt_late_finalized",
        created=paid.created - timedelta(seconds=1),
    )
    h.deliver(older)
    report = h.worker().run_once()
    assert (report.claimed, report.stale) == (1, 1)
    assert paid.invoice is not None
    assert _cached_status(h, paid.invoice.id) == "paid"
    with h.store.unit_of_work() as uow:
        stored = uow.inbox.get("evt_late_finalized")
    assert stored is not None and stored.status is InboxStatus.APPLIED and stored.outcome == "stale"


def test_backoff_doubles_and_is_capped() -> None:
    base, cap = timedelta(seconds=5), timedelta(minutes=1)
    assert [backoff(n, base=base, cap=cap).total_seconds() for n in range(1, 7)] == [
        5,
        10,
        20,
        40,
        60,
        60,
    ]


class _AlwaysConflicting:
    """A decoder whose events can never be written: every attempt meets a concurrent write."""

    def decode(self, payload: str) -> GatewayEvent:
        raise StaleVersion("a concurrent write won, three times over")


def test_an_event_that_keeps_conflicting_is_recorded_as_a_failure_not_held_silently(
    h: Harness,
) -> None:
    h.receive(
        gateway="conflicting",
        event_id="evt_hot",
        type="customer.subscription.updated",
        payload="{}",
        event_created=h.clock.now(),
        object_ref="sub_hot",
    )
    worker = h.worker("w1", decoders={"conflicting": _AlwaysConflicting()})
    report = worker.run_once()
    assert (report.claimed, report.failed) == (1, 1)
    with h.store.unit_of_work() as uow:
        stored = uow.inbox.get("evt_hot")
    assert stored is not None and stored.locked_by is None
    assert stored.last_error is not None and stored.last_error.startswith("conflict.stale_version")
    assert stored.next_attempt_at is not None and stored.next_attempt_at > h.clock.now()
