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


def test_every_field_of_the_subscription_shape_survives_the_inbox() -> None:
    """Fields the first two cases leave at their defaults: a card change, an ended subscription
    with a cancellation date set, the past-due status."""
    view = GatewaySubscription(
        customer_ref="cus_2",
        subscription_ref="sub_2",
        plan_id="business",
        interval=Interval.YEAR,
        status=Status.PAST_DUE,
        current_period_start=datetime(2026, 1, 1, tzinfo=UTC),
        current_period_end=datetime(2027, 1, 1, tzinfo=UTC),
        cancel_at_period_end=True,
        pending_change=None,
        payment_method=None,
        as_of=T0,
        ended_at=T1,
        cancels_at=datetime(2026, 6, 30, tzinfo=UTC),
    )
    event = GatewayEvent(
        id="evt_3",
        kind=GatewayEventKind.PAYMENT_METHOD_CHANGED,
        gateway_type="customer.updated",
        created=T0,
        customer_ref="cus_2",
        subscription=view,
        payment_method=PaymentMethodSummary("mastercard", "4444"),
        checkout_id="cs_2",
        default_payment_method_changed=True,
    )
    decoded = decode_event(encode_event(event))
    assert decoded == event
    assert decoded.subscription is not None and decoded.subscription.cancels_at == view.cancels_at
