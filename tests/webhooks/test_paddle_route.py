"""`POST /webhooks/paddle`: verified, redacted, stored once; then applied by the inbox's worker,
in whatever order and however often Paddle delivers."""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Any, Self

import httpx
import pytest
from dependency_injector import providers
from litestar import Litestar
from litestar.di import Provide
from litestar.testing import TestClient

from responseiq_billing.adapters.config import GatewayKind
from responseiq_billing.adapters.fake.clock import ControllableClock
from responseiq_billing.adapters.fake.repositories import InMemoryStore
from responseiq_billing.adapters.paddle.route import paddle_webhook
from responseiq_billing.adapters.paddle.webhooks import PaddleWebhookVerifier
from responseiq_billing.application import commands
from responseiq_billing.application.inbox import (
    ProcessInbox,
)
from responseiq_billing.application.ports import InboxEvent, InboxStatus, PaymentGateway, UnitOfWork
from responseiq_billing.application.use_cases import ApplyGatewayEvent
from responseiq_billing.domain.plans import Catalog, Interval
from responseiq_billing.domain.subscription import GatewaySubscription, PendingChange, Subscription
from tests.paddle.test_webhooks import Paddle
from tests.wiring import GivenUnits, container_for, sandbox_settings

SECRET = "pdl_ntfset_route_current_0001"
OLD_SECRET = "pdl_ntfset_route_previous_0000"
NOT_A_SECRET = "pdl_ntfset_someone_else_0000"
PERIOD_END = datetime(2026, 4, 1, 9, 0, tzinfo=UTC)

Event = dict[str, Any]


class FlakyUnitOfWork:
    """The store's unit of work, except that commits fail while the database is `down`."""

    down = False

    def __init__(self, inner: UnitOfWork) -> None:
        self._inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def __enter__(self) -> Self:
        self._inner.__enter__()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._inner.__exit__(exc_type, exc, tb)

    def commit(self) -> None:
        if FlakyUnitOfWork.down:
            raise ConnectionError("the database went away")
        self._inner.commit()


class Service:
    """What production wires for Paddle, from the container: the webhook route (over
    `ReceiveGatewayEvent`), the inbox's worker (`PaddleEventDecoder`, `ApplyGatewayEvent`) and
    the use cases, on one store; the use cases and the worker see the gateway through
    `core_keeps_changes`."""

    def __init__(self, paddle: Paddle, *, verifier: Any = "default") -> None:
        self.paddle, self.clock = paddle, paddle.clock
        self.store = InMemoryStore()
        self.uow = lambda: FlakyUnitOfWork(self.store.unit_of_work())
        self.container = container_for(
            sandbox_settings(gateway=GatewayKind.PADDLE),
            catalog=paddle.catalog,
            clock=self.clock,
            gateway=paddle.gateway,
            storage=GivenUnits(self.uow),
        )
        if verifier == "default":
            # The verifier reads the test's clock, so no test depends on the wall clock.
            verifier = PaddleWebhookVerifier(
                [SECRET, OLD_SECRET], now=lambda: self.clock.now().timestamp()
            )
        self.container.paddle_webhook_verifier.override(providers.Object(verifier))
        self.gateway: PaymentGateway = self.container.gateway()
        deliveries = self.container.paddle_deliveries()
        self.client: TestClient[Litestar] = TestClient(
            Litestar(
                route_handlers=[paddle_webhook],
                dependencies={
                    "paddle_deliveries": Provide(lambda: deliveries, sync_to_thread=False),
                },
            )
        )
        self.apply: ApplyGatewayEvent = self.container.apply_gateway_event()
        self.worker: ProcessInbox = self.container.process_inbox(worker="test-paddle-worker")

    def post(
        self,
        event: Event | bytes,
        *,
        secret: str = SECRET,
        at: int | None = None,
        header: str | None = None,
    ) -> httpx.Response:
        body = event if isinstance(event, bytes) else json.dumps(event).encode()
        stamp = int(self.clock.now().timestamp()) if at is None else at
        signature = self.paddle.double.signed(body.decode(), stamp, secret)
        headers = {"Content-Type": "application/json"}
        if header != "":
            headers["Paddle-Signature"] = signature if header is None else header
        return self.client.post("/webhooks/paddle", content=body, headers=headers)

    def deliver(self, events: list[Event]) -> None:
        for event in events:
            answer = self.post(event)
            assert answer.status_code == 200, answer.text

    def drain(self) -> None:
        while (report := self.worker.run_once(limit=50)).claimed:
            assert report.failed == 0, f"an event failed to apply: {report}"

    def inbox(self) -> list[InboxEvent]:
        with self.store.unit_of_work() as uow:
            return list(uow.inbox.list(None, limit=1000))

    def subscription(self, account: str) -> Subscription:
        with self.store.unit_of_work() as uow:
            sub = uow.subscriptions.for_account(account)
        assert sub is not None
        return sub

    def start_checkout(self, account: str, plan: str) -> str:
        """The customer starts a checkout here (the account's customer is linked then)."""
        start = self.container.start_checkout()
        session = start(
            commands.StartCheckout(
                account, plan, "month", "https://billing.test/ok", "https://billing.test/no"
            )
        )
        return session.id


@pytest.fixture
def paddle(clock: ControllableClock, catalog: Catalog) -> Iterator[Paddle]:
    world = Paddle(clock, catalog)
    yield world
    world.double.stop()
    assert world.double.violations == []


@pytest.fixture
def service(paddle: Paddle) -> Iterator[Service]:
    FlakyUnitOfWork.down = False
    running = Service(paddle)
    with running.client:
        yield running
    FlakyUnitOfWork.down = False


def a_customer_event(paddle: Paddle, account: str = "acct_route") -> Event:
    """A genuine notification from the double: a new customer (stored, then ignored)."""
    paddle.gateway.ensure_customer(account, idempotency_key=f"customer:{account}")
    [event] = paddle.new_events()
    assert event["event_type"] == "customer.created"
    return event


def stored_ids(service: Service) -> list[str]:
    return sorted(row.event_id for row in service.inbox())


# -- acknowledging ------------------------------------------------------------------------------


def test_a_signed_event_is_acknowledged_and_stored_once_without_personal_data(
    service: Service, paddle: Paddle
) -> None:
    event = a_customer_event(paddle)

    answer = service.post(event)

    assert answer.status_code == 200
    assert answer.json() == {"received": True, "duplicate": False}
    [row] = service.inbox()
    assert (row.event_id, row.gateway, row.type) == (
        event["event_id"],
        "paddle",
        "customer.created",
    )
    assert row.status is InboxStatus.PENDING  # applying is the worker's job, not the route's
    assert row.object_ref == event["data"]["id"]
    assert row.event_created == datetime.fromisoformat(event["occurred_at"])
    assert "@" not in row.payload and event["data"]["email"] not in row.payload


def test_a_redelivered_event_is_acknowledged_as_a_duplicate_and_stored_once(
    service: Service, paddle: Paddle, clock: ControllableClock
) -> None:
    event = a_customer_event(paddle)
    assert service.post(event).json()["duplicate"] is False

    again = service.post(event)
    # Paddle signs every delivery attempt afresh: a later stamp, the same event.
    clock.advance(timedelta(minutes=20))
    later = service.post(event)

    assert again.status_code == later.status_code == 200
    assert again.json() == later.json() == {"received": True, "duplicate": True}
    assert stored_ids(service) == [event["event_id"]]


def test_the_previous_secret_still_verifies_during_rotation(
    service: Service, paddle: Paddle
) -> None:
    old, new = a_customer_event(paddle, "acct_a"), a_customer_event(paddle, "acct_b")

    assert service.post(old, secret=OLD_SECRET).status_code == 200
    assert service.post(new, secret=SECRET).status_code == 200

    assert stored_ids(service) == sorted([old["event_id"], new["event_id"]])


def test_a_transaction_is_stored_with_its_card_type_and_last4_only(
    service: Service, paddle: Paddle
) -> None:
    paddle.checkout("acct_card", "growth")
    [paid] = [e for e in paddle.new_events() if e["event_type"] == "transaction.paid"]
    assert {"expiry_month", "cardholder_name"} <= paid["data"]["payments"][0]["method_details"][
        "card"
    ].keys()

    assert service.post(paid).status_code == 200

    [row] = service.inbox()
    stored = json.loads(row.payload)
    assert stored["data"]["payments"][0]["method_details"]["card"] == {
        "type": "visa",
        "last4": "4242",
    }
    assert "expiry" not in row.payload and "cardholder" not in row.payload
    assert row.object_ref == paid["data"]["id"]  # an invoice orders by itself


# -- refusing -----------------------------------------------------------------------------------


def _tampered(service: Service, event: Event) -> httpx.Response:
    body = json.dumps(event).encode()
    header = service.paddle.double.signed(
        body.decode(), int(service.clock.now().timestamp()), SECRET
    )
    forged = body.replace(b'"customer.created"', b'"customer.updated"')
    assert forged != body
    return service.post(forged, header=header)


def _stamped(age: int) -> Callable[[Service, Event], httpx.Response]:
    return lambda s, e: s.post(e, at=int(s.clock.now().timestamp()) - age)


REFUSALS: dict[str, tuple[Callable[[Service, Event], httpx.Response], str]] = {
    "tampered body": (_tampered, "webhook.bad_signature"),
    "wrong secret": (lambda s, e: s.post(e, secret=NOT_A_SECRET), "webhook.bad_signature"),
    "too old": (_stamped(301), "webhook.stale_timestamp"),
    "from the future": (_stamped(-301), "webhook.stale_timestamp"),
    "missing header": (lambda s, e: s.post(e, header=""), "webhook.missing_signature"),
    "malformed header": (
        lambda s, e: s.post(e, header="h1=abc;ts=yesterday"),
        "webhook.malformed_signature",
    ),
    "Stripe's header": (
        lambda s, e: s.post(e, header=f"t=1,v1={'a' * 64}"),
        "webhook.malformed_signature",
    ),
    "non-JSON body": (
        lambda s, e: s.post(b"event_type=customer.created"),
        "webhook.malformed_body",
    ),
    "JSON that is no notification": (
        lambda s, e: s.post(b'{"id": "evt_1", "type": "customer.created"}'),
        "webhook.malformed_body",
    ),
}


@pytest.mark.parametrize("case", list(REFUSALS))
def test_a_delivery_that_fails_verification_gets_400_with_a_stable_code_and_nothing_is_stored(
    case: str, service: Service, paddle: Paddle
) -> None:
    spoil, code = REFUSALS[case]

    answer = spoil(service, a_customer_event(paddle))

    assert answer.status_code == 400, answer.text
    assert answer.json()["code"] == code
    assert stored_ids(service) == []
    for secret in (SECRET, OLD_SECRET):
        assert secret not in answer.text


class Unusable:
    """A verifier that passes what the route must still refuse (the real one refuses it first)."""

    def __init__(self, event: Event) -> None:
        self.event = event

    def verify(self, raw_body: bytes, signature_header: str | None) -> Event:
        return self.event


@pytest.mark.parametrize(
    "event",
    [
        {"event_type": "x.y", "occurred_at": "2026-03-01T09:00:00Z", "data": {}},
        {"event_id": "evt_1", "event_type": "x.y", "occurred_at": "soon", "data": {}},
        {"event_id": "evt_1", "event_type": "x.y", "occurred_at": "2026-03-01T09:00", "data": {}},
        {"event_id": "evt_1", "occurred_at": "2026-03-01T09:00:00Z", "data": {}},
    ],
)
def test_an_event_without_a_usable_id_type_or_time_gets_400_and_is_not_stored(
    paddle: Paddle, event: Event
) -> None:
    running = Service(paddle, verifier=Unusable(event))
    with running.client:
        answer = running.post(b"{}")

    assert answer.status_code == 400
    assert answer.json()["code"] == "webhook.malformed_body"
    assert stored_ids(running) == []


def test_without_a_signing_secret_deliveries_get_503_so_paddle_keeps_them(
    paddle: Paddle,
) -> None:
    running = Service(paddle, verifier=None)
    with running.client:
        answer = running.post(a_customer_event(paddle))

    assert answer.status_code == 503
    assert answer.json()["code"] == "webhook.not_configured"
    assert "PADDLE_WEBHOOK_SECRET" in answer.json()["detail"]
    assert stored_ids(running) == []


def test_an_event_that_cannot_be_stored_gets_503_and_is_stored_when_paddle_retries(
    service: Service, paddle: Paddle
) -> None:
    event = a_customer_event(paddle)
    FlakyUnitOfWork.down = True

    refused = service.post(event)

    assert refused.status_code == 503
    assert refused.json()["code"] == "webhook.not_stored"
    FlakyUnitOfWork.down = False
    assert stored_ids(service) == []  # not durable, so not acknowledged

    retried = service.post(event)

    assert retried.status_code == 200
    assert retried.json() == {"received": True, "duplicate": False}
    assert stored_ids(service) == [event["event_id"]]


def test_the_route_is_documented_with_its_answers(service: Service) -> None:
    schema = service.client.app.openapi_schema.to_schema()
    operation = schema["paths"]["/webhooks/paddle"]["post"]

    assert {"200", "400", "503"} <= set(operation["responses"])
    assert "Paddle-Signature" in operation["description"]
    assert any(p["name"] == "Paddle-Signature" for p in operation["parameters"])


# -- applying: the local subscription ends as the gateway's ------------------------------------


def shown(sub: Subscription | GatewaySubscription) -> tuple[object, ...]:
    return (
        sub.subscription_ref,
        sub.customer_ref,
        sub.plan_id,
        sub.interval,
        sub.status,
        sub.current_period_start,
        sub.current_period_end,
        sub.cancel_at_period_end,
        sub.pending_change,
        sub.payment_method,
    )


def a_checkout_upgrade_card_change_and_cancel(service: Service, account: str) -> str:
    """The flow, with every change after the checkout made at Paddle (its portal, its support):
    our state can learn of them only by notifications. Returns the subscription."""
    paddle = service.paddle
    checkout_id = service.start_checkout(account, "growth")
    paddle.double.pay(checkout_id)
    ref = paddle.gateway.get_checkout(checkout_id).subscription.subscription_ref  # type: ignore[union-attr]
    customer = paddle.gateway.ensure_customer(account, idempotency_key="again")
    service.clock.advance(timedelta(days=4))
    paddle.upgrade(ref, "business")
    service.clock.advance(timedelta(seconds=1))
    paddle.change_card(customer, "amex")
    # The cancellation in the same second as the card change: a tie the core settles by asking.
    paddle.gateway.cancel_at_period_end(subscription_ref=ref, idempotency_key="cancel")
    service.clock.advance(timedelta(minutes=3))
    return ref


def test_the_flows_events_in_order_leave_the_subscription_as_the_gateway_has_it(
    service: Service, paddle: Paddle
) -> None:
    ref = a_checkout_upgrade_card_change_and_cancel(service, "acct_flow")

    service.deliver(paddle.new_events())
    service.drain()

    local = service.subscription("acct_flow")
    assert shown(local) == shown(paddle.gateway.get_subscription(ref))
    assert (local.plan_id, local.cancel_at_period_end) == ("business", True)
    assert local.payment_method is not None and local.payment_method.brand == "amex"
    outcomes = {row.type: row.outcome for row in service.inbox()}
    assert outcomes["transaction.completed"] == "applied"
    assert outcomes["customer.created"] == "ignored"
    with service.store.unit_of_work() as uow:
        invoices = uow.invoices.list_for_account("acct_flow", limit=10, starting_after=None)
    listed = paddle.gateway.list_invoices(
        customer_ref=local.customer_ref, limit=10, starting_after=None
    )
    assert [(i.id, i.status, i.amount_due) for i in invoices.items] == [
        (i.id, i.status, i.amount_due) for i in listed.items
    ]


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_the_flows_events_doubled_and_shuffled_leave_the_same_subscription(
    service: Service, paddle: Paddle, seed: int
) -> None:
    ref = a_checkout_upgrade_card_change_and_cancel(service, "acct_shuffled")
    events = paddle.new_events()
    deliveries = events + events
    random.Random(seed).shuffle(deliveries)

    # Four rounds, a worker pass after each: some events are applied before older ones arrive.
    quarter = len(deliveries) // 4 + 1
    answers = []
    for start in range(0, len(deliveries), quarter):
        for event in deliveries[start : start + quarter]:
            answer = service.post(event)
            assert answer.status_code == 200
            answers.append(answer.json()["duplicate"])
        service.drain()

    assert answers.count(True) == len(events)  # every event's second delivery
    assert stored_ids(service) == sorted(e["event_id"] for e in events)
    local = service.subscription("acct_shuffled")
    assert shown(local) == shown(paddle.gateway.get_subscription(ref))


def test_an_event_does_not_wipe_the_downgrade_the_core_keeps(
    service: Service, paddle: Paddle, catalog: Catalog
) -> None:
    account = "acct_downgrade"
    checkout_id = service.start_checkout(account, "growth")
    paddle.double.pay(checkout_id)
    service.deliver(paddle.new_events())
    service.drain()
    service.clock.advance(timedelta(days=5))
    change_plan = service.container.change_plan()
    change_plan(commands.ChangePlan(account, "starter", "month"))  # kept by the core: no call
    kept = PendingChange("starter", Interval.MONTH, PERIOD_END)
    assert service.subscription(account).pending_change == kept
    ref = service.subscription(account).subscription_ref
    paddle.new_events()

    # Within the hour before the renewal the worker switches Paddle's price (do_not_bill); here
    # its own record of the answer is lost (a crash), so only the notification tells us.
    service.clock.set(PERIOD_END - timedelta(minutes=30))
    paddle.gateway.apply_plan_for_renewal(
        subscription_ref=ref, target=catalog.price("starter", "month"), idempotency_key="renewal"
    )
    [updated] = paddle.new_events()
    assert updated["data"]["items"][0]["price"]["custom_data"]["plan_id"] == "starter"
    service.deliver([updated])
    service.drain()

    before_renewal = service.subscription(account)
    assert (before_renewal.plan_id, before_renewal.pending_change) == ("growth", kept)
    assert before_renewal.synced_at == PERIOD_END - timedelta(minutes=30)  # it was applied

    paddle.double.advance_to(PERIOD_END + timedelta(minutes=1))
    service.deliver(paddle.new_events())
    service.drain()

    renewed = service.subscription(account)
    assert (renewed.plan_id, renewed.pending_change) == ("starter", None)
    assert renewed.current_period_start == PERIOD_END
    assert shown(renewed) == shown(service.gateway.get_subscription(ref))
