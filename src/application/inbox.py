"""The webhook inbox: gateway events are stored before they are acknowledged, then applied once.

Delivery is at least once and in no guaranteed order. Ingestion stores each event by its
gateway id (a duplicate is acknowledged and stored once); workers claim stored events under
a lease, apply each in the same transaction that marks it applied, retry failures with
back-off and park an event after `max_attempts`. A worker that dies mid-event loses its lease
and the event is claimed again: since marking applied commits with the state change, it is
applied exactly once.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from contextlib import AbstractContextManager
from datetime import datetime, timedelta
from typing import Any, Generic, Protocol, TypeVar, cast

import attrs

from responseiq_billing.application.ports import (
    Clock,
    EventDecoder,
    GatewayEventKind,
    InboxEvent,
    InboxRepository,
    InboxStats,
    InboxStatus,
    LeaseLost,
    PaymentGateway,
    UnitOfWork,
    UnitOfWorkFactory,
)
from responseiq_billing.application.use_cases import ApplyGatewayEvent, ApplyOutcome, now_from
from responseiq_billing.domain.errors import BillingError

V = TypeVar("V")  # a gateway's webhook signature verifier

# Deliveries written by one statement at most; more wait for the next one.
GROUP_LIMIT = 100
# A writer with nothing to write for this long ends; the next delivery starts another.
WRITER_IDLE_SECONDS = 2.0


class EventNotStored(Exception):
    """The statement that was to store this delivery failed: it is not durable (answer 503)."""


@attrs.frozen(kw_only=True)
class ReceiveGatewayEvent:
    """Ingestion: store the delivery durably, then the caller may acknowledge it.

    Group commit: deliveries go to a queue that one writer thread drains, writing what has
    arrived (up to `group_limit`) with one INSERT in one transaction, so a burst costs a round
    trip and a commit per group, not per event, and no request thread waits on the database.
    A delivery's future completes only once it is durable: True if stored, False if its id was
    stored before; if the group's write fails, every future in it fails with `EventNotStored`
    (nothing acknowledged, the gateway retries). Calling the object waits for its own future;
    `stored(...)` gives it to an async caller (the webhook routes) to await.
    """

    uow: UnitOfWorkFactory
    clock: Clock
    group_limit: int = GROUP_LIMIT
    _queue: list[tuple[InboxEvent, Future[bool]]] = attrs.field(factory=list, init=False)
    _arrived: threading.Condition = attrs.field(factory=threading.Condition, init=False)
    _writer: list[threading.Thread] = attrs.field(factory=list, init=False)

    def __call__(
        self,
        *,
        gateway: str,
        event_id: str,
        type: str,
        payload: str,
        event_created: datetime | None,
        object_ref: str | None,
    ) -> bool:
        return self.submit(
            gateway=gateway,
            event_id=event_id,
            type=type,
            payload=payload,
            event_created=event_created,
            object_ref=object_ref,
        ).result()

    async def stored(
        self,
        *,
        gateway: str,
        event_id: str,
        type: str,
        payload: str,
        event_created: datetime | None,
        object_ref: str | None,
    ) -> bool:
        """Await the delivery's durability without holding a thread (for async routes)."""
        future = self.submit(
            gateway=gateway,
            event_id=event_id,
            type=type,
            payload=payload,
            event_created=event_created,
            object_ref=object_ref,
        )
        return await asyncio.wrap_future(future)

    def submit(
        self,
        *,
        gateway: str,
        event_id: str,
        type: str,
        payload: str,
        event_created: datetime | None,
        object_ref: str | None,
    ) -> Future[bool]:
        now = self.clock.now()
        event = InboxEvent(
            event_id=event_id,
            gateway=gateway,
            type=type,
            payload=payload,
            received_at=now,
            event_created=event_created,
            object_ref=object_ref,
            next_attempt_at=now,
        )
        future: Future[bool] = Future()
        with self._arrived:
            self._queue.append((event, future))
            if not self._writer or not self._writer[0].is_alive():
                writer = threading.Thread(target=self._write, name="inbox-writer", daemon=True)
                self._writer[:] = [writer]
                writer.start()
            self._arrived.notify()
        return future

    def _write(self) -> None:
        while True:
            with self._arrived:
                if not self._queue:
                    self._arrived.wait(WRITER_IDLE_SECONDS)
                group = self._queue[: self.group_limit]
                del self._queue[: len(group)]
                if not group:
                    self._writer.clear()  # idle: the next delivery starts a writer
                    return
            try:
                with self.uow() as uow:
                    stored = uow.inbox.add_many([event for event, _ in group])
                    uow.commit()
            except BaseException as error:
                for _, future in group:
                    future.set_exception(EventNotStored(str(type(error).__name__)))
            else:
                for (_, future), new in zip(group, stored, strict=True):
                    future.set_result(new)


@attrs.frozen
class WebhookDeliveries(Generic[V]):
    """What a webhook route needs, as one dependency: the gateway's signature verifier (None
    when no signing secret is configured: the route answers 503) and the receiver that stores
    each delivery. One dependency, not two: Litestar resolves two or more of one level in an
    anyio task group, which cost a fifth of the route's own CPU per delivery."""

    verifier: V | None
    receive: ReceiveGatewayEvent


class InboxBatch(Protocol):
    """One transaction for a claimed batch, with a savepoint per event.

    `unit_of_work()` hands out units that share the batch's transaction (their `commit()`
    keeps their writes, the batch's `commit()` makes them durable). `tainted` turns true
    when, since the last `savepoint()`, a unit was rolled back, left by an exception or left
    with uncommitted writes: writes the event's own code meant to undo, so the event must be
    rolled back to its savepoint and applied on its own.
    """

    inbox: InboxRepository
    tainted: bool

    def unit_of_work(self) -> UnitOfWork: ...

    def savepoint(self) -> None: ...

    def rollback_to_savepoint(self) -> None: ...

    def commit(self) -> None: ...


InboxBatchFactory = Callable[[], AbstractContextManager[InboxBatch]]


_READS = frozenset({"get_checkout", "get_subscription", "list_subscriptions", "get_invoice"})
_SUBSCRIPTION_READS = (GatewayEventKind.SUBSCRIPTION_CHANGED, GatewayEventKind.SCHEDULE_CHANGED)
_DEFERRALS = 3  # gateway reads one event may ask for before it is applied on its own


class GatewayCallDeferred(Exception):
    """A batched event needed the gateway; the batch commits what it has before the call."""

    def __init__(self, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        super().__init__(name)
        self.name, self.args_, self.kwargs = name, args, kwargs

    @property
    def key(self) -> str:
        return repr((self.name, self.args_, sorted(self.kwargs.items())))

    @property
    def is_read(self) -> bool:
        return self.name in _READS


class _BatchGateway:
    """The gateway as a batch sees it: attributes read through; a read is answered from the
    reads made for this pass, any other call refused.

    A batch holds its transaction (and the row locks of what it wrote) until it commits; a
    call across the network inside it would hold them for as long as the gateway takes. So
    a read the batch lacks ends the transaction, is made with none open (as an event applied
    on its own makes it, just before its writing transaction), and the event runs again.
    """

    def __init__(self, gateway: PaymentGateway, reads: dict[str, Any]) -> None:
        self._gateway = gateway
        self._reads = reads

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._gateway, name)
        if not callable(value):
            return value

        def answer(*args: Any, **kwargs: Any) -> Any:
            call = GatewayCallDeferred(name, args, kwargs)
            if call.key in self._reads:
                return self._reads[call.key]  # read during this pass, with no transaction open
            raise call

        return answer


@attrs.frozen
class ProcessReport:
    claimed: int = 0
    applied: int = 0
    stale: int = 0
    failed: int = 0
    parked: int = 0


def _unmarked(_uow: UnitOfWork, _outcome: ApplyOutcome) -> None:
    """A batched event is marked applied with the rest of its batch, not in its own unit."""


@attrs.define
class _Tally:
    claimed: int = 0
    applied: int = 0
    stale: int = 0
    failed: int = 0
    parked: int = 0

    blocked: set[str] = attrs.field(factory=set)  # objects with an event failed this pass
    held_back: list[InboxEvent] = attrs.field(factory=list)

    def holds_back(self, item: InboxEvent) -> bool:
        """Per-object order: nothing of an object after its event that failed in this pass."""
        if item.object_ref is not None and item.object_ref in self.blocked:
            self.held_back.append(item)
            return True
        return False

    def fail(self, item: InboxEvent, park: bool) -> None:
        self.failed += 1
        self.parked += park
        if item.object_ref is not None and not park:
            self.blocked.add(item.object_ref)

    def count(self, outcome: ApplyOutcome) -> None:
        if outcome is ApplyOutcome.STALE:
            self.stale += 1
        else:
            self.applied += 1


def backoff(attempts: int, *, base: timedelta, cap: timedelta) -> timedelta:
    """Exponential back-off: base, 2 x base, 4 x base, ... capped."""
    delay: timedelta = base * (2 ** max(attempts - 1, 0))
    return min(delay, cap)


@attrs.frozen(kw_only=True)
class ProcessInbox:
    """One worker's pass over the inbox: claim due events and apply them, in their own
    transactions, or with `batch` in one transaction with a savepoint each."""

    uow: UnitOfWorkFactory
    gateway: PaymentGateway
    clock: Clock
    decoders: dict[str, EventDecoder]
    apply: ApplyGatewayEvent
    worker: str
    lease: timedelta = timedelta(seconds=60)
    max_attempts: int = 8
    backoff_base: timedelta = timedelta(seconds=5)
    backoff_cap: timedelta = timedelta(hours=1)
    batch: InboxBatchFactory | None = None  # None: each event in its own transactions

    def run_once(self, *, limit: int = 20) -> ProcessReport:
        now = self.clock.now()
        with self.uow() as uow:
            claimed = list(
                uow.inbox.claim(worker=self.worker, now=now, lease=self.lease, limit=limit)
            )
            uow.commit()
        tally = _Tally(claimed=len(claimed))
        if self.batch is None:
            for item in claimed:
                if not tally.holds_back(item):
                    self._process_alone(item, tally)
        else:
            self._process_batched(claimed, self.batch, tally)
        if tally.held_back:
            with self.uow() as uow:
                uow.inbox.release([e.event_id for e in tally.held_back], worker=self.worker)
                uow.commit()
        return ProcessReport(tally.claimed, tally.applied, tally.stale, tally.failed, tally.parked)

    def _process_alone(self, item: InboxEvent, tally: _Tally) -> None:
        """One event in its own transactions, marked applied in the one that applies it.

        If it fails, the later events of its object claimed in this pass are held back.
        """
        worker, event_id = self.worker, item.event_id

        def mark(uow: UnitOfWork, outcome: ApplyOutcome) -> None:
            uow.inbox.mark_applied(
                event_id, worker=worker, at=self.clock.now(), outcome=outcome.value
            )

        try:
            outcome = self._process(item, self.apply, self.uow, self.gateway, mark, {})
        except LeaseLost:
            return  # our lease expired and another worker claimed it: it owns the event now
        except Exception as error:
            park = item.attempts >= self.max_attempts
            self._fail(item, error, park=park)
            tally.fail(item, park)
            return
        tally.count(outcome)

    def _process_batched(
        self, claimed: list[InboxEvent], batch: InboxBatchFactory, tally: _Tally
    ) -> None:
        """The claimed events in one transaction, a savepoint each, marked applied together.

        An event that fails is rolled back to its savepoint and recorded as failed in the same
        transaction; the others stay. An event that needs the gateway (or whose code rolled
        back a unit of work) ends the batch's transaction before it: the events before it
        commit, it is applied on its own, and the rest go on in a new batch transaction, so
        the claim's per-object order holds.
        """
        pending = list(claimed)
        reads = self._read_ahead(claimed)
        deferrals: dict[str, int] = {}
        gateway = cast(PaymentGateway, _BatchGateway(self.gateway, reads))
        while pending:
            alone: InboxEvent | None = None
            read: GatewayCallDeferred | None = None
            outcomes: dict[str, ApplyOutcome] = {}
            failures: list[tuple[InboxEvent, bool]] = []
            newest: dict[str, datetime] = {}
            with batch() as tx:
                apply = attrs.evolve(self.apply, uow=tx.unit_of_work, gateway=gateway)
                while pending:
                    item = pending[0]
                    if tally.holds_back(item):
                        pending.pop(0)
                        continue
                    tx.savepoint()
                    try:
                        outcome = self._process(
                            item, apply, tx.unit_of_work, gateway, _unmarked, newest
                        )
                    except GatewayCallDeferred as call:
                        tx.rollback_to_savepoint()
                        deferrals[item.event_id] = deferrals.get(item.event_id, 0) + 1
                        if call.is_read and deferrals[item.event_id] <= _DEFERRALS:
                            read = call  # made below with no transaction open; then again
                        else:
                            alone = pending.pop(0)
                        break
                    except Exception as error:
                        tx.rollback_to_savepoint()
                        pending.pop(0)
                        park = item.attempts >= self.max_attempts
                        self._fail_within(tx.inbox, item, error, park=park)
                        failures.append((item, park))
                        if item.object_ref is not None and not park:
                            tally.blocked.add(item.object_ref)  # its later events wait
                        continue
                    if tx.tainted:
                        tx.rollback_to_savepoint()
                        alone = pending.pop(0)
                        break
                    pending.pop(0)
                    outcomes[item.event_id] = outcome
                    ref = item.object_ref
                    created = item.event_created
                    if ref is not None and created is not None:
                        newest[ref] = max(newest.get(ref, created), created)
                try:
                    tx.inbox.mark_applied_many(
                        {k: v.value for k, v in outcomes.items()},
                        worker=self.worker,
                        at=self.clock.now(),
                    )
                except LeaseLost:
                    # A lease of the batch expired and another worker may be applying that
                    # event: commit none of it, and stop the pass (later events could be of
                    # the same objects); the events are claimed again.
                    return
                tx.commit()
            for outcome in outcomes.values():
                tally.count(outcome)
            for failed, park in failures:
                tally.fail(failed, park)
            if alone is not None:
                self._process_alone(alone, tally)
                # It may have written at the gateway (use_customer_payment_method, cancel_now):
                # reads made before it may no longer be true.
                reads.clear()
            if read is not None:
                try:
                    reads[read.key] = getattr(self.gateway, read.name)(*read.args_, **read.kwargs)
                except Exception:
                    # The gateway failed: the event fails as it would on its own, with back-off.
                    self._process_alone(pending.pop(0), tally)

    def _read_ahead(self, claimed: Sequence[InboxEvent]) -> dict[str, Any]:
        """The gateway reads the batch will likely ask for, made before its transaction opens.

        Events of one object from the same second (their order is unknown, so applying the
        second re-reads the object) and schedule events (always re-read). A guess: a read
        missed here ends the batch's transaction and is made then; one made here in vain
        costs a gateway call.
        """
        decoded = []
        for item in claimed:
            decoder = self.decoders.get(item.gateway)
            try:
                decoded.append(decoder.decode(item.payload) if decoder else None)
            except Exception:
                decoded.append(None)  # fails again, and is recorded, when it is applied
        seconds: dict[tuple[str, datetime], int] = {}
        for event in decoded:
            if event is not None and event.object_ref is not None:
                key = (event.object_ref, event.created)
                seconds[key] = seconds.get(key, 0) + 1
        wanted: dict[str, GatewayCallDeferred] = {}
        for event in decoded:
            if event is None:
                continue
            tied = seconds.get((event.object_ref or "", event.created), 0) > 1
            if event.kind is GatewayEventKind.INVOICE_CHANGED and event.invoice is not None:
                if tied:
                    call = GatewayCallDeferred("get_invoice", (event.invoice.id,), {})
                    wanted[call.key] = call
            elif event.kind in _SUBSCRIPTION_READS and event.subscription_ref is not None:
                schedule = event.kind is GatewayEventKind.SCHEDULE_CHANGED
                if tied or schedule or event.subscription is None:
                    call = GatewayCallDeferred("get_subscription", (event.subscription_ref,), {})
                    wanted[call.key] = call
        reads: dict[str, Any] = {}
        for wanted_key, call in wanted.items():
            try:
                reads[wanted_key] = getattr(self.gateway, call.name)(*call.args_, **call.kwargs)
            except Exception:
                continue  # asked again when the event needs it, and fails there if it must
        return reads

    def _process(
        self,
        item: InboxEvent,
        apply: ApplyGatewayEvent,
        uow_factory: UnitOfWorkFactory,
        gateway: PaymentGateway,
        mark: Callable[[UnitOfWork, ApplyOutcome], None],
        newest_in_batch: dict[str, datetime],
    ) -> ApplyOutcome:
        decoder = self.decoders.get(item.gateway)
        if decoder is None:
            raise ValueError(f"no decoder for gateway {item.gateway!r}")
        event = decoder.decode(item.payload)
        ref = event.object_ref
        if ref is not None and event.kind is GatewayEventKind.INVOICE_CHANGED:
            with uow_factory() as uow:
                newest = uow.inbox.newest_applied(ref, excluding=item.event_id)
            earlier = newest_in_batch.get(ref)  # applied in this batch, not yet marked
            if earlier is not None and (newest is None or earlier > newest):
                newest = earlier
            if newest is not None and event.created < newest:
                return apply.skip_stale(event, within=mark)
            if newest is not None and event.created == newest and event.invoice is not None:
                # Same second as the newest applied event: their order is unknown, so ask.
                event = attrs.evolve(event, invoice=gateway.get_invoice(event.invoice.id))
        return apply(event, within=mark)

    def _fail(self, item: InboxEvent, error: Exception, *, park: bool) -> None:
        with self.uow() as uow:
            self._fail_within(uow.inbox, item, error, park=park)
            uow.commit()

    def _fail_within(
        self, inbox: InboxRepository, item: InboxEvent, error: Exception, *, park: bool
    ) -> None:
        now = self.clock.now()
        message = error.code if isinstance(error, BillingError) else type(error).__name__
        detail = f"{message}: {error}"[:500]
        retry_at = (
            None
            if park
            else now + backoff(item.attempts, base=self.backoff_base, cap=self.backoff_cap)
        )
        with contextlib.suppress(LeaseLost):  # another worker owns the event now
            inbox.mark_failed(
                item.event_id, worker=self.worker, at=now, error=detail, retry_at=retry_at
            )


@attrs.frozen(kw_only=True)
class InboxAdmin:
    """What `billing inbox` and `/metrics` show and do."""

    uow: UnitOfWorkFactory
    clock: Clock

    def stats(self) -> InboxStats:
        with self.uow() as uow:
            return uow.inbox.stats(self.clock.now())

    def list(self, status: InboxStatus | None = None, *, limit: int = 50) -> Sequence[InboxEvent]:
        with self.uow() as uow:
            return uow.inbox.list(status, limit=limit)

    def retry(self, event_id: str) -> bool:
        with self.uow() as uow:
            done = uow.inbox.requeue(event_id, at=now_from(self.clock))
            uow.commit()
        return done

    def park(self, event_id: str, reason: str = "parked by an operator") -> bool:
        with self.uow() as uow:
            done = uow.inbox.park(event_id, at=now_from(self.clock), reason=reason)
            uow.commit()
        return done
