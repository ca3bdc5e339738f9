"""The webhook inbox: gateway events are stored before they are acknowledged, then applied once.

Delivery is at least once and in no guaranteed order. Ingestion stores each event by its
gateway id (a duplicate is acknowledged and stored once); workers claim stored events under
a lease, apply each in the same transaction that marks it applied, retry failures with
back-off and park an event after `max_attempts`. A worker that dies mid-event loses its lease
and the event is claimed again: since marking applied commits with the state change, it is
applied exactly once.

Ingestion lives in `application.inbox_ingest`, the batch transaction's port in
`application.inbox_batch`; their names are importable from here as well.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import cast

import attrs

from responseiq_billing.application.inbox_batch import (
    BatchGateway,
    GatewayCallDeferred,
    InboxBatch,
    InboxBatchFactory,
    forget_reads_of,
    gateway_read,
    read_ahead,
)
from responseiq_billing.application.inbox_ingest import (
    GROUP_LIMIT,
    WRITER_IDLE_SECONDS,
    EventNotStored,
    ReceiveGatewayEvent,
    WebhookDeliveries,
)
from responseiq_billing.application.ports import (
    Clock,
    EventDecoder,
    GatewayEvent,
    GatewayEventKind,
    InboxBacklog,
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

__all__ = [
    "GROUP_LIMIT",
    "WRITER_IDLE_SECONDS",
    "EventNotStored",
    "GatewayCallDeferred",
    "InboxAdmin",
    "InboxBatch",
    "InboxBatchFactory",
    "ProcessInbox",
    "ProcessReport",
    "ReceiveGatewayEvent",
    "WebhookDeliveries",
    "backoff",
]

_DEFERRALS = 3  # gateway reads one event may ask for before it is applied on its own


@attrs.frozen
class ProcessReport:
    claimed: int = 0
    applied: int = 0
    stale: int = 0
    failed: int = 0
    parked: int = 0


def _unmarked(_uow: UnitOfWork, _outcome: ApplyOutcome) -> None:
    """A batched event is marked applied with the rest of its batch, not in its own unit."""


def _about_invoice(event: GatewayEvent | None) -> bool:
    return event is not None and event.kind is GatewayEventKind.INVOICE_CHANGED


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

    def waits(self, item: InboxEvent, held_elsewhere: bool) -> bool:
        """Another batch holds the event's customer: it goes back to the inbox uncounted, and
        so do the later events of its object."""
        if held_elsewhere:
            self.held_back.append(item)
            if item.object_ref is not None:
                self.blocked.add(item.object_ref)
            return True
        return self.holds_back(item)

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
        """The claimed events in one transaction, marked applied together.

        A transaction first runs its events unguarded, with no savepoint (a round trip each):
        if one fails, needs the gateway or taints, the whole transaction is rolled back and
        the same events run again guarded, each after a savepoint. There, an event that fails
        is rolled back to its savepoint and recorded as failed in the same transaction; the
        others stay. An event that needs the gateway (or whose code rolled back a unit of
        work) ends the batch's transaction before it: the events before it commit, it is
        applied on its own, and the rest go on in a new batch transaction (unguarded again),
        so the claim's per-object order holds.
        """
        pending = list(claimed)
        decoded = self._decode(claimed)
        events = dict(zip((item.event_id for item in claimed), decoded, strict=True))
        customers = {
            event_id: event.customer_ref
            for event_id, event in events.items()
            if event is not None and event.customer_ref is not None
        }
        # What invoice events are judged against, read once for the claim (no other worker
        # applies events of these objects while this claim holds them), then kept up to date
        invoices = {e.object_ref for e in claimed if _about_invoice(events[e.event_id])}
        applied_before = self._newest_applied(invoices)
        reads = read_ahead(self.gateway, self.uow, decoded, applied_before)
        deferrals: dict[str, int] = {}

        def run_alone(item: InboxEvent) -> None:
            # What it applied is what the claim's later events of its invoice are judged against
            self._process_alone(item, tally)
            applied_before.update(self._newest_applied({item.object_ref} & invoices))

        batch_gateway = BatchGateway(self.gateway, reads)
        gateway = cast(PaymentGateway, batch_gateway)
        guarded = False
        while pending:
            alone: InboxEvent | None = None
            read: GatewayCallDeferred | None = None
            outcomes: dict[str, ApplyOutcome] = {}
            failures: list[tuple[InboxEvent, bool]] = []
            newest: dict[str, datetime] = {}
            undo = False
            with batch() as tx:
                # Only customers no other batch holds: the rest go back to the inbox, their
                # objects' later events with them (per-object order), and are claimed again.
                held = tx.hold(
                    sorted({customers[e.event_id] for e in pending if e.event_id in customers})
                )
                if held:
                    pending = [
                        e for e in pending if not tally.waits(e, customers.get(e.event_id) in held)
                    ]
                # where a retry starts
                start, held_back, reads_before = list(pending), len(tally.held_back), dict(reads)
                apply = attrs.evolve(self.apply, uow=tx.unit_of_work, gateway=gateway)
                batch_gateway.held_in(tx.unit_of_work)
                while pending:
                    item = pending[0]
                    if tally.holds_back(item):
                        pending.pop(0)
                        continue
                    if guarded:
                        tx.savepoint()
                    else:
                        tx.next_event()
                    event = events[item.event_id]  # an invoice's never writes our copy
                    batch_gateway.next_event(
                        None if event is None or _about_invoice(event) else event.subscription_ref
                    )
                    try:
                        outcome = self._process(
                            item,
                            apply,
                            tx.unit_of_work,
                            gateway,
                            _unmarked,
                            newest,
                            event,
                            applied_before,
                        )
                    except GatewayCallDeferred as call:
                        if not guarded and tx.wrote:
                            undo = True
                            break
                        if guarded:
                            tx.rollback_to_savepoint()
                        else:
                            tx.next_event()  # it wrote nothing: nothing to undo
                        deferrals[item.event_id] = deferrals.get(item.event_id, 0) + 1
                        if call.is_read and deferrals[item.event_id] <= _DEFERRALS:
                            read = call  # made below with no transaction open; then again
                        else:
                            alone = pending.pop(0)
                        break
                    except Exception as error:
                        if not guarded:
                            undo = True
                            break
                        tx.rollback_to_savepoint()
                        pending.pop(0)
                        park = item.attempts >= self.max_attempts
                        self._fail_within(tx.inbox, item, error, park=park)
                        failures.append((item, park))
                        if item.object_ref is not None and not park:
                            tally.blocked.add(item.object_ref)  # its later events wait
                        continue
                    if tx.tainted:
                        if not guarded:
                            undo = True
                            break
                        tx.rollback_to_savepoint()
                        alone = pending.pop(0)
                        break
                    pending.pop(0)
                    outcomes[item.event_id] = outcome
                    if tx.wrote:
                        batch_gateway.wrote(tx.versions_written)
                    ref = item.object_ref
                    created = item.event_created
                    if ref is not None and created is not None:
                        newest[ref] = max(newest.get(ref, created), created)
                if undo:  # an unguarded event went wrong: undo them all
                    pending, guarded = start, True
                    del tally.held_back[held_back:]
                    reads.clear()
                    reads.update(reads_before)
                    continue  # the transaction is rolled back as the block ends
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
            guarded = False
            for ref, created in newest.items():
                applied_before[ref] = max(applied_before.get(ref, created), created)
            for outcome in outcomes.values():
                tally.count(outcome)
            for failed, park in failures:
                tally.fail(failed, park)
            if alone is not None:
                run_alone(alone)
                # It may have written at the gateway (use_customer_payment_method, cancel_now):
                # reads made before it of its customer's objects may no longer be true.
                forget_reads_of(reads, customers.get(alone.event_id))
            if read is not None:
                try:
                    reads[read.key] = gateway_read(self.gateway, self.uow, read)
                except Exception:
                    # The gateway failed: the event runs on its own (and fails there as it
                    # would alone, with back-off, if the gateway fails again).
                    run_alone(pending.pop(0))

    def _newest_applied(self, refs: set[str | None]) -> dict[str, datetime]:
        wanted = sorted(ref for ref in refs if ref is not None)
        if not wanted:
            return {}
        with self.uow() as uow:
            return dict(uow.inbox.newest_applied_many(wanted))

    def _decode(self, claimed: Sequence[InboxEvent]) -> list[GatewayEvent | None]:
        decoded: list[GatewayEvent | None] = []
        for item in claimed:
            decoder = self.decoders.get(item.gateway)
            try:
                decoded.append(decoder.decode(item.payload) if decoder else None)
            except Exception:
                decoded.append(None)  # fails again, and is recorded, when it is applied
        return decoded

    def _process(
        self,
        item: InboxEvent,
        apply: ApplyGatewayEvent,
        uow_factory: UnitOfWorkFactory,
        gateway: PaymentGateway,
        mark: Callable[[UnitOfWork, ApplyOutcome], None],
        newest_in_batch: dict[str, datetime],
        decoded: GatewayEvent | None = None,
        applied_before: dict[str, datetime] | None = None,
    ) -> ApplyOutcome:
        event = decoded
        if event is None:  # not decoded before the batch (or it failed: it fails here again)
            decoder = self.decoders.get(item.gateway)
            if decoder is None:
                raise ValueError(f"no decoder for gateway {item.gateway!r}")
            event = decoder.decode(item.payload)
        ref = event.object_ref
        if ref is not None and event.kind is GatewayEventKind.INVOICE_CHANGED:
            if applied_before is not None:  # read for the whole batch
                newest = applied_before.get(ref)
            else:
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

    def backlog(self) -> InboxBacklog:
        with self.uow() as uow:
            return uow.inbox.backlog(self.clock.now())

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
