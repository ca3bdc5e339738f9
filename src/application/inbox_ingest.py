"""Ingestion into the webhook inbox: a delivery is stored durably before it is acknowledged.

Deliveries are written by group commit: one writer thread stores what has arrived with one
INSERT per group. `WebhookDeliveries` is what a webhook route receives to verify and store them.
"""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import Future
from datetime import datetime
from typing import Generic, TypeVar

import attrs

from responseiq_billing.application.ports import Clock, InboxEvent, UnitOfWorkFactory

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
