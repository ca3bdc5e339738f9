"""The sandbox event codec keeps every field of a gateway event across the inbox."""

from __future__ import annotations

from datetime import UTC, datetime

from responseiq_billing.adapters.fake.codec import decode_event, encode_event
from responseiq_billing.application.ports import GatewayEvent, GatewayEventKind
from responseiq_billing.domain.invoices import BillingReason, Invoice, InvoiceStatus
from responseiq_billing.domain.money import Money
from responseiq_billing.domain.plans import Interval
from responseiq_billing.domain.subscription import (
    GatewaySubscription,
    PaymentMethodSummary,
    PendingChange,
    Status,
)

T0 = datetime(2026, 3, 16, 12, 0, tzinfo=UTC)
T1 = datetime(2026, 4, 1, tzinfo=UTC)


def test_a_subscription_event_round_trips_with_its_pending_change_and_card_summary() -> None:
    view = GatewaySubscription(
        customer_ref="cus_1",
        subscription_ref="sub_1",
        plan_id="growth",
        interval=Interval.MONTH,
        status=Status.ACTIVE,
        current_period_start=datetime(2026, 3, 1, tzinfo=UTC),
        current_period_end=T1,
        cancel_at_period_end=False,
        pending_change=PendingChange("starter", Interval.MONTH, T1),
        payment_method=PaymentMethodSummary("visa", "4242"),
        as_of=T0,
    )
    event = GatewayEvent(
        id="evt_1",
        kind=GatewayEventKind.SUBSCRIPTION_CHANGED,
        gateway_type="customer.subscription.updated",
        created=T0,
        customer_ref="cus_1",
        account_id="acct_ada",
        subscription_ref="sub_1",
        subscription=view,
    )
    assert decode_event(encode_event(event)) == event


def test_an_invoice_event_round_trips_with_money_in_minor_units() -> None:
    invoice = Invoice(
        id="in_1",
        customer_ref="cus_1",
        subscription_ref="sub_1",
        number="RIQ-0001",
        status=InvoiceStatus.PAID,
        amount_due=Money(2581, "USD"),
        amount_paid=Money(2581, "USD"),
        created=T0,
        period_start=T0,
        period_end=T1,
        billing_reason=BillingReason.SUBSCRIPTION_UPDATE,
        pdf_url="http://127.0.0.1:8000/sandbox/invoices/in_1.pdf",
        hosted_url=None,
    )
    event = GatewayEvent(
        id="evt_2",
        kind=GatewayEventKind.INVOICE_CHANGED,
        gateway_type="invoice.paid",
        created=T0,
        customer_ref="cus_1",
        invoice=invoice,
    )
    assert decode_event(encode_event(event)) == event
