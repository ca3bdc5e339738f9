"""`/metrics` costs the same however often anyone asks: the backlog is read at most once a
second per process, one reading at a time, and only the unapplied events are counted."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import attrs
from dependency_injector import providers
from litestar.testing import TestClient

from responseiq_billing.adapters.app import create_app
from responseiq_billing.adapters.metrics import MetricsScrapes
from responseiq_billing.application.ports import InboxBacklog, InboxEvent
from tests.wiring import container_for

T0 = datetime(2026, 3, 1, 9, tzinfo=UTC)


@attrs.define
class Backlog:
    """A backlog that changes under the scrapes, and counts how often it was read."""

    pending: int = 0
    readings: int = 0
    reading: int = 0  # readings in flight right now
    most_at_once: int = 0
    gate: threading.Event = attrs.field(factory=threading.Event)

    def read(self) -> InboxBacklog:
        self.reading += 1
        self.most_at_once = max(self.most_at_once, self.reading)
        self.gate.wait(timeout=10)
        self.readings += 1
        self.reading -= 1
        return InboxBacklog(pending=self.pending, oldest_pending_age_seconds=None, parked=0)


@attrs.define
class Monotonic:
    now: float = 100.0

    def __call__(self) -> float:
        return self.now


def pending(text: str) -> int:
    [line] = [x for x in text.splitlines() if x.startswith("billing_inbox_pending ")]
    return int(line.split()[1])


def test_an_answer_is_held_for_a_second_then_read_afresh() -> None:
    backlog, clock = Backlog(pending=3), Monotonic()
    backlog.gate.set()
    scrapes = MetricsScrapes(read=backlog.read, monotonic=clock)

    assert pending(scrapes.text()) == 3
    backlog.pending = 7
    clock.now += 0.99
    assert [pending(scrapes.text()) for _ in range(50)] == [3] * 50  # the held answer
    clock.now += 0.01
    assert pending(scrapes.text()) == 7
    assert backlog.readings == 2


def test_scrapes_that_arrive_during_a_reading_wait_for_it_and_share_it() -> None:
    backlog = Backlog(pending=5)
    scrapes = MetricsScrapes(read=backlog.read, monotonic=Monotonic())
    answers: list[int] = []
    threads = [
        threading.Thread(target=lambda: answers.append(pending(scrapes.text()))) for _ in range(8)
    ]
    for thread in threads:
        thread.start()
    while backlog.reading == 0:  # the first scrape is reading; the others queue behind it
        threading.Event().wait(0.001)
    backlog.gate.set()
    for thread in threads:
        thread.join(timeout=10)
    assert answers == [5] * 8
    assert (backlog.readings, backlog.most_at_once) == (1, 1)


def test_the_route_serves_the_held_answer_to_every_scrape_in_that_second() -> None:
    container = container_for()
    clock = Monotonic()
    container.metrics_scrapes.override(
        providers.Singleton(
            MetricsScrapes, read=container.inbox_admin.provided.backlog, monotonic=clock
        )
    )
    received = 0

    def store_one() -> None:
        nonlocal received
        received += 1
        with container.uow()() as uow:
            uow.inbox.add(event(f"evt_{received}"))
            uow.commit()

    with TestClient(create_app(container)) as client:
        scrape = lambda: pending(client.get("/metrics").text)  # noqa: E731
        assert scrape() == 0
        store_one()
        assert scrape() == 0  # held: nothing was read
        clock.now += 1.0
        assert scrape() == 1
        store_one()
        store_one()
        clock.now += 1.0
        assert scrape() == 3


def event(event_id: str) -> InboxEvent:
    return InboxEvent(
        gateway="sandbox",
        event_id=event_id,
        type="customer.subscription.updated",
        payload="{}",
        received_at=T0 + timedelta(seconds=1),
    )
