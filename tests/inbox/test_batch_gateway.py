"""The gateway as a batch sees it: a subscription read made ahead stands only on versions of our
copy that it was read after, or that the batch itself wrote from it (ADR 0011)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, cast

import pytest

from responseiq_billing.adapters.fake.repositories import InMemoryStore
from responseiq_billing.application.inbox_batch import (
    BatchGateway,
    GatewayCallDeferred,
    GatewayRead,
)
from responseiq_billing.application.ports import PaymentGateway
from responseiq_billing.domain.plans import Interval
from responseiq_billing.domain.subscription import Status, Subscription

T0 = datetime(2026, 3, 1, 9, tzinfo=UTC)
REF = "sub_1"


def _write(store: InMemoryStore, *, canceled: bool) -> int:
    """A write of our copy (a new version), as any path makes one; returns the version."""
    with store.unit_of_work() as u:
        sub = u.subscriptions.by_gateway_ref(REF)
        if sub is None:
            sub = Subscription(
                account_id="acct_1",
                customer_ref="cus_1",
                subscription_ref=REF,
                plan_id="growth",
                interval=Interval.MONTH,
                status=Status.ACTIVE,
                current_period_start=T0,
                current_period_end=T0 + timedelta(days=31),
            )
            u.subscriptions.add(sub)
        else:
            sub.cancel_at_period_end = canceled
            u.subscriptions.save(sub)
        u.commit()
    with store.unit_of_work() as u:
        held = u.subscriptions.by_gateway_ref(REF)
        assert held is not None
        return held.version


class _Unreachable:
    def __getattr__(self, name: str) -> Any:
        def never(*_: Any, **__: Any) -> Any:
            raise AssertionError("a batch never calls the gateway")

        return never


def _gateway(store: InMemoryStore, held_before: int | None) -> BatchGateway:
    call = GatewayCallDeferred("get_subscription", (REF,), {})
    read = GatewayRead("the view read ahead", REF, held_before)
    gateway = BatchGateway(cast(PaymentGateway, _Unreachable()), {call.key: read})
    gateway.held_in(store.unit_of_work)
    return gateway


def _asked(gateway: BatchGateway) -> Any:
    return cast(Any, gateway).get_subscription(REF)


def test_a_read_stands_while_our_copy_is_the_version_it_was_read_after() -> None:
    store = InMemoryStore()
    version = _write(store, canceled=False)
    gateway = _gateway(store, version)
    gateway.next_event(REF)
    assert _asked(gateway) == "the view read ahead"

    _write(store, canceled=True)  # another tab, after the read
    gateway.next_event(REF)
    with pytest.raises(GatewayCallDeferred):
        _asked(gateway)


def test_a_read_stands_on_what_the_batch_wrote_from_it_and_not_on_a_write_after_another() -> None:
    store = InMemoryStore()
    version = _write(store, canceled=False)
    gateway = _gateway(store, version)

    gateway.next_event(REF)  # an event of the batch writes our copy
    assert _asked(gateway) == "the view read ahead"
    gateway.wrote({REF: _write(store, canceled=True)})
    gateway.next_event(REF)
    assert _asked(gateway) == "the view read ahead"  # stands on the batch's own write

    _write(store, canceled=False)  # someone else, between two events
    gateway.next_event(REF)  # this event begins on their version and writes too
    gateway.wrote({REF: _write(store, canceled=True)})
    gateway.next_event(REF)
    with pytest.raises(GatewayCallDeferred):
        _asked(gateway)


def test_a_read_of_no_copy_stands_on_the_copy_the_batch_inserts() -> None:
    store = InMemoryStore()
    gateway = _gateway(store, None)
    gateway.next_event(REF)
    gateway.wrote({REF: _write(store, canceled=False)})  # the event that brings it in
    gateway.next_event(REF)
    assert _asked(gateway) == "the view read ahead"


def test_a_read_stands_after_an_event_that_wrote_other_rows_only() -> None:
    store = InMemoryStore()
    version = _write(store, canceled=False)
    gateway = _gateway(store, version)
    gateway.next_event(REF)
    gateway.wrote({"sub_other": 7})  # an audit entry, a checkout, another subscription
    gateway.next_event(REF)
    assert _asked(gateway) == "the view read ahead"
