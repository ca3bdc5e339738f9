"""The webhook inbox in SQL, keeping the promises of `application.ports.InboxRepository`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from responseiq_billing.adapters.sql.tables import webhook_inbox
from responseiq_billing.application.ports import (
    InboxBacklog,
    InboxEvent,
    InboxStats,
    InboxStatus,
    LeaseLost,
)

_PENDING = sa.and_(webhook_inbox.c.applied_at.is_(None), webhook_inbox.c.parked_at.is_(None))
_PARKED = sa.and_(webhook_inbox.c.applied_at.is_(None), webhook_inbox.c.parked_at.is_not(None))
_APPLIED = webhook_inbox.c.applied_at.is_not(None)
_STATUS = {
    InboxStatus.PENDING: _PENDING,
    InboxStatus.PARKED: _PARKED,
    InboxStatus.APPLIED: _APPLIED,
}
_UNLOCKED = {"locked_by": None, "locked_until": None}


_MARKED = (
    sa.func.unnest(
        sa.bindparam("ids", type_=postgresql.ARRAY(sa.String)),
        sa.bindparam("outcomes", type_=postgresql.ARRAY(sa.String)),
    )
    .table_valued("event_id", "outcome")
    .render_derived(name="marked")
)
# PostgreSQL: a batch marked applied, each event with its outcome (`mark_applied_many`)
_MARK_APPLIED = (
    webhook_inbox.update()
    .where(
        webhook_inbox.c.event_id == _MARKED.c.event_id,
        webhook_inbox.c.locked_by == sa.bindparam("worker"),
        _PENDING,
    )
    .values(applied_at=sa.bindparam("at"), outcome=_MARKED.c.outcome, **_UNLOCKED)
)


def _sort_key(table: sa.FromClause) -> sa.Tuple:
    """The order events are applied in: gateway time, then arrival, then id."""
    c = table.c
    return sa.tuple_(sa.func.coalesce(c.event_created, c.received_at), c.received_at, c.event_id)


def inbox_event_to_row(event: InboxEvent) -> dict[str, Any]:
    return {
        "event_id": event.event_id,
        "gateway": event.gateway,
        "type": event.type,
        "payload": event.payload,
        "received_at": event.received_at,
        "event_created": event.event_created,
        "object_ref": event.object_ref,
        "attempts": event.attempts,
        "next_attempt_at": event.next_attempt_at,
        "applied_at": event.applied_at,
        "parked_at": event.parked_at,
        "outcome": event.outcome,
        "last_error": event.last_error,
        "locked_by": event.locked_by,
        "locked_until": event.locked_until,
    }


def inbox_event_from_row(row: sa.RowMapping) -> InboxEvent:
    return InboxEvent(
        event_id=row["event_id"],
        gateway=row["gateway"],
        type=row["type"],
        payload=row["payload"],
        received_at=row["received_at"],
        event_created=row["event_created"],
        object_ref=row["object_ref"],
        attempts=row["attempts"],
        next_attempt_at=row["next_attempt_at"],
        applied_at=row["applied_at"],
        parked_at=row["parked_at"],
        outcome=row["outcome"],
        last_error=row["last_error"],
        locked_by=row["locked_by"],
        locked_until=row["locked_until"],
    )


class SqlInbox:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def add(self, event: InboxEvent) -> bool:
        insert = postgresql.insert if self._conn.dialect.name == "postgresql" else sqlite.insert
        stmt = (
            insert(webhook_inbox)
            .values(**inbox_event_to_row(event))
            .on_conflict_do_nothing(index_elements=[webhook_inbox.c.event_id])
            .returning(webhook_inbox.c.id)
        )
        # rowcount is unreliable with RETURNING (PostgreSQL); a returned id means stored.
        return self._conn.execute(stmt).first() is not None

    def add_many(self, events: Sequence[InboxEvent]) -> list[bool]:
        if not events:
            return []
        insert = postgresql.insert if self._conn.dialect.name == "postgresql" else sqlite.insert
        stmt = (
            insert(webhook_inbox)
            .on_conflict_do_nothing(index_elements=[webhook_inbox.c.event_id])
            .returning(webhook_inbox.c.event_id)
        )
        # executemany: one compiled statement (cached), sent as multi-row VALUES batches by
        # SQLAlchemy's "insertmanyvalues"; a statement built with .values(rows) would be
        # compiled anew for every group size.
        rows = [inbox_event_to_row(event) for event in events]
        new = set(self._conn.execute(stmt, rows).scalars())
        stored = []
        for event in events:  # an id twice in `events` is stored once: its first is the one
            stored.append(event.event_id in new)
            new.discard(event.event_id)
        return stored

    def claim(
        self, *, worker: str, now: datetime, lease: timedelta, limit: int
    ) -> Sequence[InboxEvent]:
        due = (
            sa.select(webhook_inbox.c.id, webhook_inbox.c.object_ref)
            .where(
                _PENDING,
                sa.or_(
                    webhook_inbox.c.next_attempt_at.is_(None),
                    webhook_inbox.c.next_attempt_at <= now,
                ),
                sa.or_(webhook_inbox.c.locked_until.is_(None), webhook_inbox.c.locked_until <= now),
            )
            .order_by(*_sort_key(webhook_inbox).clauses)
            .limit(limit)
        )
        if self._conn.dialect.name == "postgresql":
            # Two workers never wait on, or take, the same rows.
            due = due.with_for_update(skip_locked=True)
        picked = self._conn.execute(due).all()
        if not picked:
            return []
        ids = [row.id for row in picked]
        refs = sorted({row.object_ref for row in picked if row.object_ref is not None})
        # Per-object order: an event is leased only if every older pending event of its
        # object is leased with it (one skipped as locked by another worker's claim counts as
        # pending, so that worker's newer event never overtakes it). Parked events do not hold
        # their object back. The rows left out stay unleased and are claimed in a later pass.
        older = webhook_inbox.alias("older")
        blocked = sa.exists().where(
            older.c.object_ref.in_(refs),  # the index on object_ref, whatever the statistics
            older.c.object_ref == webhook_inbox.c.object_ref,
            older.c.applied_at.is_(None),
            older.c.parked_at.is_(None),
            _sort_key(older) < _sort_key(webhook_inbox),
            older.c.id.not_in(ids),
        )
        rows = (
            self._conn.execute(
                webhook_inbox.update()
                .where(webhook_inbox.c.id.in_(ids), ~blocked)
                .values(
                    locked_by=worker,
                    locked_until=now + lease,
                    attempts=webhook_inbox.c.attempts + 1,
                )
                .returning(*webhook_inbox.c)
            )
            .mappings()
            .all()
        )
        by_id = {row["id"]: inbox_event_from_row(row) for row in rows}
        return [by_id[i] for i in ids if i in by_id]

    def mark_applied_many(self, outcomes: Mapping[str, str], *, worker: str, at: datetime) -> None:
        """Mark a batch applied in one statement; `LeaseLost` unless every lease is still held."""
        if not outcomes:
            return
        if self._conn.dialect.name == "postgresql":
            # One statement built once, the batch bound as two arrays: a CASE of a hundred
            # values was compiled anew for every batch size (about a millisecond each).
            params = {"ids": list(outcomes), "outcomes": list(outcomes.values())}
            result = self._conn.execute(_MARK_APPLIED, {**params, "worker": worker, "at": at})
        else:
            outcome = sa.case(outcomes, value=webhook_inbox.c.event_id)
            result = self._conn.execute(
                webhook_inbox.update()
                .where(
                    webhook_inbox.c.event_id.in_(list(outcomes)),
                    webhook_inbox.c.locked_by == worker,
                    _PENDING,
                )
                .values(applied_at=at, outcome=outcome, **_UNLOCKED)
            )
        if result.rowcount != len(outcomes):
            raise LeaseLost("This worker no longer holds every lease of the batch.")

    def _update_held(self, event_id: str, worker: str, **values: Any) -> None:
        result = self._conn.execute(
            webhook_inbox.update()
            .where(
                webhook_inbox.c.event_id == event_id, webhook_inbox.c.locked_by == worker, _PENDING
            )
            .values(**values)
        )
        if result.rowcount != 1:
            raise LeaseLost("This worker no longer holds the event's lease.")

    def mark_applied(self, event_id: str, *, worker: str, at: datetime, outcome: str) -> None:
        self._update_held(event_id, worker, applied_at=at, outcome=outcome, **_UNLOCKED)

    def mark_failed(
        self, event_id: str, *, worker: str, at: datetime, error: str, retry_at: datetime | None
    ) -> None:
        self._update_held(
            event_id,
            worker,
            last_error=error,
            next_attempt_at=retry_at,
            parked_at=at if retry_at is None else None,
            **_UNLOCKED,
        )

    def release(self, event_ids: Sequence[str], *, worker: str) -> None:
        if not event_ids:
            return
        self._conn.execute(
            webhook_inbox.update()
            .where(
                webhook_inbox.c.event_id.in_(list(event_ids)),
                webhook_inbox.c.locked_by == worker,
                webhook_inbox.c.applied_at.is_(None),
            )
            .values(attempts=webhook_inbox.c.attempts - 1, **_UNLOCKED)
        )

    def newest_applied(self, object_ref: str, *, excluding: str) -> datetime | None:
        newest: datetime | None = self._conn.scalar(
            sa.select(sa.func.max(webhook_inbox.c.event_created)).where(
                webhook_inbox.c.object_ref == object_ref,
                webhook_inbox.c.event_id != excluding,
                _APPLIED,
            )
        )
        return newest

    def newest_applied_many(self, object_refs: Sequence[str]) -> dict[str, datetime]:
        if not object_refs:
            return {}
        t = webhook_inbox
        rows = self._conn.execute(
            sa.select(t.c.object_ref, sa.func.max(t.c.event_created))
            .where(t.c.object_ref.in_(list(object_refs)), _APPLIED)
            .group_by(t.c.object_ref)
        )
        return {ref: newest for ref, newest in rows if newest is not None}

    def get(self, event_id: str) -> InboxEvent | None:
        row = (
            self._conn.execute(sa.select(webhook_inbox).where(webhook_inbox.c.event_id == event_id))
            .mappings()
            .first()
        )
        return inbox_event_from_row(row) if row is not None else None

    def list(self, status: InboxStatus | None, *, limit: int) -> Sequence[InboxEvent]:
        query = sa.select(webhook_inbox)
        if status is not None:
            query = query.where(_STATUS[status])
        rows = self._conn.execute(
            query.order_by(
                webhook_inbox.c.received_at.desc(), webhook_inbox.c.event_id.desc()
            ).limit(limit)
        ).mappings()
        return [inbox_event_from_row(row) for row in rows]

    def requeue(self, event_id: str, *, at: datetime) -> bool:
        result = self._conn.execute(
            webhook_inbox.update()
            .where(webhook_inbox.c.event_id == event_id, webhook_inbox.c.applied_at.is_(None))
            .values(parked_at=None, next_attempt_at=at, **_UNLOCKED)
        )
        return result.rowcount == 1

    def park(self, event_id: str, *, at: datetime, reason: str) -> bool:
        result = self._conn.execute(
            webhook_inbox.update()
            .where(webhook_inbox.c.event_id == event_id, webhook_inbox.c.applied_at.is_(None))
            .values(parked_at=at, last_error=reason, **_UNLOCKED)
        )
        return result.rowcount == 1

    def backlog(self, now: datetime) -> InboxBacklog:
        # Only unapplied rows, found through ix_webhook_inbox_due (applied_at leads it).
        t = webhook_inbox
        waiting = t.c.parked_at.is_(None)
        row = self._conn.execute(
            sa.select(
                sa.func.count().filter(waiting),
                sa.func.min(t.c.received_at).filter(waiting),
                sa.func.count().filter(t.c.parked_at.is_not(None)),
            ).where(t.c.applied_at.is_(None))
        ).one()
        pending, oldest, parked = row
        return InboxBacklog(
            pending=pending,
            oldest_pending_age_seconds=(now - oldest).total_seconds() if oldest else None,
            parked=parked,
        )

    def stats(self, now: datetime) -> InboxStats:
        row = self._conn.execute(
            sa.select(
                sa.func.count().filter(_PENDING),
                sa.func.min(webhook_inbox.c.received_at).filter(_PENDING),
                sa.func.count().filter(_PARKED),
                sa.func.count().filter(_APPLIED),
            )
        ).one()
        pending, oldest, parked, applied = row
        return InboxStats(
            pending=pending,
            oldest_pending_age_seconds=(now - oldest).total_seconds() if oldest else None,
            parked=parked,
            applied=applied,
        )
