"""`billing paddle setup` against the Paddle double: creates what is missing, changes nothing twice."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import attrs
import pytest

from responseiq_billing.adapters.fake.clock import ControllableClock
from responseiq_billing.adapters.paddle.setup import EVENTS, run_setup
from responseiq_billing.domain.money import Money
from responseiq_billing.domain.plans import Catalog, Interval, default_catalog
from tests.paddle_double import WEBHOOK_SECRET, PaddleDouble

URL = "https://billing.example.com/webhooks/paddle"


@pytest.fixture
def double() -> Iterator[PaddleDouble]:
    double = PaddleDouble(ControllableClock(datetime(2026, 3, 1, tzinfo=UTC))).start()
    yield double
    double.stop()
    assert double.violations == []


def test_setup_creates_a_product_and_prices_per_plan_and_the_notification_destination(
    double: PaddleDouble,
) -> None:
    catalog = default_catalog()

    report = run_setup(double.client(), catalog, notification_url=URL)

    assert sorted(p["custom_data"]["plan_id"] for p in double.state.products.values()) == [
        "business",
        "growth",
        "starter",
    ]
    entries = {
        (p["custom_data"]["plan_id"], p["custom_data"]["interval"]): int(p["unit_price"]["amount"])
        for p in double.state.prices.values()
    }
    assert entries == {(p.plan_id, p.interval.value): p.amount.amount for p in catalog.all_prices()}
    [setting] = double.state.notification_settings.values()
    assert setting["destination"] == URL
    assert sorted(e["name"] for e in setting["subscribed_events"]) == sorted(EVENTS)
    assert report.endpoint_secret == WEBHOOK_SECRET


def test_running_setup_again_changes_nothing(double: PaddleDouble) -> None:
    catalog = default_catalog()
    run_setup(double.client(), catalog, notification_url=URL)
    writes_before = [r for r in double.requests if r.method != "GET"]

    report = run_setup(double.client(), catalog, notification_url=URL)

    assert (report.created, report.updated) == ((), ())
    assert [r for r in double.requests if r.method != "GET"] == writes_before
    assert report.endpoint_secret is None  # shown once, when the destination is created


def test_a_changed_amount_archives_the_old_price_and_creates_a_new_one(
    double: PaddleDouble,
) -> None:
    catalog = default_catalog()
    run_setup(double.client(), catalog, notification_url=None)
    growth = catalog.plan("growth")
    dearer = attrs.evolve(growth, prices={**growth.prices, Interval.MONTH: Money(5900, "USD")})
    changed = Catalog(tuple(dearer if p.id == "growth" else p for p in catalog.plans))

    report = run_setup(double.client(), changed, notification_url=None)

    assert report.created == ("price growth/month",)
    active = [
        p for p in double.state.prices.values()
        if p["status"] == "active" and p["custom_data"] == {"plan_id": "growth", "interval": "month"}
    ]  # fmt: skip
    assert [int(p["unit_price"]["amount"]) for p in active] == [5900]
