"""Webhook signatures are checked on the raw body; events become the core's gateway events."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from datetime import UTC, datetime
from typing import Any

import pytest

from responseiq_billing.adapters.stripe.translate import PriceMap
from responseiq_billing.adapters.stripe.webhooks import (
    ENABLED_EVENTS,
    InvalidWebhook,
    StripeWebhookVerifier,
    translate_event,
)
from responseiq_billing.application.ports import GatewayEventKind
from responseiq_billing.domain.invoices import BillingReason, InvoiceStatus
from responseiq_billing.domain.money import Money
from responseiq_billing.domain.plans import Interval
from responseiq_billing.domain.subscription import PaymentMethodSummary, Status
from tests.stripe_double.fixtures import resource

SECRET = "whsec_current_0123456789"
OLD_SECRET = "whsec_previous_9876543210"
CREATED = 1_772_000_000
PERIOD_START, PERIOD_END = 1_771_000_000, 1_773_600_000


def sign(body: bytes, secret: str, at: int | None = None) -> str:
    """A `Stripe-Signature` header: HMAC-SHA256 of `t.body`, as Stripe computes it."""
    stamp = int(time.time()) if at is None else at
    mac = hmac.new(secret.encode(), f"{stamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={stamp},v1={mac}"


def event(type: str, obj: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return resource(
        "event",
        id=f"evt_{type.replace('.', '_')}",
        type=type,
        created=CREATED,
        data={"object": obj, **extra},
        api_version="2026-10-28.endive",
        livemode=False,
    )


def subscription(**overrides: Any) -> dict[str, Any]:
    """Stripe's example subscription on Growth monthly, periods on the item."""
    sub = resource(
        "subscription",
        id="sub_123",
        customer="cus_123",
        status="active",
        cancel_at_period_end=False,
        cancel_at=None,
        canceled_at=None,
        ended_at=None,
        pending_update=None,
        schedule=None,
        default_payment_method="pm_123",
        metadata={"account_id": "acct_9"},
    )
    item = sub["items"]["data"][0]
    item.update(
        current_period_start=PERIOD_START, current_period_end=PERIOD_END, subscription="sub_123"
    )
    item["price"].update(id="price_growth_m", lookup_key="growth_month", unit_amount=4900)
    sub.update(overrides)
    return sub


def body_of(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload).encode()


# -- verification ----------------------------------------------------------------------------


@pytest.fixture
def verifier() -> StripeWebhookVerifier:
    return StripeWebhookVerifier([SECRET, OLD_SECRET])


def test_a_correctly_signed_delivery_is_accepted_as_the_event(
    verifier: StripeWebhookVerifier,
) -> None:
    payload = event("invoice.paid", resource("invoice", id="in_1"))
    body = body_of(payload)
    assert verifier.verify(body, sign(body, SECRET)) == payload


def test_a_tampered_body_is_refused(verifier: StripeWebhookVerifier) -> None:
    body = body_of(event("invoice.paid", resource("invoice", id="in_1", amount_paid=100)))
    header = sign(body, SECRET)
    tampered = body.replace(b'"amount_paid": 100', b'"amount_paid": 999')
    assert tampered != body
    with pytest.raises(InvalidWebhook) as raised:
        verifier.verify(tampered, header)
    assert raised.value.reason_code == "bad_signature"


def test_a_signature_made_with_another_secret_is_refused(verifier: StripeWebhookVerifier) -> None:
    body = body_of(event("invoice.paid", resource("invoice", id="in_1")))
    with pytest.raises(InvalidWebhook) as raised:
        verifier.verify(body, sign(body, "whsec_attacker"))
    assert raised.value.reason_code == "bad_signature"
    assert SECRET not in str(raised.value) and OLD_SECRET not in str(raised.value)


def test_a_delivery_older_than_the_tolerance_is_refused_and_a_recent_one_accepted(
    verifier: StripeWebhookVerifier,
) -> None:
    body = body_of(event("invoice.paid", resource("invoice", id="in_1")))
    with pytest.raises(InvalidWebhook) as raised:
        verifier.verify(body, sign(body, SECRET, at=int(time.time()) - 301))
    assert raised.value.reason_code == "stale_timestamp"
    assert verifier.verify(body, sign(body, SECRET, at=int(time.time()) - 200))["id"]


@pytest.mark.parametrize(
    ("offset", "accepted"),
    [(-301, False), (-300, True), (300, True), (301, False), (86_400, False)],
)
def test_the_tolerance_holds_both_ways_so_a_signature_from_the_future_is_refused(
    offset: int, accepted: bool
) -> None:
    now = 1_800_000_000
    verifier = StripeWebhookVerifier([SECRET], now=lambda: now)
    body = body_of(event("invoice.paid", resource("invoice", id="in_1")))
    header = sign(body, SECRET, at=now + offset)
    if accepted:
        assert verifier.verify(body, header)["id"]
    else:
        with pytest.raises(InvalidWebhook) as raised:
            verifier.verify(body, header)
        assert raised.value.reason_code == "stale_timestamp"


@pytest.mark.parametrize("header", [None, ""])
def test_a_delivery_without_a_signature_header_is_refused(
    verifier: StripeWebhookVerifier, header: str | None
) -> None:
    with pytest.raises(InvalidWebhook) as raised:
        verifier.verify(b"{}", header)
    assert raised.value.reason_code == "missing_signature"


@pytest.mark.parametrize("header", ["garbage", "t=abc,v1=00", "t=123", "v1=abc"])
def test_a_malformed_signature_header_is_refused(
    verifier: StripeWebhookVerifier, header: str
) -> None:
    with pytest.raises(InvalidWebhook) as raised:
        verifier.verify(b"{}", header)
    assert raised.value.reason_code == "malformed_signature"


@pytest.mark.parametrize(
    "body",
    [b"not json at all", b'{"object": "charge"}', b"[1, 2]", b"\xff\xfe{}"],
    ids=["not-json", "not-an-event", "a-list", "not-utf8"],
)
def test_a_signed_body_that_is_not_an_event_is_refused(
    verifier: StripeWebhookVerifier, body: bytes
) -> None:
    stamp = int(time.time())
    mac = hmac.new(SECRET.encode(), f"{stamp}.".encode() + body, hashlib.sha256).hexdigest()
    with pytest.raises(InvalidWebhook) as raised:
        verifier.verify(body, f"t={stamp},v1={mac}")
    assert raised.value.reason_code == "malformed_body"


def test_during_rotation_both_secrets_are_accepted(verifier: StripeWebhookVerifier) -> None:
    body = body_of(event("invoice.paid", resource("invoice", id="in_1")))
    assert verifier.verify(body, sign(body, OLD_SECRET))["id"] == "evt_invoice_paid"
    assert verifier.verify(body, sign(body, SECRET))["id"] == "evt_invoice_paid"
    # Stripe signs with both during a rotation: one v1 per secret in one header
    both = sign(body, SECRET) + "," + sign(body, "whsec_other").split(",")[1]
    assert StripeWebhookVerifier([SECRET]).verify(body, both)["id"] == "evt_invoice_paid"
    with pytest.raises(InvalidWebhook):
        StripeWebhookVerifier([SECRET]).verify(body, sign(body, OLD_SECRET))


def test_a_verifier_needs_a_secret() -> None:
    with pytest.raises(ValueError):
        StripeWebhookVerifier([""])


# -- translation ----------------------------------------------------------------------------


def at(stamp: int) -> datetime:
    return datetime.fromtimestamp(stamp, tz=UTC)


def test_a_subscription_update_becomes_a_view_as_of_the_event_with_item_level_periods() -> None:
    sub = subscription(cancel_at_period_end=True)
    translated = translate_event(event("customer.subscription.updated", sub), PriceMap())

    assert translated.kind is GatewayEventKind.SUBSCRIPTION_CHANGED
    assert (translated.subscription_ref, translated.customer_ref) == ("sub_123", "cus_123")
    assert translated.account_id == "acct_9"
    view = translated.subscription
    assert view is not None
    assert (view.plan_id, view.interval, view.status) == ("growth", Interval.MONTH, Status.ACTIVE)
    assert (view.current_period_start, view.current_period_end) == (
        at(PERIOD_START),
        at(PERIOD_END),
    )
    assert view.cancel_at_period_end
    assert view.as_of == translated.created == at(CREATED)
    assert view.payment_method is None  # an unexpanded id says nothing about the card
    assert translated.object_ref == "sub_123"


@pytest.mark.parametrize(
    "type",
    [
        "customer.subscription.created",
        "customer.subscription.pending_update_applied",
        "customer.subscription.pending_update_expired",
    ],
)
def test_every_subscription_event_type_is_a_subscription_change(type: str) -> None:
    translated = translate_event(event(type, subscription()), PriceMap())
    assert translated.kind is GatewayEventKind.SUBSCRIPTION_CHANGED
    assert translated.gateway_type == type


def test_a_deleted_subscription_is_a_canceled_view_with_its_end() -> None:
    sub = subscription(status="canceled", ended_at=PERIOD_END, canceled_at=PERIOD_START)
    view = translate_event(event("customer.subscription.deleted", sub), PriceMap()).subscription
    assert view is not None
    assert (view.status, view.ended_at) == (Status.CANCELED, at(PERIOD_END))


def test_a_price_known_only_by_id_maps_through_the_price_map() -> None:
    sub = subscription()
    sub["items"]["data"][0]["price"]["lookup_key"] = None
    prices = PriceMap({("growth", Interval.MONTH): "price_growth_m"})
    view = translate_event(event("customer.subscription.updated", sub), prices).subscription
    assert view is not None and view.plan_id == "growth"


def test_a_subscription_event_with_an_attached_schedule_asks_for_a_fresh_read() -> None:
    sub = subscription(schedule="sub_sched_1")
    translated = translate_event(event("customer.subscription.updated", sub), PriceMap())
    assert translated.kind is GatewayEventKind.SCHEDULE_CHANGED
    assert translated.subscription_ref == "sub_123"
    assert translated.subscription is None


@pytest.mark.parametrize(
    ("type", "fields"),
    [
        ("subscription_schedule.created", {"subscription": "sub_123"}),
        ("subscription_schedule.updated", {"subscription": "sub_123"}),
        (
            "subscription_schedule.released",
            {"subscription": None, "released_subscription": "sub_123"},
        ),
        ("subscription_schedule.canceled", {"subscription": "sub_123"}),
        ("subscription_schedule.completed", {"subscription": "sub_123"}),
    ],
)
def test_schedule_events_name_the_subscription_to_re_read(
    type: str, fields: dict[str, Any]
) -> None:
    schedule = resource("subscription_schedule", id="sub_sched_1", customer="cus_123", **fields)
    translated = translate_event(event(type, schedule), PriceMap())
    assert translated.kind is GatewayEventKind.SCHEDULE_CHANGED
    assert (translated.subscription_ref, translated.customer_ref) == ("sub_123", "cus_123")


def test_a_completed_subscription_checkout_names_account_subscription_and_session() -> None:
    session = resource(
        "checkout.session",
        id="cs_test_1",
        mode="subscription",
        status="complete",
        customer="cus_123",
        client_reference_id="acct_9",
        subscription="sub_123",
    )
    translated = translate_event(event("checkout.session.completed", session), PriceMap())
    assert translated.kind is GatewayEventKind.CHECKOUT_COMPLETED
    assert (translated.account_id, translated.customer_ref) == ("acct_9", "cus_123")
    assert (translated.subscription_ref, translated.checkout_id) == ("sub_123", "cs_test_1")


def test_a_completed_setup_checkout_is_a_setup_completion_and_a_payment_checkout_is_ignored() -> (
    None
):
    setup = resource("checkout.session", id="cs_test_2", mode="setup", customer="cus_123")
    payment = resource("checkout.session", id="cs_test_3", mode="payment", customer="cus_123")
    done = translate_event(event("checkout.session.completed", setup), PriceMap())
    assert (done.kind, done.checkout_id) == (GatewayEventKind.SETUP_COMPLETED, "cs_test_2")
    ignored = translate_event(event("checkout.session.completed", payment), PriceMap())
    assert ignored.kind is GatewayEventKind.IGNORED


@pytest.mark.parametrize(
    "type",
    [
        "invoice.paid",
        "invoice.payment_failed",
        "invoice.payment_action_required",
        "invoice.finalized",
    ],
)
def test_invoice_events_carry_the_invoice(type: str) -> None:
    inv = resource(
        "invoice",
        id="in_1",
        customer="cus_123",
        status="paid",
        number="ABC-0001",
        amount_due=4900,
        amount_paid=4900,
        currency="usd",
        created=CREATED,
        billing_reason="subscription_cycle",
        invoice_pdf="https://pay.stripe.com/invoice/x/pdf",
        hosted_invoice_url="https://invoice.stripe.com/i/x",
        parent={
            "type": "subscription_details",
            "quote_details": None,
            "subscription_details": {"metadata": {}, "subscription": "sub_123"},
        },
    )
    inv["lines"]["data"][0]["period"] = {"start": PERIOD_START, "end": PERIOD_END}
    translated = translate_event(event(type, inv), PriceMap())

    assert translated.kind is GatewayEventKind.INVOICE_CHANGED
    invoice = translated.invoice
    assert invoice is not None
    assert (invoice.id, invoice.customer_ref, invoice.subscription_ref) == (
        "in_1",
        "cus_123",
        "sub_123",
    )
    assert (invoice.amount_due, invoice.amount_paid) == (Money(4900, "USD"), Money(4900, "USD"))
    assert invoice.status is InvoiceStatus.PAID
    assert invoice.billing_reason is BillingReason.SUBSCRIPTION_CYCLE
    assert (invoice.period_start, invoice.period_end) == (at(PERIOD_START), at(PERIOD_END))
    assert invoice.pdf_url and invoice.hosted_url
    assert translated.object_ref == "in_1"


@pytest.mark.parametrize(
    "type", ["payment_method.attached", "payment_method.automatically_updated"]
)
def test_card_events_carry_brand_and_last4_only(type: str) -> None:
    pm = resource("payment_method", id="pm_9", customer="cus_123")
    pm["card"].update(brand="mastercard", last4="4444")
    translated = translate_event(event(type, pm), PriceMap())
    assert translated.kind is GatewayEventKind.PAYMENT_METHOD_CHANGED
    assert translated.payment_method == PaymentMethodSummary("mastercard", "4444")
    assert translated.customer_ref == "cus_123"


def test_a_customer_update_is_a_payment_method_change_that_says_whether_the_default_moved() -> None:
    customer = resource("customer", id="cus_123")
    customer["invoice_settings"]["default_payment_method"] = "pm_9"  # events never expand it
    moved = event("customer.updated", customer)
    moved["data"]["previous_attributes"] = {"invoice_settings": {"default_payment_method": None}}
    renamed = event("customer.updated", customer)
    renamed["data"]["previous_attributes"] = {"metadata": {}}

    for translated in (translate_event(moved, PriceMap()), translate_event(renamed, PriceMap())):
        assert translated.kind is GatewayEventKind.PAYMENT_METHOD_CHANGED
        assert translated.customer_ref == "cus_123"
        assert translated.payment_method is None  # the core re-reads which card pays next
    assert translate_event(moved, PriceMap()).default_payment_method_changed
    assert not translate_event(renamed, PriceMap()).default_payment_method_changed


def test_a_card_event_of_no_customer_is_ignored() -> None:
    detached = resource("payment_method", id="pm_9", customer=None)
    assert (
        translate_event(event("payment_method.attached", detached), PriceMap()).kind
        is GatewayEventKind.IGNORED
    )


@pytest.mark.parametrize(
    "type", ["charge.succeeded", "customer.subscription.trial_will_end", "plan.created"]
)
def test_other_event_types_are_acknowledged_and_ignored(type: str) -> None:
    translated = translate_event(event(type, resource("charge", id="ch_1")), PriceMap())
    assert translated.kind is GatewayEventKind.IGNORED
    assert translated.gateway_type == type


def test_the_enabled_event_list_covers_every_translated_type() -> None:
    assert "checkout.session.completed" in ENABLED_EVENTS
    assert len(ENABLED_EVENTS) == len(set(ENABLED_EVENTS)) == 18
