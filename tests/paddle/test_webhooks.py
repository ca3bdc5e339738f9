"""Paddle notifications: signatures checked on the raw body; the double's real events in the
core's terms; what the inbox keeps of them."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from paddle_billing.Entities.Events import EventTypeName
from paddle_billing.Notifications import Secret, Verifier

from responseiq_billing.adapters.fake.clock import ControllableClock
from responseiq_billing.adapters.paddle.gateway import PaddleGateway
from responseiq_billing.adapters.paddle.setup import EVENTS
from responseiq_billing.adapters.paddle.webhooks import (
    INVOICE_EVENTS,
    SUBSCRIPTION_EVENTS,
    InvalidWebhook,
    PaddleEventDecoder,
    PaddleWebhookVerifier,
    object_ref,
    redact,
    translate_event,
)
from responseiq_billing.application.ports import GatewayEvent, GatewayEventKind, UiMode
from responseiq_billing.domain.errors import GatewayRejected
from responseiq_billing.domain.invoices import BillingReason, InvoiceStatus
from responseiq_billing.domain.money import Money
from responseiq_billing.domain.plans import Catalog, Interval
from responseiq_billing.domain.subscription import GatewaySubscription, PaymentMethodSummary, Status
from tests.paddle_double import PaddleDouble

SECRET = "pdl_ntfset_current_secret_0001"
OLD_SECRET = "pdl_ntfset_previous_secret_0000"
START = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
NOW = int(START.timestamp())

Event = dict[str, Any]


# -- the double and the gateway, driven through the flows of the help article -------------------


class Paddle:
    """The Paddle double, the gateway on it, and the notifications it emitted since last asked."""

    def __init__(self, clock: ControllableClock, catalog: Catalog) -> None:
        self.clock, self.catalog = clock, catalog
        self.double = PaddleDouble(clock).start()
        self.double.seed_catalog(catalog)
        self.gateway = PaddleGateway(self.double.client(), catalog, clock)
        self._seen = 0

    def new_events(self) -> list[Event]:
        events = self.double.events[self._seen :]
        self._seen += len(events)
        return events

    def checkout(self, account: str, plan: str = "growth", card: str = "visa") -> tuple[str, str]:
        """A checkout made and paid on Paddle's page; its transaction id and the subscription."""
        customer = self.gateway.ensure_customer(account, idempotency_key=f"customer:{account}")
        session = self.gateway.start_checkout(
            customer_ref=customer, account_id=account, price=self.catalog.price(plan, "month"),
            success_url="https://billing.test/ok", cancel_url="https://billing.test/no",
            ui_mode=UiMode.HOSTED, idempotency_key=f"checkout:{account}",
        )  # fmt: skip
        self.double.pay(session.id, card)
        outcome = self.gateway.get_checkout(session.id)
        assert outcome.subscription is not None
        return session.id, outcome.subscription.subscription_ref

    def upgrade(self, ref: str, plan: str) -> None:
        self.gateway.upgrade(
            subscription_ref=ref, target=self.catalog.price(plan, "month"),
            proration_at=self.clock.now(), idempotency_key=f"upgrade:{ref}:{plan}",
        )  # fmt: skip

    def change_card(self, customer: str, card: str) -> str:
        setup = self.gateway.start_payment_method_setup(
            customer_ref=customer, success_url="https://billing.test/ok",
            cancel_url="https://billing.test/no", idempotency_key=f"setup:{customer}:{card}",
        )  # fmt: skip
        self.double.pay(setup.id, card)
        return setup.id

    def translated(self, events: list[Event]) -> list[GatewayEvent]:
        return [translate_event(e, self.gateway.price_entries) for e in events]


@pytest.fixture
def paddle(clock: ControllableClock, catalog: Catalog) -> Iterator[Paddle]:
    world = Paddle(clock, catalog)
    yield world
    world.double.stop()
    assert world.double.violations == []


def acted_on(events: list[Event], translated: list[GatewayEvent]) -> list[tuple[str, str]]:
    """(Paddle's event type, the core's kind) of every event the core acts on."""
    return [
        (e["event_type"], t.kind.name)
        for e, t in zip(events, translated, strict=True)
        if t.kind is not GatewayEventKind.IGNORED
    ]


def of_kind(translated: list[GatewayEvent], kind: GatewayEventKind) -> list[GatewayEvent]:
    return [t for t in translated if t.kind is kind]


def without_card(view: GatewaySubscription, as_of: datetime) -> GatewaySubscription:
    """The gateway's view as an event shows it: no card (a subscription payload has none)."""
    return GatewaySubscription(
        customer_ref=view.customer_ref, subscription_ref=view.subscription_ref,
        plan_id=view.plan_id, interval=view.interval, status=view.status,
        current_period_start=view.current_period_start,
        current_period_end=view.current_period_end,
        cancel_at_period_end=view.cancel_at_period_end, pending_change=view.pending_change,
        payment_method=None, as_of=as_of, ended_at=view.ended_at, cancels_at=view.cancels_at,
    )  # fmt: skip


# -- verification -------------------------------------------------------------------------------


def notification(**overrides: Any) -> Event:
    event: Event = {
        "event_id": "evt_01hv8wptq8987qeep44fyrhf5g",
        "event_type": "subscription.updated",
        "occurred_at": "2026-03-01T09:00:00.123456Z",
        "notification_id": "ntf_01hv8wptw2r3xbtq0t0z1t0v9h",
        "data": {"id": "sub_01hv8x29kz0t586xy6zn1a62ny"},
    }
    event.update(overrides)
    return event


def body_of(event: object) -> bytes:
    return json.dumps(event).encode()


def signed(body: bytes, secret: str = SECRET, at: int = NOW) -> str:
    """`Paddle-Signature` over the raw bytes (the double's `signed` takes text)."""
    mac = hmac.new(secret.encode(), f"{at}:".encode() + body, hashlib.sha256).hexdigest()
    return f"ts={at};h1={mac}"


def verifier(*secrets: str, tolerance: int = 300) -> PaddleWebhookVerifier:
    return PaddleWebhookVerifier(secrets or (SECRET,), tolerance, now=lambda: NOW)


def refusal(body: bytes, header: str | None, check: PaddleWebhookVerifier | None = None) -> str:
    with pytest.raises(InvalidWebhook) as refused:
        (check or verifier()).verify(body, header)
    for secret in (SECRET, OLD_SECRET):
        assert secret not in str(refused.value)
    return refused.value.reason_code


def test_a_signed_notification_is_verified_and_returned() -> None:
    body = body_of(notification())

    assert verifier().verify(body, signed(body)) == notification()


def test_the_double_signs_as_paddle_does_and_the_sdks_verifier_agrees() -> None:
    body = body_of(notification())
    header = PaddleDouble.signed(body.decode(), NOW, SECRET)

    class Request:
        headers = {"Paddle-Signature": header}

    Request.body = body  # type: ignore[attr-defined]
    assert header == signed(body)
    # maximum_variance=0: the SDK's own age check reads the wall clock, which no test reads.
    assert Verifier(maximum_variance=0).verify(Request(), Secret(SECRET)) is True
    assert verifier().verify(body, header) == notification()


def test_the_previous_secret_still_verifies_during_rotation() -> None:
    body = body_of(notification())
    rotating = verifier(SECRET, OLD_SECRET)

    assert rotating.verify(body, signed(body, OLD_SECRET)) == notification()
    assert rotating.verify(body, signed(body, SECRET)) == notification()
    assert refusal(body, signed(body, OLD_SECRET)) == "bad_signature"  # once it is retired


def test_a_header_with_a_signature_per_secret_verifies_with_either() -> None:
    body = body_of(notification())
    old_mac = signed(body, OLD_SECRET).split(";")[1]

    assert verifier(OLD_SECRET).verify(body, f"{signed(body)};{old_mac}") == notification()


@pytest.mark.parametrize(
    "header",
    [
        pytest.param(lambda b: signed(b, "pdl_ntfset_someone_else_0000"), id="wrong secret"),
        pytest.param(lambda b: signed(b + b" "), id="signature of another body"),
        pytest.param(
            lambda b: f"ts={NOW};" + signed(b, at=NOW - 1).split(";")[1], id="stamp changed"
        ),
        pytest.param(lambda b: f"ts={NOW};h1={'0' * 64}", id="a made-up signature"),
    ],
)
def test_a_signature_that_does_not_match_is_refused(header: Any) -> None:
    body = body_of(notification())

    assert refusal(body, header(body)) == "bad_signature"


@pytest.mark.parametrize("header", [None, ""])
def test_a_delivery_without_a_signature_is_refused(header: str | None) -> None:
    assert refusal(body_of(notification()), header) == "missing_signature"


@pytest.mark.parametrize(
    "header",
    [
        "ts=yesterday;h1=ab12",
        f"h1={'a' * 64}",
        f"ts={NOW}",
        f"ts={NOW};h1=not-hex",
        f"ts={NOW};ts={NOW};h1=ab12",
        f"ts={NOW};h1=ab12;v2=cd34",
        f"t={NOW},v1={'a' * 64}",  # Stripe's format
        f"ts={NOW};h1=ab=12",
        "garbage",
    ],
)
def test_a_malformed_signature_header_is_refused(header: str) -> None:
    assert refusal(body_of(notification()), header) == "malformed_signature"


@pytest.mark.parametrize("age", [301, -301, 86_400, -86_400])
def test_a_signature_too_old_or_from_too_far_in_the_future_is_refused(age: int) -> None:
    body = body_of(notification())

    assert refusal(body, signed(body, at=NOW - age)) == "stale_timestamp"


@pytest.mark.parametrize("age", [300, -300, 0])
def test_a_signature_within_five_minutes_either_way_is_accepted(age: int) -> None:
    body = body_of(notification())

    assert verifier().verify(body, signed(body, at=NOW - age))["event_id"]


def test_the_tolerance_is_a_setting() -> None:
    body = body_of(notification())

    assert refusal(body, signed(body, at=NOW - 6), verifier(tolerance=5)) == "stale_timestamp"


def test_a_stale_signature_with_a_wrong_secret_is_refused_for_the_signature() -> None:
    # Nothing about a forged delivery is judged before its signature.
    body = body_of(notification())

    assert refusal(body, signed(body, OLD_SECRET, at=NOW - 9_999)) == "bad_signature"


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"event_type=subscription.updated", id="not JSON"),
        pytest.param(b"\xff\xfe{}", id="not UTF-8"),
        pytest.param(body_of([notification()]), id="a list"),
        pytest.param(body_of({"id": "evt_1"}), id="a Stripe-ish object"),
        pytest.param(body_of(notification(event_id=None)), id="no event id"),
        pytest.param(body_of(notification(event_id="")), id="empty event id"),
        pytest.param(body_of(notification(event_type=7)), id="type not a string"),
        pytest.param(body_of(notification(occurred_at="yesterday")), id="time not a time"),
        pytest.param(body_of(notification(occurred_at="2026-03-01T09:00:00")), id="no offset"),
        pytest.param(body_of(notification(occurred_at=1_772_355_600)), id="time a number"),
        pytest.param(
            body_of(notification(occurred_at="9999-12-31T23:59:59-23:59")), id="out of range"
        ),
        pytest.param(body_of(notification(data=[])), id="data not an object"),
        pytest.param(
            body_of({k: v for k, v in notification().items() if k != "data"}), id="no data"
        ),
    ],
)
def test_a_signed_body_that_is_no_notification_is_refused(body: bytes) -> None:
    assert refusal(body, signed(body)) == "malformed_body"


def test_a_verifier_needs_a_secret() -> None:
    with pytest.raises(ValueError, match="secret"):
        PaddleWebhookVerifier(["", ""])


# -- translation of the double's events -----------------------------------------------------------


def test_a_paid_checkout_completes_the_checkout_and_brings_the_subscription_and_its_invoice(
    paddle: Paddle, clock: ControllableClock
) -> None:
    checkout_id, ref = paddle.checkout("acct_1", "growth")
    events = paddle.new_events()
    translated = paddle.translated(events)

    assert acted_on(events, translated) == [
        ("transaction.paid", "INVOICE_CHANGED"),
        ("subscription.created", "SUBSCRIPTION_CHANGED"),
        ("subscription.activated", "SUBSCRIPTION_CHANGED"),
        ("transaction.completed", "CHECKOUT_COMPLETED"),
    ]
    [completed] = of_kind(translated, GatewayEventKind.CHECKOUT_COMPLETED)
    customer = paddle.gateway.ensure_customer("acct_1", idempotency_key="again")
    assert (completed.checkout_id, completed.account_id) == (checkout_id, "acct_1")
    assert (completed.subscription_ref, completed.customer_ref) == (ref, customer)
    assert completed.created == START and completed.subscription is None  # the core re-reads
    [paid] = of_kind(translated, GatewayEventKind.INVOICE_CHANGED)
    assert paid.invoice is not None and paid.invoice.id == checkout_id
    assert paid.invoice.status is InvoiceStatus.PAID
    assert paid.invoice.billing_reason is BillingReason.SUBSCRIPTION_CREATE
    assert paid.invoice.amount_paid == Money(4900, "USD")
    assert paid.invoice.pdf_url is None  # Paddle's links are short-lived and never in a payload
    gateway_view = paddle.gateway.get_subscription(ref)
    for created in of_kind(translated, GatewayEventKind.SUBSCRIPTION_CHANGED):
        assert created.account_id == "acct_1" and created.customer_ref == customer
        assert created.subscription == without_card(gateway_view, as_of=START)
    assert gateway_view.current_period_end == datetime(2026, 4, 1, 9, 0, tzinfo=UTC)


def test_an_upgrade_brings_the_new_plan_and_its_prorated_invoice(paddle: Paddle) -> None:
    _, ref = paddle.checkout("acct_1", "growth")
    paddle.new_events()
    paddle.clock.advance(timedelta(days=10))

    paddle.upgrade(ref, "business")
    events = paddle.new_events()
    translated = paddle.translated(events)

    assert acted_on(events, translated) == [
        ("transaction.paid", "INVOICE_CHANGED"),
        ("transaction.completed", "INVOICE_CHANGED"),
        ("subscription.updated", "SUBSCRIPTION_CHANGED"),
    ]
    [updated] = of_kind(translated, GatewayEventKind.SUBSCRIPTION_CHANGED)
    assert updated.subscription is not None
    assert (updated.subscription.plan_id, updated.subscription.interval) == (
        "business",
        Interval.MONTH,
    )
    assert updated.subscription.as_of == START + timedelta(days=10)
    invoices = [t.invoice for t in of_kind(translated, GatewayEventKind.INVOICE_CHANGED)]
    assert {i.status for i in invoices if i} == {InvoiceStatus.PAID}
    [invoice] = {i for i in invoices if i}  # paid, then completed: the same invoice, twice
    assert invoice.billing_reason is BillingReason.SUBSCRIPTION_UPDATE
    assert invoice.subscription_ref == ref
    assert 0 < invoice.amount_due.amount < 9900 - 4900 + 1


def test_a_card_change_makes_the_core_reread_the_card(paddle: Paddle) -> None:
    _, ref = paddle.checkout("acct_1", "growth")
    customer = paddle.gateway.ensure_customer("acct_1", idempotency_key="again")
    paddle.new_events()

    setup_id = paddle.change_card(customer, "mastercard")
    events = paddle.new_events()
    translated = paddle.translated(events)

    assert acted_on(events, translated) == [("transaction.completed", "PAYMENT_METHOD_CHANGED")]
    [changed] = of_kind(translated, GatewayEventKind.PAYMENT_METHOD_CHANGED)
    assert (changed.customer_ref, changed.subscription_ref) == (customer, ref)
    assert changed.payment_method == PaymentMethodSummary("mastercard", "4444")
    assert changed.default_payment_method_changed is False  # no customer default on Paddle
    assert changed.invoice is None  # a card change bills nothing: no invoice
    [completed] = [e for e in events if e["event_type"] == "transaction.completed"]
    assert completed["data"]["id"] == setup_id
    assert paddle.gateway.get_subscription(ref).payment_method == changed.payment_method


def test_cancelling_at_the_period_end_and_resuming_are_subscription_changes(
    paddle: Paddle,
) -> None:
    _, ref = paddle.checkout("acct_1", "growth")
    paddle.new_events()
    paddle.clock.advance(timedelta(days=3))

    paddle.gateway.cancel_at_period_end(subscription_ref=ref, idempotency_key="cancel")
    cancelled = paddle.translated(paddle.new_events())
    paddle.clock.advance(timedelta(days=1))
    paddle.gateway.resume(subscription_ref=ref, idempotency_key="resume")
    resumed = paddle.translated(paddle.new_events())

    [cancel] = cancelled
    [resume] = resumed
    assert cancel.kind is resume.kind is GatewayEventKind.SUBSCRIPTION_CHANGED
    assert cancel.subscription is not None and resume.subscription is not None
    assert cancel.subscription.cancel_at_period_end is True
    assert cancel.subscription.scheduled_end == datetime(2026, 4, 1, 9, 0, tzinfo=UTC)
    assert cancel.subscription.status is Status.ACTIVE
    assert resume.subscription.cancel_at_period_end is False
    assert resume.subscription.as_of > cancel.subscription.as_of


def test_a_cancellation_reaching_the_period_end_ends_the_subscription(paddle: Paddle) -> None:
    _, ref = paddle.checkout("acct_1", "growth")
    paddle.gateway.cancel_at_period_end(subscription_ref=ref, idempotency_key="cancel")
    paddle.new_events()

    paddle.double.advance_to(datetime(2026, 4, 1, 9, 5, tzinfo=UTC))
    events = paddle.new_events()
    translated = paddle.translated(events)

    assert acted_on(events, translated) == [("subscription.canceled", "SUBSCRIPTION_CHANGED")]
    view = translated[0].subscription
    assert view is not None and view.status is Status.CANCELED
    assert view.ended_at == datetime(2026, 4, 1, 9, 0, tzinfo=UTC)
    assert translated[0].created == datetime(2026, 4, 1, 9, 0, tzinfo=UTC)  # the boundary


def test_a_renewal_brings_the_new_period_and_its_invoice(paddle: Paddle) -> None:
    _, ref = paddle.checkout("acct_1", "growth")
    paddle.new_events()

    paddle.double.advance_to(datetime(2026, 4, 3, tzinfo=UTC))
    events = paddle.new_events()
    translated = paddle.translated(events)

    assert acted_on(events, translated) == [
        ("transaction.paid", "INVOICE_CHANGED"),
        ("transaction.completed", "INVOICE_CHANGED"),
        ("subscription.updated", "SUBSCRIPTION_CHANGED"),
    ]
    renewed_at = datetime(2026, 4, 1, 9, 0, tzinfo=UTC)
    [updated] = of_kind(translated, GatewayEventKind.SUBSCRIPTION_CHANGED)
    assert updated.subscription is not None
    assert updated.subscription.current_period_start == renewed_at
    assert updated.subscription.current_period_end == datetime(2026, 5, 1, 9, 0, tzinfo=UTC)
    assert updated.created == renewed_at  # when it renewed, not when the double caught up
    [invoice] = {t.invoice for t in of_kind(translated, GatewayEventKind.INVOICE_CHANGED)}
    assert invoice is not None
    assert (invoice.status, invoice.billing_reason) == (
        InvoiceStatus.PAID,
        BillingReason.SUBSCRIPTION_CYCLE,
    )
    assert (invoice.period_start, invoice.subscription_ref) == (renewed_at, ref)
    assert invoice.amount_due == Money(4900, "USD")


def test_a_declined_renewal_leaves_an_open_invoice_and_a_past_due_subscription(
    paddle: Paddle,
) -> None:
    _, ref = paddle.checkout("acct_1", "growth")
    paddle.new_events()
    paddle.double.decline_next_payment()

    paddle.double.advance_to(datetime(2026, 4, 3, tzinfo=UTC))
    events = paddle.new_events()
    translated = paddle.translated(events)

    assert acted_on(events, translated) == [
        ("transaction.payment_failed", "INVOICE_CHANGED"),
        ("transaction.past_due", "INVOICE_CHANGED"),
        ("subscription.past_due", "SUBSCRIPTION_CHANGED"),
    ]
    [invoice] = {t.invoice for t in of_kind(translated, GatewayEventKind.INVOICE_CHANGED)}
    assert invoice is not None and invoice.status is InvoiceStatus.OPEN
    assert invoice.amount_paid == Money(0, "USD")
    [past_due] = of_kind(translated, GatewayEventKind.SUBSCRIPTION_CHANGED)
    assert past_due.subscription is not None
    assert past_due.subscription.status is Status.PAST_DUE
    assert past_due.subscription.subscription_ref == ref


def test_an_events_time_keeps_its_microseconds_and_its_view_is_to_the_second(
    paddle: Paddle, clock: ControllableClock
) -> None:
    _, ref = paddle.checkout("acct_1", "growth")
    paddle.new_events()
    moment = datetime(2026, 3, 2, 10, 0, 0, 654321, tzinfo=UTC)
    clock.set(moment)

    paddle.gateway.cancel_at_period_end(subscription_ref=ref, idempotency_key="cancel")
    [cancel] = paddle.translated(paddle.new_events())

    # The inbox orders by the exact time; a view is compared with the gateway's, which are to
    # the second, so a view read later in the same second does not look older than the event's.
    assert cancel.created == moment
    assert cancel.subscription is not None
    assert cancel.subscription.as_of == moment.replace(microsecond=0)
    assert paddle.gateway.get_subscription(ref).as_of == cancel.subscription.as_of


def test_an_event_never_carries_a_pending_change(paddle: Paddle) -> None:
    """Paddle cannot schedule an item change: a downgrade is the core's to keep, and an event's
    view says nothing of it (`ApplyGatewayEvent` merges the kept one; tested end to end in
    tests/webhooks/test_paddle_route.py)."""
    _, ref = paddle.checkout("acct_1", "growth")
    paddle.clock.advance(timedelta(days=30))
    paddle.gateway.apply_plan_for_renewal(
        subscription_ref=ref, target=paddle.catalog.price("starter", "month"), idempotency_key="k"
    )
    paddle.double.advance_to(datetime(2026, 4, 3, tzinfo=UTC))

    views = [t.subscription for t in paddle.translated(paddle.new_events()) if t.subscription]

    assert [v.plan_id for v in views] == ["growth", "growth", "starter", "starter"]
    assert all(v.pending_change is None for v in views)


def test_a_price_that_does_not_name_its_plan_maps_through_the_gateways_prices(
    paddle: Paddle,
) -> None:
    paddle.checkout("acct_1", "growth")
    [created] = [e for e in paddle.new_events() if e["event_type"] == "subscription.created"]
    bare = json.loads(json.dumps(created))
    bare["data"]["items"][0]["price"]["custom_data"] = None

    mapped = translate_event(bare, paddle.gateway.price_entries)

    assert mapped == translate_event(created, {})
    with pytest.raises(GatewayRejected):  # a price of no plan of ours: the inbox retries, parks
        translate_event(bare, {})


def test_a_subscription_payload_that_cannot_be_read_makes_the_core_reread_it(
    paddle: Paddle,
) -> None:
    _, ref = paddle.checkout("acct_1", "growth")
    [created] = [e for e in paddle.new_events() if e["event_type"] == "subscription.created"]
    broken = json.loads(json.dumps(created))
    del broken["data"]["items"]

    event = translate_event(broken, paddle.gateway.price_entries)

    assert event.kind is GatewayEventKind.SUBSCRIPTION_CHANGED
    assert (event.subscription_ref, event.subscription) == (ref, None)


def test_other_events_are_ignored() -> None:
    for kind in ("customer.created", "adjustment.created", "transaction.canceled", "address.x"):
        event = notification(event_type=kind, data={"id": "x_1", "customer_id": "ctm_1"})
        translated = translate_event(event, {})
        assert translated.kind is GatewayEventKind.IGNORED
        assert translated.created == datetime(2026, 3, 1, 9, 0, 0, 123456, tzinfo=UTC)


def test_the_events_acted_on_are_paddles_and_every_subscribed_one_is_decoded() -> None:
    acted = SUBSCRIPTION_EVENTS | INVOICE_EVENTS
    assert all(EventTypeName(name).is_known() for name in acted)
    # `billing paddle setup` subscribes to these; only a canceled transaction is left alone
    # (a checkout abandoned, or a draft: nothing the core records).
    assert set(EVENTS) - acted == {"transaction.canceled"}


# -- every event of a long flow: ordering key, redaction, decoding ------------------------------


@pytest.fixture
def a_long_flow(paddle: Paddle) -> list[Event]:
    """Checkout, upgrade, card change, cancel, resume, a renewal, a declined renewal."""
    _, ref = paddle.checkout("acct_1", "growth")
    customer = paddle.gateway.ensure_customer("acct_1", idempotency_key="again")
    paddle.clock.advance(timedelta(days=2))
    paddle.upgrade(ref, "business")
    paddle.change_card(customer, "amex")
    paddle.gateway.cancel_at_period_end(subscription_ref=ref, idempotency_key="cancel")
    paddle.clock.advance(timedelta(hours=1))
    paddle.gateway.resume(subscription_ref=ref, idempotency_key="resume")
    paddle.double.advance_to(datetime(2026, 4, 2, tzinfo=UTC))
    paddle.double.decline_next_payment()
    paddle.double.advance_to(datetime(2026, 5, 2, tzinfo=UTC))
    events = paddle.new_events()
    assert {e["event_type"] for e in events} >= {
        "customer.created", "transaction.paid", "transaction.completed", "subscription.created",
        "subscription.updated", "payment_method.saved", "transaction.payment_failed",
        "transaction.past_due", "subscription.past_due",
    }  # fmt: skip
    return events


def test_the_inbox_orders_an_event_by_the_object_the_core_orders_it_by(
    paddle: Paddle, a_long_flow: list[Event]
) -> None:
    for event, translated in zip(a_long_flow, paddle.translated(a_long_flow), strict=True):
        if translated.kind is not GatewayEventKind.IGNORED:
            assert object_ref(event) == translated.object_ref, event["event_type"]
    subscription_ids = {
        e["data"]["id"] for e in a_long_flow if e["event_type"] == "subscription.created"
    }
    refs = {object_ref(e) for e in a_long_flow if e["event_type"].startswith("subscription.")}
    assert refs == subscription_ids


def test_what_the_inbox_keeps_translates_as_the_delivery_does(
    paddle: Paddle, a_long_flow: list[Event]
) -> None:
    decoder = PaddleEventDecoder(paddle.gateway)
    for event in a_long_flow:
        stored = json.dumps(redact(event))
        assert decoder.decode(stored) == translate_event(event, paddle.gateway.price_entries)


def _keys(value: Any) -> Iterator[tuple[str, Any]]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield key, item
            yield from _keys(item)
    elif isinstance(value, list):
        for item in value:
            yield from _keys(item)


def test_the_inbox_keeps_no_personal_data_and_of_a_card_its_type_and_last4(
    a_long_flow: list[Event],
) -> None:
    raw = json.dumps(a_long_flow)
    assert "@customers.responseiq.app" in raw and '"cardholder_name"' in raw  # there to remove
    assert '"expiry_month"' in raw and '"management_urls"' in raw

    stored = [redact(e) for e in a_long_flow]

    assert "@" not in json.dumps(stored)
    personal = {
        "email", "cardholder_name", "expiry_month", "expiry_year", "management_urls",
        "billing_details", "address", "paypal",
    }  # fmt: skip
    assert {key for key, _ in _keys(stored)} & personal == set()
    cards = [item for key, item in _keys(stored) if key == "card"]
    assert cards and all(set(card) == {"type", "last4"} for card in cards)
    assert {(c["type"], c["last4"]) for c in cards} == {
        ("visa", "4242"),
        ("amex", "8431"),
    }
    [customer] = [s for s in stored if s["event_type"] == "customer.created"]
    assert customer["data"] == {"id": customer["data"]["id"]}  # a customer's data is all personal
    assert all(set(s) == set(e) for s, e in zip(stored, a_long_flow, strict=True))
