"""`POST /webhooks/stripe` through the real app: verified, redacted, stored once, then applied."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from datetime import timedelta
from types import TracebackType
from typing import Any, Self

import pytest
from dependency_injector import providers
from litestar.testing import TestClient

from responseiq_billing.adapters.app import create_app
from responseiq_billing.adapters.container import Container, Storage
from responseiq_billing.adapters.fake.clock import ControllableClock
from responseiq_billing.adapters.metrics import MetricsScrapes
from responseiq_billing.application.inbox import ProcessReport
from responseiq_billing.application.ports import InboxStatus, UnitOfWork
from tests.stripe_double import StripeDouble
from tests.stripe_double.fixtures import resource
from tests.webhooks.conftest import Stripe, headers, sign_up, subscription_shown
from tests.webhooks.harness import OLD_SECRET, SECRET, body_of, inbox_rows, sign

NOT_A_SECRET = "whsec_someone_else_entirely_0000"


def a_customer_event(double: StripeDouble) -> dict[str, Any]:
    """A genuine event from the double: a new customer (acknowledged, stored, then ignored)."""
    double.state.create_customer({"metadata": {"account_id": "acct_route"}})
    return double.events_since(len(double.state.events) - 1)[0]


def stored_ids(container: Container) -> list[str]:
    return [row.event_id for row in inbox_rows(container)]


def deliver_and_apply(stripe: Stripe, container: Container) -> ProcessReport:
    """Stripe delivers every new event, then one worker pass applies what is stored."""
    stripe.deliver_new()
    return container.process_inbox().run_once(limit=100)


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """What the service logs; Litestar's logging set-up replaces the root handlers caplog uses."""
    logger = logging.getLogger("billing")
    logger.addHandler(caplog.handler)
    caplog.set_level(logging.DEBUG, logger="billing")
    try:
        yield caplog
    finally:
        logger.removeHandler(caplog.handler)


def metrics(client: TestClient[Any]) -> dict[str, float]:
    answer = client.get("/metrics")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain")
    values: dict[str, float] = {}
    for line in answer.text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.split(" ")
            values[name] = float(value)
    return values


# -- acknowledging ------------------------------------------------------------------------------


def test_a_signed_event_is_acknowledged_and_stored_once(
    stripe: Stripe, double: StripeDouble, container: Container
) -> None:
    event = a_customer_event(double)

    answer = stripe.post(event)

    assert answer.status_code == 200
    assert answer.json() == {"received": True, "duplicate": False}
    [row] = inbox_rows(container)
    assert (row.event_id, row.gateway, row.type) == (event["id"], "stripe", "customer.created")
    assert row.status is InboxStatus.PENDING  # applying is the worker's job, not the route's
    assert row.object_ref == event["data"]["object"]["id"]


def test_a_redelivered_event_is_acknowledged_as_a_duplicate_and_stored_once(
    stripe: Stripe, double: StripeDouble, container: Container
) -> None:
    event = a_customer_event(double)
    assert stripe.post(event).json()["duplicate"] is False

    again = stripe.post(event)
    # Stripe signs every delivery attempt afresh: a later stamp, the same event.
    later = stripe.post(event, at=int(time.time()) + 5)

    assert again.status_code == later.status_code == 200
    assert again.json() == later.json() == {"received": True, "duplicate": True}
    assert stored_ids(container) == [event["id"]]


def test_the_previous_secret_still_verifies_during_rotation(
    stripe: Stripe, double: StripeDouble, container: Container
) -> None:
    old, new = a_customer_event(double), a_customer_event(double)

    assert stripe.post(old, secret=OLD_SECRET).status_code == 200
    assert stripe.post(new, secret=SECRET).status_code == 200

    assert sorted(stored_ids(container)) == sorted([old["id"], new["id"]])


# -- refusing -----------------------------------------------------------------------------------


def _tampered(event: dict[str, Any]) -> dict[str, Any]:
    body = body_of(event)
    forged = body.replace(b'"customer.created"', b'"customer.deleted"')
    assert forged != body
    return {"body": forged, "header": sign(body)}


REFUSALS: dict[str, Any] = {
    # name: (how the delivery is spoilt, the stable error code)
    "tampered body": (_tampered, "webhook.bad_signature"),
    "wrong secret": (
        lambda e: {"body": body_of(e), "header": sign(body_of(e), NOT_A_SECRET)},
        "webhook.bad_signature",
    ),
    "stale timestamp": (
        lambda e: {"body": body_of(e), "header": sign(body_of(e), at=int(time.time()) - 301)},
        "webhook.stale_timestamp",
    ),
    "missing header": (lambda e: {"body": body_of(e), "header": ""}, "webhook.missing_signature"),
    "malformed header": (
        lambda e: {"body": body_of(e), "header": "v1=abc,t=yesterday"},
        "webhook.malformed_signature",
    ),
    "header without a v1 signature": (
        lambda e: {"body": body_of(e), "header": f"t={int(time.time())}"},
        "webhook.malformed_signature",
    ),
    "non-JSON body": (
        lambda e: {"body": b"event=customer.created", "header": sign(b"event=customer.created")},
        "webhook.malformed_body",
    ),
    "JSON that is no event": (
        lambda e: {"body": b'{"id": "evt_1"}', "header": sign(b'{"id": "evt_1"}')},
        "webhook.malformed_body",
    ),
}


@pytest.mark.parametrize("case", list(REFUSALS))
def test_a_delivery_that_fails_verification_gets_400_with_a_stable_code_and_nothing_is_stored(
    case: str,
    stripe: Stripe,
    double: StripeDouble,
    container: Container,
    logs: pytest.LogCaptureFixture,
) -> None:
    spoil, code = REFUSALS[case]
    delivery = spoil(a_customer_event(double))

    answer = stripe.post(delivery["body"], header=delivery["header"])

    assert answer.status_code == 400, answer.text
    assert answer.json()["code"] == code
    assert stored_ids(container) == []
    # Neither the body nor the logs give away a signing secret.
    for secret in (SECRET, OLD_SECRET):
        assert secret not in answer.text
        assert secret not in logs.text
    assert "/webhooks/stripe 400" in logs.text  # the log saw the refusal


def test_a_refused_delivery_changes_nothing_when_a_worker_runs(
    stripe: Stripe, double: StripeDouble, container: Container, client: TestClient[Any]
) -> None:
    sign_up(client, double, "acct_refused", "growth")
    sub = double.state.all("subscription")[0]
    double.portal_cancel(sub["id"])
    [*_, cancelled] = stripe.new_events()
    assert cancelled["type"] == "customer.subscription.updated"

    answer = stripe.post(body_of(cancelled), header=sign(body_of(cancelled), NOT_A_SECRET))
    container.process_inbox().run_once()

    assert answer.status_code == 400
    shown = subscription_shown(client, "acct_refused")
    assert shown["cancel_at_period_end"] is False


# -- storage failures ---------------------------------------------------------------------------


class FailingCommits:
    """A unit of work whose commit fails while the database is down (and rolls back)."""

    def __init__(self, inner: UnitOfWork, storage: FlakyStorage) -> None:
        self._inner, self._storage = inner, storage

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
        if self._storage.down:
            self._storage.refused += 1
            self._inner.rollback()
            raise self._storage.error("the database went away")
        self._inner.commit()


class FlakyStorage:
    """The real storage, except that commits fail while `down` is set."""

    def __init__(self, real: Storage, error: type[Exception] = ConnectionError) -> None:
        self.real, self.url, self.error = real, real.url, error
        self.down = False
        self.refused = 0

    def unit_of_work(self) -> UnitOfWork:
        return FailingCommits(self.real.unit_of_work(), self)

    def prepare(self) -> None:
        self.real.prepare()

    def readiness(self) -> str | None:
        return self.real.readiness()

    def close(self) -> None:
        self.real.close()

    def freshness(self) -> None:
        return None  # no read cache: reads go to the flaky store


@pytest.mark.parametrize("error", [ConnectionError, ValueError, TypeError])
def test_an_event_that_cannot_be_stored_gets_503_and_is_stored_when_stripe_retries(
    error: type[Exception],
    container: Container,
    double: StripeDouble,
    logs: pytest.LogCaptureFixture,
) -> None:
    # Whatever the storage raises (a driver's ValueError too), it is not a malformed event:
    # answering 400 would make Stripe drop an event we never stored.
    flaky = FlakyStorage(container.storage(), error)
    container.storage.override(providers.Object(flaky))
    event = a_customer_event(double)
    with TestClient(create_app(container)) as client:
        stripe = Stripe(client, double)
        flaky.down = True

        refused = stripe.post(event)

        assert refused.status_code == 503
        assert refused.json()["code"] == "webhook.not_stored"
        assert flaky.refused == 1
        flaky.down = False
        assert stored_ids(container) == []  # not durable, so not acknowledged

        retried = stripe.post(event)

        assert retried.status_code == 200
        assert retried.json() == {"received": True, "duplicate": False}
        assert stored_ids(container) == [event["id"]]
    assert error.__name__ in logs.text  # the operator sees why, Stripe only sees 503


def test_an_event_whose_time_is_out_of_range_gets_400_and_is_not_stored(
    stripe: Stripe, double: StripeDouble, container: Container
) -> None:
    event = a_customer_event(double)
    event["created"] = 10**20  # signed, so Stripe would retry a 5xx for days: refuse it

    answer = stripe.post(event)

    assert answer.status_code == 400
    assert answer.json()["code"] == "webhook.malformed_body"
    assert stored_ids(container) == []


def test_without_a_signing_secret_deliveries_get_503_so_stripe_keeps_them(
    double: StripeDouble, clock: ControllableClock, database_url: str
) -> None:
    from responseiq_billing.adapters.config import Settings
    from responseiq_billing.adapters.container import build_container
    from tests.webhooks.harness import stripe_env

    env = stripe_env(double, database_url)
    del env["STRIPE_WEBHOOK_SECRET"]
    container = build_container(Settings.from_env(env))
    with TestClient(create_app(container)) as client:
        answer = Stripe(client, double).post(a_customer_event(double))

    assert answer.status_code == 503
    assert answer.json()["code"] == "webhook.not_configured"
    assert stored_ids(container) == []


# -- card data ----------------------------------------------------------------------------------


def test_a_payment_method_event_is_stored_with_the_card_brand_and_last4_only(
    stripe: Stripe, container: Container
) -> None:
    card_pm = resource("payment_method", id="pm_route_1", customer="cus_route_1")
    card_pm["billing_details"] = {
        "name": "Jenny Rosen",
        "email": "jenny@example.com",
        "phone": "+14155550132",
        "address": {"line1": "1 Main St", "city": "Springfield", "postal_code": "12345"},
    }
    assert {"exp_month", "exp_year", "fingerprint"} <= card_pm["card"].keys()  # Stripe's shape
    event = resource(
        "event",
        id="evt_route_pm_1",
        type="payment_method.attached",
        created=int(time.time()),
        data={"object": card_pm},
        api_version="2026-10-28.endive",
        livemode=False,
    )

    assert stripe.post(event).status_code == 200

    [row] = inbox_rows(container)
    stored = json.loads(row.payload)
    assert stored["data"]["object"]["card"] == {"brand": "visa", "last4": "4242"}
    for field in ("exp_month", "exp_year", "fingerprint", "cvc", "2030", "AOB934RVNwzk6xtn"):
        assert field not in row.payload
    for field in ("Jenny Rosen", "jenny@example.com", "+14155550132", "1 Main St"):
        assert field not in row.payload
    # Personal data that no handler reads is not kept either; the ids the handlers use are.
    assert "billing_details" not in stored["data"]["object"]
    assert stored["data"]["object"]["customer"] == card_pm["customer"]


def test_the_doubles_own_card_events_lose_expiry_and_fingerprint_when_stored(
    stripe: Stripe, client: TestClient[Any], double: StripeDouble, container: Container
) -> None:
    sign_up(client, double, "acct_cards", "starter")
    customer = double.state.all("customer")[0]["id"]
    double.portal_update_payment_method(customer, "mastercard")

    events = stripe.deliver_new()

    attached = [e for e in events if e["type"] == "payment_method.attached"]
    assert len(attached) == 2 and "exp_month" in attached[0]["data"]["object"]["card"]
    for row in inbox_rows(container):
        assert "exp_month" not in row.payload and "fingerprint" not in row.payload


# -- the worker, the portal and /metrics ---------------------------------------------------------


def test_changes_made_in_the_portal_reach_get_subscription_through_the_webhook(
    stripe: Stripe,
    client: TestClient[Any],
    double: StripeDouble,
    container: Container,
    clock: ControllableClock,
) -> None:
    sign_up(client, double, "acct_portal", "growth")
    deliver_and_apply(stripe, container)
    clock.advance(timedelta(minutes=5))
    sub_id = double.state.all("subscription")[0]["id"]
    customer = double.state.all("customer")[0]["id"]
    business = double.state.list_prices({"lookup_keys": ["business_month"]})[0]["id"]
    assert double.portal_change_price(sub_id, business)
    double.portal_update_payment_method(customer, "amex")
    double.portal_cancel(sub_id)

    before = subscription_shown(client, "acct_portal")
    stripe.deliver_new()
    before_worker = subscription_shown(client, "acct_portal")
    report = container.process_inbox().run_once(limit=100)
    after = subscription_shown(client, "acct_portal")

    assert (before["plan"], before["cancel_at_period_end"]) == ("growth", False)
    assert before["payment_method"] == {"brand": "visa", "last4": "4242"}
    assert before_worker == before  # stored is not applied
    assert report.failed == 0
    assert after["plan"] == "business"
    assert after["cancel_at_period_end"] is True
    assert after["payment_method"] == {"brand": "amex", "last4": "8431"}


def test_a_late_event_about_the_old_card_does_not_roll_the_payment_method_back(
    stripe: Stripe,
    client: TestClient[Any],
    double: StripeDouble,
    container: Container,
    clock: ControllableClock,
) -> None:
    sign_up(client, double, "acct_late_card", "growth")
    events = stripe.new_events()
    [old_card] = [e for e in events if e["type"] == "payment_method.attached"]
    for event in (e for e in events if e is not old_card):
        assert stripe.post(event).status_code == 200
    clock.advance(timedelta(minutes=5))
    customer = double.state.all("customer")[0]["id"]
    double.portal_update_payment_method(customer, "amex")
    deliver_and_apply(stripe, container)
    clock.advance(timedelta(minutes=5))

    # Stripe's first delivery of the old card's event failed; its retry comes after the rest.
    assert stripe.post(old_card).status_code == 200
    container.process_inbox().run_once(limit=100)

    shown = subscription_shown(client, "acct_late_card")
    assert shown["payment_method"] == {"brand": "amex", "last4": "8431"}


def test_metrics_show_inbox_depth_oldest_age_and_parked_count(
    stripe: Stripe,
    client: TestClient[Any],
    double: StripeDouble,
    container: Container,
    clock: ControllableClock,
) -> None:
    # Every scrape reads afresh here (the answer is otherwise held for a second: test_metrics).
    container.metrics_scrapes.override(
        providers.Singleton(MetricsScrapes, read=container.inbox_admin.provided.backlog, max_age=0)
    )
    assert metrics(client)["billing_inbox_pending"] == 0
    sign_up(client, double, "acct_metrics", "growth")
    first = stripe.deliver_new()
    clock.advance(timedelta(seconds=90))
    sub_id = double.state.all("subscription")[0]["id"]
    double.portal_cancel(sub_id)
    second = stripe.deliver_new()
    clock.advance(timedelta(seconds=30))

    stored = metrics(client)

    assert stored["billing_inbox_pending"] == len(first) + len(second)
    assert stored["billing_inbox_oldest_pending_age_seconds"] == 120.0
    assert stored["billing_inbox_parked"] == 0
    assert "billing_inbox_applied" not in stored  # counting it would read the whole inbox

    # One event the worker cannot apply (a price outside the catalog) is parked.
    foreign = resource("price", id="price_not_ours", lookup_key=None)
    poison = json.loads(json.dumps(second[-1]))
    poison["id"] = "evt_poison"
    poison["data"]["object"]["items"]["data"][0]["price"] = foreign
    assert stripe.post(poison).status_code == 200
    report = container.process_inbox(max_attempts=1).run_once(limit=100)
    drained = metrics(client)

    assert report.parked == 1
    assert drained["billing_inbox_pending"] == 0
    assert drained["billing_inbox_oldest_pending_age_seconds"] == 0
    assert drained["billing_inbox_parked"] == 1
    [parked] = container.inbox_admin().list(InboxStatus.PARKED)
    assert parked.event_id == "evt_poison"
    assert parked.last_error is not None and "price_not_ours" in parked.last_error


def test_a_portal_change_later_in_the_same_second_as_our_own_call_is_not_lost(
    stripe: Stripe,
    client: TestClient[Any],
    double: StripeDouble,
    container: Container,
    clock: ControllableClock,
) -> None:
    sign_up(client, double, "acct_same_second", "growth")
    deliver_and_apply(stripe, container)
    sub_id = double.state.all("subscription")[0]["id"]
    clock.advance(timedelta(minutes=1, milliseconds=300))
    cancelled = client.post("/billing/subscription/cancel", headers=headers("acct_same_second"))
    assert cancelled.status_code == 200, cancelled.text
    clock.advance(timedelta(milliseconds=400))  # the same whole second at Stripe
    double.portal_resume(sub_id)

    report = deliver_and_apply(stripe, container)

    assert report.failed == 0
    assert double.subscription(sub_id)["cancel_at_period_end"] is False
    shown = subscription_shown(client, "acct_same_second")
    assert shown["cancel_at_period_end"] is False
