"""Gateway event streams for inbox tests and benchmarks: a sandbox driven through sign-ups, then
one change per account in turn, then renewals; its events as the gateway sent them."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Literal

from responseiq_billing.adapters.fake.clock import ControllableClock
from responseiq_billing.adapters.fake.codec import encode_event
from responseiq_billing.adapters.fake.gateway import FakeGateway
from responseiq_billing.application import commands
from responseiq_billing.application.inbox import ReceiveGatewayEvent
from responseiq_billing.application.ports import GatewayEvent
from responseiq_billing.domain.plans import Interval, default_catalog
from tests.wiring import container_for

Change = Literal["upgrade", "downgrade", "card", "cancel", "none"]
EVERY_CHANGE: tuple[Change, ...] = ("upgrade", "downgrade", "card", "cancel")


def sandbox_stream(
    clock: ControllableClock,
    accounts: int,
    *,
    changes: Sequence[Change] = EVERY_CHANGE,
    signup_gap: timedelta = timedelta(seconds=5),
    change_gap: timedelta = timedelta(seconds=1),
    renewals: Sequence[timedelta] = (),
) -> tuple[FakeGateway, list[GatewayEvent]]:
    """Accounts `acct_0`… sign up for Growth monthly, `signup_gap` apart; account n then makes
    `changes[n % len(changes)]` in the portal, `change_gap` apart; then the sandbox's clock
    moves by each of `renewals` in turn."""
    catalog = default_catalog()
    fake = FakeGateway(catalog, clock)
    events: list[GatewayEvent] = []
    fake.subscribe(events.append)
    scratch = container_for(catalog=catalog, clock=clock, gateway=fake)  # only for checkouts
    start = scratch.start_checkout()
    customers = []
    for n in range(accounts):
        session = start(
            commands.StartCheckout(f"acct_{n}", "growth", "month", "https://a", "https://b")
        )
        fake.complete_checkout(session.id)
        with scratch.uow()() as u:
            customer = u.customers.get(f"acct_{n}")
        assert customer is not None
        customers.append(customer)
        clock.advance(signup_gap)
    for n, customer in enumerate(customers):
        change = changes[n % len(changes)]
        if change == "upgrade":
            fake.portal_change_plan(customer, "business", Interval.MONTH)
        elif change == "downgrade":
            fake.portal_change_plan(customer, "starter", Interval.MONTH)
        elif change == "card":
            fake.portal_update_payment_method(customer, "mastercard")
        elif change == "cancel":
            fake.portal_cancel(customer)
        clock.advance(change_gap)
    for step in renewals:
        fake.advance(step)
    return fake, events


def store_sandbox_event(receive: ReceiveGatewayEvent, event: GatewayEvent) -> bool:
    """Store `event` in the inbox as the webhook route does once a delivery is verified;
    False when it was there already (a duplicate delivery)."""
    return receive(
        gateway="sandbox",
        event_id=event.id,
        type=event.gateway_type,
        payload=encode_event(event),
        event_created=event.created,
        object_ref=event.object_ref,
    )
