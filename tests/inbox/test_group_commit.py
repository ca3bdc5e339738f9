"""Ingestion's group commit: deliveries that arrive together are stored by one write, and each
caller returns only when its own delivery is durable (or learns that it is not)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from dependency_injector import providers

from responseiq_billing.adapters.fake.clock import ControllableClock
from responseiq_billing.adapters.fake.repositories import InMemoryUnitOfWork
from responseiq_billing.adapters.fake.storage import MemoryStorage
from responseiq_billing.application.inbox import EventNotStored, ReceiveGatewayEvent
from responseiq_billing.application.ports import InboxStatus
from tests.wiring import container_for

CALLERS = 12


class GatedStore(MemoryStorage):
    """An in-memory storage whose units of work are counted; the first can be held open, and a
    write can be made to fail, as a database that is slow or down would."""

    def __init__(self) -> None:
        super().__init__()
        self.units = 0
        self.hold_first = threading.Event()
        self.hold_first.set()
        self.fail = False

    def unit_of_work(self) -> InMemoryUnitOfWork:
        self.units += 1
        if self.units == 1:
            assert self.hold_first.wait(10), "the first write was never released"
        if self.fail and self.units > 1:  # the writes after the first one
            raise ConnectionError("the database went away")
        return self.store.unit_of_work()

    def stored_ids(self) -> list[str]:
        with self.store.unit_of_work() as uow:
            return sorted(e.event_id for e in uow.inbox.list(InboxStatus.PENDING, limit=1000))


def ingestion(
    gated: GatedStore, clock: ControllableClock, group_limit: int | None = None
) -> ReceiveGatewayEvent:
    """`ReceiveGatewayEvent` from the container, `gated` its storage."""
    container = container_for(clock=clock, storage=gated)
    if group_limit is not None:
        container.inbox_group_limit.override(providers.Object(group_limit))
    receive: ReceiveGatewayEvent = container.receive_gateway_event()
    return receive


def receive_in_threads(
    receive: ReceiveGatewayEvent, ids: list[str]
) -> tuple[list[threading.Thread], dict[str, object]]:
    results: dict[str, object] = {}

    def call(event_id: str) -> None:
        try:
            results[event_id] = receive(
                gateway="sandbox",
                event_id=event_id,
                type="invoice.paid",
                payload="{}",
                event_created=None,
                object_ref=None,
            )
        except EventNotStored as error:
            results[event_id] = error

    threads = [threading.Thread(target=call, args=(i,)) for i in ids]
    for thread in threads:
        thread.start()
    return threads, results


def wait_for(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 10
    while not condition():
        assert time.monotonic() < deadline, "the callers never queued"
        time.sleep(0.005)


@pytest.fixture
def clock() -> ControllableClock:
    return ControllableClock(datetime(2026, 3, 1, 9, tzinfo=UTC))


def test_deliveries_arriving_during_a_write_are_stored_together_by_the_next(
    clock: ControllableClock,
) -> None:
    gated = GatedStore()
    gated.hold_first.clear()  # the first write stalls, as a slow commit would
    receive = ingestion(gated, clock)
    first, first_result = receive_in_threads(receive, ["evt_first"])
    wait_for(lambda: gated.units == 1)

    others = [f"evt_{n:02d}" for n in range(CALLERS)]
    threads, results = receive_in_threads(receive, others)
    wait_for(lambda: len(receive._queue) == CALLERS)  # all waiting behind the first write
    assert results == {}  # nobody is acknowledged before their delivery is durable
    gated.hold_first.set()
    for thread in first + threads:
        thread.join(10)

    assert first_result == {"evt_first": True}
    assert results == dict.fromkeys(others, True)
    assert gated.units == 2  # the first delivery's write, then one for all the others
    assert gated.stored_ids() == sorted(["evt_first", *others])


def test_a_group_limit_splits_a_burst_into_several_writes(clock: ControllableClock) -> None:
    gated = GatedStore()
    gated.hold_first.clear()
    receive = ingestion(gated, clock, group_limit=5)
    first, _ = receive_in_threads(receive, ["evt_first"])
    wait_for(lambda: gated.units == 1)
    threads, results = receive_in_threads(receive, [f"evt_{n:02d}" for n in range(CALLERS)])
    wait_for(lambda: len(receive._queue) == CALLERS)
    gated.hold_first.set()
    for thread in first + threads:
        thread.join(10)

    assert list(results.values()) == [True] * CALLERS
    assert gated.units == 1 + 3  # 12 queued, at most 5 a write


def test_a_duplicate_in_the_same_group_is_stored_once_and_acknowledged_as_such(
    clock: ControllableClock,
) -> None:
    gated = GatedStore()
    gated.hold_first.clear()
    receive = ingestion(gated, clock)
    first, _ = receive_in_threads(receive, ["evt_first"])
    wait_for(lambda: gated.units == 1)
    results: list[object] = []
    threads = []
    for _ in range(2):  # the same event, delivered twice at once
        more, got = receive_in_threads(receive, ["evt_twice"])
        threads += more
        results.append(got)
    wait_for(lambda: len(receive._queue) == 2)
    gated.hold_first.set()
    for thread in first + threads:
        thread.join(10)

    outcomes = sorted(r["evt_twice"] for r in results)  # type: ignore[index]
    assert outcomes == [False, True]
    assert gated.stored_ids() == ["evt_first", "evt_twice"]


def test_when_the_write_fails_every_caller_in_the_group_learns_it_and_nothing_is_stored(
    clock: ControllableClock,
) -> None:
    gated = GatedStore()
    gated.hold_first.clear()
    receive = ingestion(gated, clock)
    first, _ = receive_in_threads(receive, ["evt_first"])
    wait_for(lambda: gated.units == 1)
    others = [f"evt_{n:02d}" for n in range(4)]
    threads, results = receive_in_threads(receive, others)
    wait_for(lambda: len(receive._queue) == len(others))
    gated.fail = True  # the database goes away before the group's write
    gated.hold_first.set()
    for thread in first + threads:
        thread.join(10)

    assert all(isinstance(r, EventNotStored) for r in results.values()), results
    gated.fail = False
    # The gateway retries; the deliveries are stored then, once, and the next caller leads.
    retry, retried = receive_in_threads(receive, others)
    for thread in retry:
        thread.join(10)
    assert retried == dict.fromkeys(others, True)
    assert gated.stored_ids() == sorted(["evt_first", *others])


def test_a_lone_delivery_is_written_at_once_by_its_own_caller(clock: ControllableClock) -> None:
    gated = GatedStore()
    receive = ingestion(gated, clock)
    for n in range(3):
        assert receive(
            gateway="sandbox",
            event_id=f"evt_{n}",
            type="invoice.paid",
            payload="{}",
            event_created=None,
            object_ref=None,
        )
    assert gated.units == 3
    assert receive._queue == []
