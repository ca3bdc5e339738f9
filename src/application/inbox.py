"""The webhook inbox: gateway events are stored before they are acknowledged, then applied once.

Delivery is at least once and in no guaranteed order. Ingestion stores each event by its
gateway id (a duplicate is acknowledged and stored once); workers claim stored events under
a lease, apply each in the same transaction that marks it applied, retry failures with
back-off and park an event after `max_attempts`. A worker that dies mid-event loses its lease
and the event is claimed again: since marking applied commits with the state change, it is
applied exactly once.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

import attrs

from application.ports import (
    Clock,
    EventDecoder,
    GatewayEventKind,
    InboxEvent,
    InboxStats,
    InboxStatus,
    LeaseLost,
    PaymentGateway,
    UnitOfWork,
    UnitOfWorkFactory,
)
from application.use_cases import ApplyGatewayEvent, ApplyOutcome, now_from
from domain.errors import BillingError


@attrs.frozen(kw_only=True)
class ReceiveGatewayEvent:
    """Ingestion: store the delivery durably, then the caller may acknowledge it."""

    uow: UnitOfWorkFactory
    clock: Clock

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
        event = InboxEvent(
            event_id=event_id,
            gateway=gateway,
            type=type,
            payload=payload,
            received_at=self.clock.now(),
            event_created=event_created,
            object_ref=object_ref,
            next_attempt_at=self.clock.now(),
        )
        with self.uow() as uow:
            stored = uow.inbox.add(event)
            uow.commit()
        return stored


@attrs.frozen
class ProcessReport:
    claimed: int = 0
    applied: int = 0
    stale: int = 0
    failed: int = 0
    parked: int = 0


def backoff(attempts: int, *, base: timedelta, cap: timedelta) -> timedelta:
    """Exponential back-off: base, 2 x base, 4 x base, ... capped."""
    delay: timedelta = base * (2 ** max(attempts - 1, 0))
    return min(delay, cap)


@attrs.frozen(kw_only=True)
class ProcessInbox:
    """One worker's pass over the inbox: claim due events and apply each in its own transaction."""

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

    def run_once(self, *, limit: int = 20) -> ProcessReport:
        now = self.clock.now()
        with self.uow() as uow:
            claimed = list(
                uow.inbox.claim(worker=self.worker, now=now, lease=self.lease, limit=limit)
            )
            uow.commit()
        applied = stale = failed = parked = 0
        for item in claimed:
            try:
                outcome = self._process(item)
            except LeaseLost:
                continue  # our lease expired and another worker claimed it: it owns the event now
            except Exception as error:
                park = item.attempts >= self.max_attempts
                self._fail(item, error, park=park)
                failed += 1
                parked += park
                continue
            if outcome is ApplyOutcome.STALE:
                stale += 1
            else:
                applied += 1
        return ProcessReport(len(claimed), applied, stale, failed, parked)

    def _process(self, item: InboxEvent) -> ApplyOutcome:
        decoder = self.decoders.get(item.gateway)
        if decoder is None:
            raise ValueError(f"no decoder for gateway {item.gateway!r}")
        event = decoder.decode(item.payload)
        worker, event_id = self.worker, item.event_id

        def mark(uow: UnitOfWork, outcome: ApplyOutcome) -> None:
            uow.inbox.mark_applied(
                event_id, worker=worker, at=self.clock.now(), outcome=outcome.value
            )

        ref = event.object_ref
        if ref is not None and event.kind is GatewayEventKind.INVOICE_CHANGED:
            with self.uow() as uow:
                newest = uow.inbox.newest_applied(ref, excluding=event_id)
            if newest is not None and event.created < newest:
                return self.apply.skip_stale(event, within=mark)
            if newest is not None and event.created == newest and event.invoice is not None:
                # Same second as the newest applied event: their order is unknown, so ask.
                event = attrs.evolve(event, invoice=self.gateway.get_invoice(event.invoice.id))
        return self.apply(event, within=mark)

    def _fail(self, item: InboxEvent, error: Exception, *, park: bool) -> None:
        now = self.clock.now()
        message = error.code if isinstance(error, BillingError) else type(error).__name__
        detail = f"{message}: {error}"[:500]
        retry_at = (
            None
            if park
            else now + backoff(item.attempts, base=self.backoff_base, cap=self.backoff_cap)
        )
        try:
            with self.uow() as uow:
                uow.inbox.mark_failed(
                    item.event_id, worker=self.worker, at=now, error=detail, retry_at=retry_at
                )
                uow.commit()
        except LeaseLost:
            pass  # another worker owns the event now and will record its own outcome


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
