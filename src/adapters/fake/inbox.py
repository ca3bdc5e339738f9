"""The in-memory webhook inbox: the reference behaviour of `application.ports.InboxRepository`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta

import attrs

from responseiq_billing.application.ports import (
    InboxBacklog,
    InboxEvent,
    InboxStats,
    InboxStatus,
    LeaseLost,
)


def _due(event: InboxEvent, now: datetime) -> bool:
    if event.status is not InboxStatus.PENDING:
        return False
    if event.next_attempt_at is not None and event.next_attempt_at > now:
        return False
    return event.locked_until is None or event.locked_until <= now


def _order(event: InboxEvent) -> tuple[datetime, datetime, str]:
    return (event.event_created or event.received_at, event.received_at, event.event_id)


class InMemoryInbox:
    """Works on the unit of work's copy of the `events` dict (event id -> stored event)."""

    def __init__(self, events: dict[str, InboxEvent]) -> None:
        self._events = events

    def add(self, event: InboxEvent) -> bool:
        if event.event_id in self._events:
            return False
        self._events[event.event_id] = event
        return True

    def add_many(self, events: Sequence[InboxEvent]) -> list[bool]:
        return [self.add(event) for event in events]

    def claim(
        self, *, worker: str, now: datetime, lease: timedelta, limit: int
    ) -> Sequence[InboxEvent]:
        due = sorted((e for e in self._events.values() if _due(e, now)), key=_order)[:limit]
        taken = {e.event_id for e in due}
        # Per-object order: every older pending event of the object must be taken with it.
        holding = [
            e
            for e in self._events.values()
            if e.status is InboxStatus.PENDING
            and e.object_ref is not None
            and e.event_id not in taken
        ]
        claimed = []
        for event in due:
            if event.object_ref is not None and any(
                e.object_ref == event.object_ref and _order(e) < _order(event) for e in holding
            ):
                continue
            leased = attrs.evolve(
                event, locked_by=worker, locked_until=now + lease, attempts=event.attempts + 1
            )
            self._events[event.event_id] = leased
            claimed.append(leased)
        return claimed

    def _held(self, event_id: str, worker: str) -> InboxEvent:
        event = self._events.get(event_id)
        if event is None or event.locked_by != worker or event.status is not InboxStatus.PENDING:
            raise LeaseLost("This worker no longer holds the event's lease.")
        return event

    def mark_applied(self, event_id: str, *, worker: str, at: datetime, outcome: str) -> None:
        event = self._held(event_id, worker)
        self._events[event_id] = attrs.evolve(
            event, applied_at=at, outcome=outcome, locked_by=None, locked_until=None
        )

    def mark_applied_many(self, outcomes: Mapping[str, str], *, worker: str, at: datetime) -> None:
        held = [self._held(event_id, worker) for event_id in outcomes]
        for event in held:
            self._events[event.event_id] = attrs.evolve(
                event,
                applied_at=at,
                outcome=outcomes[event.event_id],
                locked_by=None,
                locked_until=None,
            )

    def release(self, event_ids: Sequence[str], *, worker: str) -> None:
        for event_id in event_ids:
            event = self._events.get(event_id)
            if event is not None and event.locked_by == worker and event.applied_at is None:
                self._events[event_id] = attrs.evolve(
                    event, attempts=event.attempts - 1, locked_by=None, locked_until=None
                )

    def mark_failed(
        self, event_id: str, *, worker: str, at: datetime, error: str, retry_at: datetime | None
    ) -> None:
        event = self._held(event_id, worker)
        self._events[event_id] = attrs.evolve(
            event,
            last_error=error,
            next_attempt_at=retry_at,
            parked_at=at if retry_at is None else None,
            locked_by=None,
            locked_until=None,
        )

    def newest_applied(self, object_ref: str, *, excluding: str) -> datetime | None:
        times = [
            e.event_created
            for e in self._events.values()
            if e.object_ref == object_ref
            and e.event_id != excluding
            and e.applied_at is not None
            and e.event_created is not None
        ]
        return max(times, default=None)

    def newest_applied_many(self, object_refs: Sequence[str]) -> dict[str, datetime]:
        wanted = set(object_refs)
        newest: dict[str, datetime] = {}
        for e in self._events.values():
            ref, created = e.object_ref, e.event_created
            if ref in wanted and e.applied_at is not None and created is not None:
                newest[ref] = max(newest.get(ref, created), created)
        return newest

    def get(self, event_id: str) -> InboxEvent | None:
        return self._events.get(event_id)

    def list(self, status: InboxStatus | None, *, limit: int) -> Sequence[InboxEvent]:
        chosen = [e for e in self._events.values() if status is None or e.status is status]
        chosen.sort(key=lambda e: (e.received_at, e.event_id), reverse=True)
        return chosen[:limit]

    def requeue(self, event_id: str, *, at: datetime) -> bool:
        event = self._events.get(event_id)
        if event is None or event.applied_at is not None:
            return False
        self._events[event_id] = attrs.evolve(
            event, parked_at=None, next_attempt_at=at, locked_by=None, locked_until=None
        )
        return True

    def park(self, event_id: str, *, at: datetime, reason: str) -> bool:
        event = self._events.get(event_id)
        if event is None or event.applied_at is not None:
            return False
        self._events[event_id] = attrs.evolve(
            event, parked_at=at, last_error=reason, locked_by=None, locked_until=None
        )
        return True

    def backlog(self, now: datetime) -> InboxBacklog:
        held = self.stats(now)
        return InboxBacklog(
            pending=held.pending,
            oldest_pending_age_seconds=held.oldest_pending_age_seconds,
            parked=held.parked,
        )

    def stats(self, now: datetime) -> InboxStats:
        pending = [e for e in self._events.values() if e.status is InboxStatus.PENDING]
        oldest = min((e.received_at for e in pending), default=None)
        return InboxStats(
            pending=len(pending),
            oldest_pending_age_seconds=(now - oldest).total_seconds() if oldest else None,
            parked=sum(e.status is InboxStatus.PARKED for e in self._events.values()),
            applied=sum(e.status is InboxStatus.APPLIED for e in self._events.values()),
        )
