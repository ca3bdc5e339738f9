"""The events a customer's journey makes Stripe send, signed, verified and translated."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from datetime import timedelta

from responseiq_billing.adapters.fake.clock import ControllableClock
from responseiq_billing.adapters.stripe.gateway import StripeGateway
from responseiq_billing.adapters.stripe.webhooks import StripeWebhookVerifier, translate_event
from responseiq_billing.application.ports import GatewayEvent, GatewayEventKind
from responseiq_billing.domain.invoices import BillingReason
from responseiq_billing.domain.plans import Catalog
from responseiq_billing.domain.subscription import GatewaySubscription, PaymentMethodSummary
from tests.stripe.conftest import start_card_setup
from tests.stripe_double import StripeDouble

SECRET = "whsec_journey_secret"


def deliver(double: StripeDouble, gateway: StripeGateway) -> list[GatewayEvent]:
    """Every event the double emitted, through a real signature check, then translated."""
    verifier = StripeWebhookVerifier([SECRET])
    out = []
    for event in double.state.events:
        body = json.dumps(event).encode()
        stamp = int(time.time())
        mac = hmac.new(SECRET.encode(), f"{stamp}.".encode() + body, hashlib.sha256).hexdigest()
        verified = verifier.verify(body, f"t={stamp},v1={mac}")
        out.append(translate_event(verified, gateway.prices))
    double.state.events.clear()
    return out


def kinds(events: list[GatewayEvent]) -> list[tuple[str, GatewayEventKind]]:
    return [(e.gateway_type, e.kind) for e in events]


def test_a_checkout_sends_what_starts_the_subscription_and_records_its_invoice(
    gateway: StripeGateway, double: StripeDouble, subscription: GatewaySubscription
) -> None:
    events = deliver(double, gateway)
    by_type = {e.gateway_type: e for e in events}

    completed = by_type["checkout.session.completed"]
    assert completed.kind is GatewayEventKind.CHECKOUT_COMPLETED
    assert completed.subscription_ref == subscription.subscription_ref
    assert completed.account_id is not None
    created = by_type["customer.subscription.created"]
    assert created.subscription is not None
    assert created.subscription.plan_id == "growth"
    assert created.subscription.current_period_end == subscription.current_period_end
    paid = by_type["invoice.paid"]
    assert paid.invoice is not None
    assert paid.invoice.billing_reason is BillingReason.SUBSCRIPTION_CREATE
    assert paid.invoice.subscription_ref == subscription.subscription_ref
    card = by_type["payment_method.attached"]
    assert card.payment_method == PaymentMethodSummary("visa", "4242")


def test_a_downgrade_cancel_and_period_end_arrive_as_schedule_and_subscription_changes(
    gateway: StripeGateway,
    double: StripeDouble,
    subscription: GatewaySubscription,
    catalog: Catalog,
    clock: ControllableClock,
) -> None:
    ref = subscription.subscription_ref
    deliver(double, gateway)
    gateway.schedule_downgrade(
        subscription_ref=ref, target=catalog.price("starter", "month"), idempotency_key="d:1"
    )
    assert kinds(deliver(double, gateway)) == [
        ("subscription_schedule.created", GatewayEventKind.SCHEDULE_CHANGED),
        ("subscription_schedule.updated", GatewayEventKind.SCHEDULE_CHANGED),
    ]

    gateway.cancel_at_period_end(subscription_ref=ref, idempotency_key="c:1")
    cancel = deliver(double, gateway)
    assert kinds(cancel) == [
        ("subscription_schedule.released", GatewayEventKind.SCHEDULE_CHANGED),
        ("customer.subscription.updated", GatewayEventKind.SUBSCRIPTION_CHANGED),
    ]
    view = cancel[1].subscription
    assert view is not None and view.cancel_at_period_end and view.pending_change is None

    double.advance_to(subscription.current_period_end + timedelta(hours=1))
    (ended,) = deliver(double, gateway)
    assert ended.gateway_type == "customer.subscription.deleted"
    assert ended.subscription is not None
    assert ended.subscription.status.value == "canceled"
    assert ended.created == clock.now()


def test_a_subscription_event_while_a_schedule_is_attached_asks_for_a_re_read(
    gateway: StripeGateway,
    double: StripeDouble,
    subscription: GatewaySubscription,
    catalog: Catalog,
) -> None:
    ref = subscription.subscription_ref
    gateway.schedule_downgrade(
        subscription_ref=ref, target=catalog.price("starter", "month"), idempotency_key="d:1"
    )
    setup = start_card_setup(gateway, subscription, "s:1")
    double.complete_checkout(setup.id, card="amex")
    deliver(double, gateway)
    # moves the subscription's own default card: a subscription update while scheduled
    gateway.complete_payment_method_setup(
        setup.id, customer_ref=subscription.customer_ref, idempotency_key="sc:1"
    )
    updates = [e for e in deliver(double, gateway) if e.gateway_type.startswith("customer.sub")]
    assert [(e.kind, e.subscription_ref, e.subscription) for e in updates] == [
        (GatewayEventKind.SCHEDULE_CHANGED, ref, None)
    ]
