"""A batch of inbox events in one transaction keeps what one event at a time kept (ADR 0011)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import attrs
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from responseiq_billing.adapters.container import Container
from responseiq_billing.adapters.fake.clock import ControllableClock
from responseiq_billing.adapters.fake.gateway import FakeGateway
from responseiq_billing.adapters.sql.database import (
    create_engine_from_url,
)
from responseiq_billing.adapters.sql.tables import audit_log, subscriptions
from responseiq_billing.application import commands, use_cases
from responseiq_billing.application.ports import GatewayEvent, InboxStatus, PaymentGateway
from responseiq_billing.application.use_cases import Within
from responseiq_billing.domain.errors import GatewayUnavailable
from responseiq_billing.domain.invoices import InvoiceStatus
from responseiq_billing.domain.plans import Interval, default_catalog
from tests.streams import sandbox_stream, store_sandbox_event
from tests.wiring import as_class, container_for, sandbox_settings

T0 = datetime(2026, 3, 1, 9, tzinfo=UTC)


@attrs.frozen(kw_only=True)
class FailingApply(use_cases.ApplyGatewayEvent):
    """Applies the event, writes included, then fails for `failing` while `armed` holds True."""

    failing: str
    armed: list[bool]

    def __call__(
        self, event: GatewayEvent, *, within: Within | None = None
    ) -> use_cases.ApplyOutcome:
        outcome = super().__call__(event, within=within)
        if event.id == self.failing and self.armed[0]:
            raise RuntimeError("failed after writing")
        return outcome


@pytest.fixture
def engine(migrated: str) -> Iterator[Engine]:
    engine = create_engine_from_url(migrated)
    yield engine
    engine.dispose()


Service = Callable[[FakeGateway, ControllableClock], Container]


@pytest.fixture
def service(engine: Engine) -> Iterator[Service]:
    """The container over `engine`'s database (its own engine, as a worker process has), with
    the test's fake gateway and clock; its storage is closed after the test."""
    made: list[Container] = []

    def make(fake: FakeGateway, clock: ControllableClock) -> Container:
        made.append(_service(engine.url.render_as_string(hide_password=False), fake, clock))
        return made[-1]

    yield make
    for container in made:
        container.storage().close()


def _service(url: str, fake: FakeGateway, clock: ControllableClock) -> Container:
    return container_for(
        sandbox_settings(database_url=url), catalog=default_catalog(), clock=clock, gateway=fake
    )


def _stream(clock: ControllableClock) -> tuple[FakeGateway, list[GatewayEvent]]:
    """Three sign-ups, an upgrade, a downgrade and a card change, as a gateway sends them."""
    return sandbox_stream(clock, 3, changes=("upgrade", "downgrade", "card"))


def _audited(engine: Engine) -> Counter[str]:
    with engine.connect() as conn:
        rows = conn.scalars(
            sa.select(audit_log.c.inputs["event_id"].as_string()).where(
                audit_log.c.action.like("gateway_event.%")
            )
        )
        return Counter(rows)


def test_a_batch_with_one_failing_event_applies_the_others_once_and_retries_the_failing_one(
    engine: Engine, service: Service
) -> None:
    clock = ControllableClock(T0)
    fake, events = _stream(clock)
    container = service(fake, clock)
    uow = container.uow()
    receive = container.receive_gateway_event()
    for event in events:
        store_sandbox_event(receive, event)
    # acct_1's subscription starting: its later events (the downgrade) must wait for it.
    failing = next(
        e
        for e in events
        if e.gateway_type == "customer.subscription.created" and "1" in str(e.account_id)
    )
    armed = [True]
    apply = container.apply_gateway_event
    apply.override(as_class(apply, FailingApply, failing=failing.id, armed=armed))
    worker = container.process_inbox(worker="w1")  # SQL storage: a batch per claim

    first = worker.run_once(limit=len(events))

    held_back = {  # after it in the inbox's order: gateway time, arrival (all alike), id
        e.id
        for e in events
        if e.object_ref == failing.object_ref and (e.created, e.id) > (failing.created, failing.id)
    }
    assert held_back, "the failing event's object has later events"
    assert first.failed == 1
    assert first.claimed == len(events)  # claimed together, then held back behind it
    assert first.applied + first.stale == first.claimed - 1 - len(held_back)
    audited = _audited(engine)
    assert failing.id not in audited  # its writes went with its savepoint
    assert not held_back & set(audited)  # never applied before the older event of its object
    assert all(n == 1 for n in audited.values())
    with uow() as u:
        stored = u.inbox.get(failing.id)
        assert stored is not None and stored.status is InboxStatus.PENDING
        assert stored.last_error is not None and "failed after writing" in stored.last_error
        assert stored.next_attempt_at is not None and stored.next_attempt_at > clock.now()
        for event_id in held_back:
            waiting = u.inbox.get(event_id)
            assert waiting is not None and waiting.locked_by is None and waiting.attempts == 0

    armed[0] = False
    assert worker.run_once(limit=len(events)).claimed == 0  # not due yet: back-off
    clock.advance(timedelta(minutes=1))
    second = worker.run_once(limit=len(events))

    assert second.claimed == 1 + len(held_back)
    assert second.failed == 0
    audited = _audited(engine)
    assert failing.id in audited and held_back <= set(audited)
    assert all(n == 1 for n in audited.values())
    with uow() as u:
        stored_events = [u.inbox.get(e.id) for e in events]
        assert all(e is not None and e.status is InboxStatus.APPLIED for e in stored_events)
        assert u.subscriptions.for_account("acct_1") is not None


@pytest.mark.postgres
def test_a_batch_that_lost_one_lease_commits_none_of_its_events() -> None:
    from responseiq_billing.adapters.sql.migrate import upgrade
    from tests.sql_fixtures import postgres_database

    with postgres_database("billing_batch") as url:
        upgrade(url)
        engine = create_engine_from_url(url)
        clock = ControllableClock(T0)
        fake, events = _stream(clock)
        container = _service(url, fake, clock)
        try:
            _lost_lease(engine, container, clock, events)
        finally:
            container.storage().close()
            engine.dispose()


def _lost_lease(
    engine: Engine, container: Container, clock: ControllableClock, events: list[GatewayEvent]
) -> None:
    uow = container.uow()
    receive = container.receive_gateway_event()
    for event in events:
        store_sandbox_event(receive, event)
    first_event = events[0]
    other = container.process_inbox(worker="w2", batch=None)  # each event on its own

    @attrs.frozen(kw_only=True)
    class SlowApply(use_cases.ApplyGatewayEvent):
        def __call__(
            self, event: GatewayEvent, *, within: Within | None = None
        ) -> use_cases.ApplyOutcome:
            outcome = super().__call__(event, within=within)
            if event.id == first_event.id:
                # This worker stalled past its lease: w2 claims the event meanwhile.
                clock.advance(timedelta(minutes=2))
                with uow() as u:
                    taken = u.inbox.claim(
                        worker="w2", now=clock.now(), lease=timedelta(seconds=60), limit=100
                    )
                    u.commit()
                assert first_event.id in {e.event_id for e in taken}
            return outcome

    # `other` keeps the plain use case it was made with; this worker gets the slow one.
    apply = container.apply_gateway_event
    apply.override(as_class(apply, SlowApply))
    worker = container.process_inbox(worker="w1")  # SQL storage: a batch per claim

    report = worker.run_once(limit=len(events))

    assert report.claimed == len(events)
    assert report.applied == report.stale == report.failed == 0
    assert _audited(engine) == Counter()  # none of the batch was committed
    clock.advance(timedelta(minutes=2))  # w1's leases expire; w2 applies everything once
    while other.run_once(limit=100).claimed:
        pass
    audited = _audited(engine)
    assert all(n == 1 for n in audited.values())
    with uow() as u:
        assert u.inbox.stats(clock.now()).pending == 0


def _subscribed(
    service: Service, clock: ControllableClock
) -> tuple[FakeGateway, Container, str, Deliver]:
    """acct_0 subscribed through the sandbox (its events stored, not applied): the gateway,
    the container over the test's database, the customer, and how to store what the gateway
    sent since (it returns those events; `only`: store just those it passes)."""
    catalog = default_catalog()
    fake = FakeGateway(catalog, clock)
    events: list[GatewayEvent] = []
    fake.subscribe(events.append)
    container = service(fake, clock)
    receive = container.receive_gateway_event()

    def deliver_all(only: Callable[[GatewayEvent], bool] = lambda _: True) -> list[GatewayEvent]:
        sent = list(events)
        for event in filter(only, sent):
            store_sandbox_event(receive, event)
        events.clear()
        return sent

    scratch = container_for(catalog=catalog, clock=clock, gateway=fake)  # only for the checkout
    start = scratch.start_checkout()
    session = start(commands.StartCheckout("acct_0", "growth", "month", "https://a", "https://b"))
    fake.complete_checkout(session.id)
    with scratch.uow()() as memory:
        customer = memory.customers.get("acct_0")
    assert customer is not None
    deliver_all()
    return fake, container, customer, deliver_all


Deliver = Callable[..., list[GatewayEvent]]  # `deliver_all(only=…)`: what is stored


def test_a_change_made_between_the_reads_a_batch_reuses_is_caught_and_not_overwritten(
    engine: Engine, service: Service
) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite has one writer: nothing can be written while a batch is open")
    clock = ControllableClock(T0)
    fake, container, customer, deliver_all = _subscribed(service, clock)
    uow = container.uow()
    bumped: list[int] = []
    armed: list[bool] = []

    @attrs.frozen(kw_only=True)
    class ConcurrentWriter(use_cases.ApplyGatewayEvent):
        """After the view is judged (the row read), another process changes the row."""

        def _view_for(self, event: GatewayEvent) -> use_cases.Settled | None:
            settled = super()._view_for(event)
            if armed and event.gateway_type == "customer.subscription.updated" and not bumped:
                with engine.connect() as other:
                    version = other.execute(
                        sa.update(subscriptions)
                        .where(subscriptions.c.account_id == "acct_0")
                        .values(version=subscriptions.c.version + 1)
                        .returning(subscriptions.c.version)
                    ).scalar_one()
                    other.commit()
                bumped.append(version)
            return settled

    apply = container.apply_gateway_event
    apply.override(as_class(apply, ConcurrentWriter))
    worker = container.process_inbox(worker="w1")  # SQL storage: a batch per claim
    while worker.run_once(limit=50).claimed:
        pass
    clock.advance(timedelta(seconds=5))
    fake.portal_change_plan(customer, "business", Interval.MONTH)
    sent = deliver_all()
    upgrade_ids = [e.id for e in sent if e.gateway_type == "customer.subscription.updated"]
    armed.append(True)

    report = worker.run_once(limit=50)

    assert bumped, "the concurrent write ran between the reads"
    assert report.failed == 0
    audited = _audited(engine)
    assert all(audited[event_id] == 1 for event_id in upgrade_ids)
    with uow() as u:
        sub = u.subscriptions.for_account("acct_0")
        assert u.inbox.stats(clock.now()).pending == 0
    assert sub is not None and sub.plan_id == "business"
    assert sub.version == bumped[0] + 1  # written on top of the concurrent change, not over it


def _savepoints(engine: Engine) -> tuple[list[str], Callable[[], None]]:
    """The event savepoints taken on `engine` from now on, and how to stop noting them."""
    seen: list[str] = []

    def note(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        if statement.startswith("SAVEPOINT inbox_event"):
            seen.append(statement)

    sa.event.listen(engine, "before_cursor_execute", note)
    return seen, lambda: sa.event.remove(engine, "before_cursor_execute", note)


@pytest.mark.parametrize("fails", [False, True])
def test_events_that_go_right_take_no_savepoint_and_one_that_fails_reruns_the_batch_guarded(
    engine: Engine, service: Service, fails: bool
) -> None:
    clock = ControllableClock(T0)
    fake, events = _stream(clock)
    container = service(fake, clock)
    receive = container.receive_gateway_event()
    for event in events:
        store_sandbox_event(receive, event)
    failing = next(e for e in events if e.gateway_type == "invoice.paid")
    apply = container.apply_gateway_event
    apply.override(as_class(apply, FailingApply, failing=failing.id, armed=[fails]))
    worker = container.process_inbox(worker="w1")
    worker_engine = container.storage().engine
    savepoints, stop = _savepoints(worker_engine)
    try:
        report = worker.run_once(limit=len(events))
    finally:
        stop()

    audited = _audited(engine)
    assert all(n == 1 for n in audited.values())
    if not fails:
        assert report.failed == 0
        assert savepoints == []  # one round trip less per event
        assert set(audited) >= {e.id for e in events if e.gateway_type == "invoice.paid"}
    else:
        # The unguarded run was rolled back whole; guarded, only the failing event is undone
        assert report.failed == 1
        assert savepoints, "the batch ran again, each event after a savepoint"
        assert failing.id not in audited
        assert report.applied + report.stale >= 1


def test_a_tie_is_never_settled_with_a_read_taken_before_our_copy_was_written(
    engine: Engine, service: Service
) -> None:
    """A batch reads ahead what its tied events will ask the gateway. An API write recorded
    after that read (our copy, a new version) makes the read too old to settle a tie with:
    the batch reads again. Once it applied a tied view, our copy is the gateway's."""
    clock = ControllableClock(T0)  # never moves: every write shares one second
    fake, container, customer, deliver_all = _subscribed(service, clock)
    worker = container.process_inbox(worker="w1")
    while worker.run_once(limit=50).claimed:
        pass
    container.cancel_subscription()(commands.CancelSubscription("acct_0"))  # ours too
    deliver_all()
    while worker.run_once(limit=50).claimed:
        pass
    # Two portal writes in the same second: their events tie, so the batch reads ahead
    fake.portal_resume(customer)
    fake.portal_cancel(customer)
    deliver_all()
    resume = container.resume_subscription()
    resumed: list[bool] = []

    class ResumedAfterTheRead:
        """The sandbox, where the customer resumes in another tab just after the batch read
        ahead (the API call writes the gateway, then our copy)."""

        def get_subscription(self, subscription_ref: str) -> Any:
            seen = fake.get_subscription(subscription_ref)
            if not resumed:
                resumed.append(True)
                resume(commands.ResumeSubscription("acct_0"))
            return seen

        def __getattr__(self, name: str) -> Any:
            return getattr(fake, name)

    batched = attrs.evolve(worker, gateway=cast(PaymentGateway, ResumedAfterTheRead()))

    batched.run_once(limit=50)

    assert resumed, "the batch read ahead"
    truth = fake.customer_subscription(customer)
    with container.uow()() as u:
        held = u.subscriptions.for_account("acct_0")
    assert truth is not None and held is not None
    assert truth.cancel_at_period_end is False  # resumed last
    assert held.cancel_at_period_end is False


@attrs.frozen(kw_only=True)
class ReadsFirst(use_cases.ApplyGatewayEvent):
    """Before applying `splitting`, reads what no batch reads ahead: the batch's transaction
    commits the events before it, the read is made, and a new transaction goes on."""

    splitting: str
    customer: str

    def __call__(
        self, event: GatewayEvent, *, within: Within | None = None
    ) -> use_cases.ApplyOutcome:
        if event.id == self.splitting:
            self.gateway.list_subscriptions(self.customer)
        return super().__call__(event, within=within)


def _renewal_invoice_in_two(
    service: Service, first: str, second: str
) -> tuple[FakeGateway, Container, str, GatewayEvent, GatewayEvent]:
    """acct_0 subscribed and applied, then renewed: two events of the renewal's invoice (of
    one second, `first` received a second before `second`) stored, its others not; the
    worker's `ReadsFirst` splits the claim before `first`."""
    clock = ControllableClock(T0)
    fake, container, customer, deliver_all = _subscribed(service, clock)
    worker = container.process_inbox(worker="w1")
    while worker.run_once(limit=50).claimed:
        pass
    fake.advance_to(T0 + timedelta(days=32))  # the renewal: its invoice is paid by the card
    by_type = {e.gateway_type: e for e in deliver_all(only=lambda e: e.gateway_type == first)}
    early, late = by_type[first], by_type[second]
    assert early.created == late.created and late.invoice is not None
    clock.advance(timedelta(seconds=1))  # received after it: claimed after it
    store_sandbox_event(container.receive_gateway_event(), late)
    apply = container.apply_gateway_event
    splitting = by_type["invoice.finalized"].id
    apply.override(as_class(apply, ReadsFirst, splitting=splitting, customer=customer))
    return fake, container, customer, early, late


def test_a_tie_with_an_event_applied_earlier_in_the_claim_asks_the_gateway(
    engine: Engine, service: Service
) -> None:
    """Invoice events are judged against the newest event applied to their invoice: read once
    per claim, and kept as the claim's own transactions apply more."""
    _, container, _, _, finalized = _renewal_invoice_in_two(
        service, "invoice.created", "invoice.finalized"
    )

    report = container.process_inbox(worker="w1").run_once(limit=50)

    assert (report.claimed, report.applied, report.failed) == (2, 2, 0)
    with container.uow()() as u:
        held = u.invoices.get(finalized.invoice.id)
    # asked, the gateway says paid (the card paid the renewal); as sent, it would say open
    assert held is not None and held[1].status is InvoiceStatus.PAID


def test_an_event_whose_read_fails_runs_alone_and_later_events_are_judged_against_it(
    engine: Engine, service: Service
) -> None:
    """A read a batch lacks is made between its transactions; if the gateway fails it, the
    event runs on its own. What it applied is then what the claim's later events of its
    invoice are judged against."""
    fake, container, _, _, created = _renewal_invoice_in_two(
        service, "invoice.finalized", "invoice.created"
    )
    answer = fake.list_subscriptions
    failed: list[bool] = []

    def fails_once(customer_ref: str) -> Any:
        if not failed:
            failed.append(True)
            raise GatewayUnavailable("timeout")
        return answer(customer_ref)

    object.__setattr__(fake, "list_subscriptions", fails_once)

    report = container.process_inbox(worker="w1").run_once(limit=50)

    assert failed and (report.claimed, report.failed) == (2, 0)
    with container.uow()() as u:
        held = u.invoices.get(created.invoice.id)
    # the draft tied with the open invoice applied alone: the gateway was asked (paid);
    # judged against nothing, it would have been refused as older, leaving the invoice open
    assert held is not None and held[1].status is InvoiceStatus.PAID
