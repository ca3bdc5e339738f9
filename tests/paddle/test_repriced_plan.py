"""`billing paddle setup` reprices a plan while the service runs: it archives the plan's price and
creates another. The Paddle adapter listed the active prices once and kept them, so the running
process went on naming the archived one, which Paddle refuses (`price_not_found`). A refusal is
now a miss: the prices are listed again, once per call, and the write sent once more with the new
price; Paddle takes no idempotency key, and each write stays safe to repeat by itself.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from responseiq_billing.adapters.fake.clock import ControllableClock
from responseiq_billing.adapters.paddle.gateway import PaddleGateway
from responseiq_billing.adapters.paddle.setup import run_setup
from responseiq_billing.application.ports import UiMode
from responseiq_billing.domain.errors import QuoteMismatch
from responseiq_billing.domain.plans import Catalog
from responseiq_billing.domain.subscription import GatewaySubscription
from tests.contract.conftest import repriced
from tests.paddle_double import PaddleDouble

START = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


@pytest.fixture
def setup(catalog: Catalog) -> Iterator[tuple[PaddleDouble, PaddleGateway, ControllableClock]]:
    clock = ControllableClock(START)
    double = PaddleDouble(clock).start()
    double.seed_catalog(catalog)
    yield double, PaddleGateway(double.client(), catalog, clock), clock
    double.stop()
    assert double.violations == []


def reprice(double: PaddleDouble, catalog: Catalog, plan: str, amount: int) -> tuple[str, str]:
    """`billing paddle setup` with one monthly price changed: (archived id, new id)."""
    [old] = [
        p["id"]
        for p in double.state.prices.values()
        if p["custom_data"] == {"plan_id": plan, "interval": "month"} and p["status"] == "active"
    ]
    report = run_setup(
        double.client(), repriced(catalog, plan, "month", amount), notification_url=None
    )
    assert report.updated == (f"price {plan}/month archived",)
    [new] = [
        p["id"]
        for p in double.state.prices.values()
        if p["custom_data"] == {"plan_id": plan, "interval": "month"} and p["status"] == "active"
    ]
    return old, new


def routes(seen: list) -> list[str]:  # type: ignore[type-arg]
    return [r.route for r in seen]


def subscribe(double: PaddleDouble, gateway: PaddleGateway, catalog: Catalog, plan: str) -> str:
    customer = gateway.ensure_customer(f"acct_{plan}", idempotency_key=f"customer:{plan}")
    session = gateway.start_checkout(
        customer_ref=customer, account_id=f"acct_{plan}", price=catalog.price(plan, "month"),
        success_url="https://x/ok", cancel_url="https://x/no", ui_mode=UiMode.HOSTED,
        idempotency_key=f"checkout:{plan}",
    )  # fmt: skip
    double.pay(session.id)
    outcome = gateway.get_checkout(session.id)
    assert outcome.subscription is not None
    return outcome.subscription.subscription_ref


def test_a_checkout_for_the_repriced_plan_sells_the_new_price_with_one_listing_and_one_retry(
    setup: tuple[PaddleDouble, PaddleGateway, ControllableClock], catalog: Catalog
) -> None:
    double, gateway, _clock = setup
    subscribe(double, gateway, catalog, "starter")  # the gateway has listed its prices
    old, new = reprice(double, catalog, "growth", 5900)
    customer = gateway.ensure_customer("acct_new", idempotency_key="customer:new")

    def start() -> str:
        return gateway.start_checkout(
            customer_ref=customer, account_id="acct_new", price=catalog.price("growth", "month"),
            success_url="https://x/ok", cancel_url="https://x/no", ui_mode=UiMode.HOSTED,
            idempotency_key="checkout:new:1",
        ).id  # fmt: skip

    with double.recording() as first:
        session = start()
    with double.recording() as again:
        assert start() == session  # the same command: found by its key, not made twice

    assert routes(first) == [
        "GET /transactions",  # an open checkout of this command? none
        "POST /transactions",  # the archived price: refused
        "GET /prices",  # the miss: the active prices listed again
        "POST /transactions",
    ]
    posted = [r.body["items"][0]["price_id"] for r in first if r.method == "POST"]
    assert posted == [old, new]
    assert routes(again) == ["GET /transactions"]
    double.pay(session)
    sub = gateway.get_checkout(session).subscription
    assert sub is not None and sub.plan_id == "growth"
    [invoice] = gateway.list_invoices(customer_ref=customer, limit=5, starting_after=None).items
    assert invoice.amount_paid.amount == 5900


def test_an_upgrade_and_a_kept_downgrade_to_the_repriced_plan_use_the_new_price(
    setup: tuple[PaddleDouble, PaddleGateway, ControllableClock], catalog: Catalog
) -> None:
    double, gateway, clock = setup
    low = subscribe(double, gateway, catalog, "starter")
    high = subscribe(double, gateway, catalog, "business")
    old, new = reprice(double, catalog, "growth", 5900)
    clock.set(START + timedelta(days=5))

    with double.recording() as up:
        upgraded = gateway.upgrade(
            subscription_ref=low, target=catalog.price("growth", "month"),
            proration_at=clock.now(), idempotency_key="u",
        )  # fmt: skip
    with double.recording() as down:
        applied = gateway.apply_plan_for_renewal(
            subscription_ref=high, target=catalog.price("growth", "month"), idempotency_key="r"
        )

    read, write, card = "GET /subscriptions/{id}", "PATCH /subscriptions/{id}", "GET /transactions"
    # Read, the archived price refused, the listing (once per call), the new price, and the
    # view's card (the newest completed transaction).
    assert routes(up) == [read, write, "GET /prices", write, card]
    assert routes(down) == [read, write, card]  # listed by the upgrade already: no miss now
    assert [r.body["items"][0]["price_id"] for r in up if r.route == write] == [old, new]
    assert (upgraded.plan_id, applied.plan_id) == ("growth", "growth")
    assert double.state.subscriptions[high]["items"][0]["price"]["id"] == new

    # A retried upgrade finds Growth in place and charges nothing.
    with double.recording() as retried:
        gateway.upgrade(
            subscription_ref=low, target=catalog.price("growth", "month"),
            proration_at=clock.now(), idempotency_key="u",
        )  # fmt: skip
    assert write not in routes(retried)


def test_a_preview_made_before_the_reprice_is_refused_not_charged_at_another_amount(
    setup: tuple[PaddleDouble, PaddleGateway, ControllableClock], catalog: Catalog
) -> None:
    double, gateway, clock = setup
    low = subscribe(double, gateway, catalog, "starter")
    clock.set(START + timedelta(days=5))
    quoted_at = clock.now()
    gateway.preview_plan_change(
        subscription_ref=low, target=catalog.price("growth", "month"), proration_at=quoted_at
    )
    clock.set(quoted_at + timedelta(minutes=2))
    reprice(double, catalog, "growth", 5900)

    with pytest.raises(QuoteMismatch, match="preview the change again"):
        gateway.upgrade(
            subscription_ref=low, target=catalog.price("growth", "month"),
            proration_at=quoted_at, idempotency_key="u",
        )  # fmt: skip
    view: GatewaySubscription = gateway.get_subscription(low)
    assert view.plan_id == "starter"
    invoices = gateway.list_invoices(customer_ref=view.customer_ref, limit=5, starting_after=None)
    assert len(invoices.items) == 1  # the first payment only
