"""The gateway as a batch sees it: a subscription read made ahead stands only on versions of our
copy that it was read after, or that the batch itself wrote from it (ADR 0011)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, cast

import attrs
import pytest

from responseiq_billing.adapters.fake.repositories import InMemoryStore
from responseiq_billing.application.inbox_batch import (
    BatchGateway,
    GatewayCallDeferred,
    GatewayRead,
    forget_reads_of,
    read_ahead,
)
from responseiq_billing.application.ports import GatewayEvent, GatewayEventKind, PaymentGateway
from responseiq_billing.domain.invoices import BillingReason, Invoice, InvoiceStatus
from responseiq_billing.domain.money import Money
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


@attrs.frozen
class _Answer:
    customer_ref: str | None


def test_a_gateway_write_for_a_customer_drops_the_reads_of_its_objects_only() -> None:
    reads = {
        "ada's subscription": GatewayRead(_Answer("cus_ada"), REF, 1),
        "ada's invoice": GatewayRead(_Answer("cus_ada")),
        "bob's invoice": GatewayRead(_Answer("cus_bob")),
        "a checkout": GatewayRead(_Answer(None)),  # names no customer: may be anyone's
    }
    kept = dict(reads)
    forget_reads_of(kept, "cus_ada")
    assert kept == {"bob's invoice": reads["bob's invoice"]}
    forget_reads_of(kept, None)  # whose write it was is unknown
    assert kept == {}


class _Reads:
    def __init__(self) -> None:
        self.asked: list[str] = []

    def get_invoice(self, invoice_id: str) -> _Answer:
        self.asked.append(invoice_id)
        return _Answer("cus_ada")


def test_an_invoice_event_of_the_second_of_the_newest_applied_is_read_ahead() -> None:
    store = InMemoryStore()
    gateway = _Reads()
    paid = _invoice_event("evt_paid", "in_1", T0)
    later = _invoice_event("evt_later", "in_2", T0 + timedelta(seconds=1))
    reads = read_ahead(
        cast(PaymentGateway, gateway),
        store.unit_of_work,
        [paid, later],
        {"in_1": T0, "in_2": T0},  # each invoice's newest applied event
    )
    assert gateway.asked == ["in_1"]  # tied with what was applied; in_2's event is newer
    assert [read.answer for read in reads.values()] == [_Answer("cus_ada")]


def _invoice_event(event_id: str, invoice_id: str, at: datetime) -> GatewayEvent:
    invoice = Invoice(
        id=invoice_id,
        customer_ref="cus_ada",
        subscription_ref=REF,
        number=None,
        status=InvoiceStatus.OPEN,
        amount_due=Money(4900, "USD"),
        amount_paid=Money(0, "USD"),
        created=at,
        period_start=T0,
        period_end=T0 + timedelta(days=31),
        billing_reason=BillingReason.SUBSCRIPTION_CYCLE,
        pdf_url=None,
        hosted_url=None,
    )
    return GatewayEvent(
        id=event_id,
        kind=GatewayEventKind.INVOICE_CHANGED,
        gateway_type="invoice.finalized",
        created=at,
        customer_ref="cus_ada",
        invoice=invoice,
    )
