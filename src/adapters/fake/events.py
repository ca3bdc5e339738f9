"""The sandbox's webhook: every event the sandbox gateway emits goes through the inbox."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from responseiq_billing.adapters.fake.gateway import FakeGateway
    from responseiq_billing.application.inbox import ProcessInbox, ReceiveGatewayEvent
    from responseiq_billing.application.ports import GatewayEvent

log = logging.getLogger("billing.container")


def deliver_sandbox_events(
    gateway: FakeGateway, receive: ReceiveGatewayEvent, process: ProcessInbox
) -> Callable[[GatewayEvent], None]:
    """The sandbox's webhook: every event the fake emits goes through the inbox, like Stripe's.

    It is stored first, then the inbox is drained at once, so the sandbox behaves like a
    webhook that arrives instantly (the background worker would also pick it up). A failure
    is logged, not raised into the gateway call that emitted it, as a failed webhook delivery
    never undoes what happened at Stripe; the stored event is retried by the worker.
    """
    from responseiq_billing.adapters.fake.codec import encode_event

    def deliver(event: GatewayEvent) -> None:
        try:
            receive(
                gateway="sandbox",
                event_id=event.id,
                type=event.gateway_type,
                payload=encode_event(event),
                event_created=event.created,
                object_ref=event.object_ref,
            )
            while process.run_once(limit=50).claimed:
                pass
        except Exception:
            log.exception("sandbox event %s (%s) was not applied", event.id, event.gateway_type)

    gateway.subscribe(deliver)
    return deliver
