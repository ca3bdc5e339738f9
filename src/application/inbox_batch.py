"""Applying claimed inbox events in one transaction: the batch's port, and the gateway as a
batch sees it (reads made before the transaction opened; any other call ends the batch)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any, Protocol

import attrs

from responseiq_billing.application.ports import (
    GatewayEvent,
    GatewayEventKind,
    InboxRepository,
    PaymentGateway,
    UnitOfWork,
    UnitOfWorkFactory,
)


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

    @property
    def wrote(self) -> bool:
        """Whether the current event has written anything yet (audit entries included)."""
        ...

    @property
    def versions_written(self) -> Mapping[str, int]:
        """Our copies of subscriptions the current event wrote (by gateway ref): the version
        each is at now."""
        ...

    def unit_of_work(self) -> UnitOfWork: ...

    def hold(self, keys: Sequence[str]) -> set[str]:
        """Hold each key (a customer) for this transaction without waiting; return the keys
        another transaction holds. Two batches never write one customer's rows at once, so
        they never wait for one another's row locks, nor deadlock."""
        ...

    def next_event(self) -> None:
        """The next event begins, with no savepoint: if it goes wrong, only the whole
        transaction can be rolled back. `tainted` starts false again."""
        ...

    def savepoint(self) -> None:
        """The next event begins after a savepoint (`rollback_to_savepoint` undoes it alone)."""
        ...

    def rollback_to_savepoint(self) -> None: ...

    def commit(self) -> None: ...


InboxBatchFactory = Callable[[], AbstractContextManager[InboxBatch]]


_READS = frozenset({"get_checkout", "get_subscription", "list_subscriptions", "get_invoice"})


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

    @property
    def subscription_ref(self) -> str | None:
        """The subscription a `get_subscription` reads."""
        if self.name != "get_subscription":
            return None
        ref = self.args_[0] if self.args_ else self.kwargs.get("subscription_ref")
        return ref if isinstance(ref, str) else None


@attrs.frozen
class GatewayRead:
    """A gateway read made with no transaction open, for a batch to use later. A subscription
    read also keeps the version of our copy read just before it (`held_before`, None: no
    copy): a tie between a view and our copy is broken by a gateway read taken after that
    copy was written, so the read only stands while our copy is still that version."""

    answer: Any
    subscription_ref: str | None = None
    held_before: int | None = None


def gateway_read(
    gateway: PaymentGateway, uow: UnitOfWorkFactory, call: GatewayCallDeferred
) -> GatewayRead:
    return gateway_reads(gateway, uow, {call.key: call})[call.key]


def gateway_reads(
    gateway: PaymentGateway,
    uow: UnitOfWorkFactory,
    calls: dict[str, GatewayCallDeferred],
    *,
    leave_out_failures: bool = False,
) -> dict[str, GatewayRead]:
    """The calls made, our copies of the subscriptions they read read first (one unit of
    work for all)."""
    refs = {ref for call in calls.values() if (ref := call.subscription_ref) is not None}
    versions: dict[str, int | None] = {}
    if refs:
        with uow() as u:
            for ref in refs:
                held = u.subscriptions.by_gateway_ref(ref)
                versions[ref] = None if held is None else held.version
    reads: dict[str, GatewayRead] = {}
    for key, call in calls.items():
        try:
            answer = getattr(gateway, call.name)(*call.args_, **call.kwargs)
        except Exception:
            if not leave_out_failures:
                raise
            continue  # asked again when an event needs it, and fails there if it must
        ref = call.subscription_ref
        reads[key] = GatewayRead(answer, ref, None if ref is None else versions[ref])
    return reads


_SUBSCRIPTION_READS = (GatewayEventKind.SUBSCRIPTION_CHANGED, GatewayEventKind.SCHEDULE_CHANGED)


def read_ahead(
    gateway: PaymentGateway,
    uow: UnitOfWorkFactory,
    decoded: Sequence[GatewayEvent | None],
    applied: Mapping[str, datetime],
) -> dict[str, GatewayRead]:
    """The gateway reads a batch will likely ask for, made before its transaction opens.

    Events of one object from the same second, among themselves or as the newest event
    applied to it (`applied`; their order is unknown, so applying the second re-reads the
    object), and schedule events (always re-read). A guess: a read missed here (or no longer
    standing, see `GatewayRead`) ends the batch's transaction and is made then; one made
    here in vain costs a gateway call.
    """
    seconds: dict[tuple[str, datetime], int] = {}
    for event in decoded:
        if event is not None and event.object_ref is not None:
            key = (event.object_ref, event.created)
            seconds[key] = seconds.get(key, 0) + 1
    wanted: dict[str, GatewayCallDeferred] = {}
    for event in decoded:
        if event is None:
            continue
        ref = event.object_ref or ""
        tied = seconds.get((ref, event.created), 0) > 1 or applied.get(ref) == event.created
        if event.kind is GatewayEventKind.INVOICE_CHANGED and event.invoice is not None:
            if tied:
                call = GatewayCallDeferred("get_invoice", (event.invoice.id,), {})
                wanted[call.key] = call
        elif event.kind in _SUBSCRIPTION_READS and event.subscription_ref is not None:
            schedule = event.kind is GatewayEventKind.SCHEDULE_CHANGED
            if tied or schedule or event.subscription is None:
                call = GatewayCallDeferred("get_subscription", (event.subscription_ref,), {})
                wanted[call.key] = call
    return gateway_reads(gateway, uow, wanted, leave_out_failures=True)


def forget_reads_of(reads: dict[str, GatewayRead], customer_ref: str | None) -> None:
    """Drop the reads about `customer_ref`'s objects (all of them if it is None, or where
    an answer names no customer): a write at the gateway for that customer may have changed
    them. Reads about other customers still stand."""
    for key, read in list(reads.items()):
        of = getattr(read.answer, "customer_ref", None)
        if customer_ref is None or of is None or of == customer_ref:
            del reads[key]


class BatchGateway:
    """The gateway as a batch sees it: attributes read through; a read is answered from the
    reads made for this pass (a subscription read only while our copy is the version it was
    read after), any other call refused.

    A batch holds its transaction (and the row locks of what it wrote) until it commits; a
    call across the network inside it would hold them for as long as the gateway takes. So
    a read the batch lacks ends the transaction, is made with none open (as an event applied
    on its own makes it, just before its writing transaction), and the event runs again.
    """

    def __init__(self, gateway: PaymentGateway, reads: dict[str, GatewayRead]) -> None:
        self._gateway = gateway
        self._reads = reads
        self._uow: UnitOfWorkFactory | None = None
        # The current event's subscription and our copy's version as it began
        self._event: tuple[str, int | None] | None = None

    def held_in(self, uow: UnitOfWorkFactory) -> None:
        """Where our copies are read from: the batch transaction's units of work."""
        self._uow = uow
        self._event = None

    def next_event(self, subscription_ref: str | None) -> None:
        """The next event, about `subscription_ref`: our copy's version as it begins (read
        into the event's reused reads, so the event's own first read of it costs nothing)."""
        self._event = None
        if subscription_ref is not None and any(
            read.subscription_ref == subscription_ref for read in self._reads.values()
        ):
            self._event = (subscription_ref, self._held_version(subscription_ref))

    def wrote(self, versions: Mapping[str, int]) -> None:
        """The current event wrote our copies in `versions` (gateway ref to the version it
        wrote; `InboxBatch.versions_written`). A read of its subscription that stood as it
        began still stands on the version it wrote: its write found our copy at that version
        (the write's version check), what it wrote comes from the event (sent before the read
        was made) or the read, and no one else writes the row before the batch ends
        (PostgreSQL: our row lock; SQLite: one writer)."""
        if self._event is None:
            return
        ref, began = self._event
        now = versions.get(ref)
        if now is None:
            return  # it wrote other rows: our copy is still the version it began on
        for key, read in list(self._reads.items()):
            if read.subscription_ref == ref and read.held_before == began:
                self._reads[key] = attrs.evolve(read, held_before=now)

    def _held_version(self, subscription_ref: str) -> int | None:
        assert self._uow is not None
        with self._uow() as u:
            held = u.subscriptions.by_gateway_ref(subscription_ref)
        return None if held is None else held.version

    def _stands(self, read: GatewayRead) -> bool:
        if read.subscription_ref is None:
            return True
        # the read the caller just made, reused within the event
        return self._uow is not None and (
            self._held_version(read.subscription_ref) == read.held_before
        )

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._gateway, name)
        if not callable(value):
            return value

        def answer(*args: Any, **kwargs: Any) -> Any:
            call = GatewayCallDeferred(name, args, kwargs)
            read = self._reads.get(call.key)
            if read is not None and self._stands(read):
                return read.answer  # read during this pass, with no transaction open
            raise call

        return answer
