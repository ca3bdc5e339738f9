"""Applying claimed inbox events in one transaction: the batch's port, and the gateway as a
batch sees it (reads made before the transaction opened; any other call ends the batch)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from typing import Any, Protocol

from responseiq_billing.application.ports import InboxRepository, PaymentGateway, UnitOfWork


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


class BatchGateway:
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
