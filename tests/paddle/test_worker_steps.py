"""Time passing on Paddle with the worker's step on the way (`tests.paddle_double.worker_steps`),
as the Gherkin suite's Paddle driver and the demo let it pass."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from responseiq_billing.adapters.fake.clock import ControllableClock
from responseiq_billing.adapters.fake.repositories import InMemoryStore
from responseiq_billing.domain.plans import Catalog
from tests.bdd.drivers.paddle import PaddleDriver
from tests.paddle_double.worker_steps import WORKER_TICK_BEFORE_RENEWAL, worker_moments

MAR_1 = datetime(2026, 3, 1, tzinfo=UTC)
APR_1 = datetime(2026, 4, 1, tzinfo=UTC)


@pytest.fixture
def paddle(catalog: Catalog) -> Iterator[PaddleDriver]:
    driver = PaddleDriver(
        catalog=catalog, clock=ControllableClock(MAR_1), uow=InMemoryStore().unit_of_work
    )
    driver.subscribe("ada", "growth", "month", "visa")
    yield driver
    driver.close()
    assert driver.double.violations == []


def paddle_plan(paddle: PaddleDriver) -> str:
    """The plan of the price Paddle itself holds for Ada's subscription (not the core's view)."""
    with paddle.uow() as uow:
        sub = uow.subscriptions.for_account("ada")
    assert sub is not None
    return paddle.paddle.get_subscription(sub.subscription_ref).plan_id


def test_the_worker_switches_the_price_in_its_window_billing_nothing(paddle: PaddleDriver) -> None:
    paddle.advance_to(datetime(2026, 3, 16, tzinfo=UTC))
    paddle.change_plan("ada", "starter", "month")
    tick = APR_1 - WORKER_TICK_BEFORE_RENEWAL  # a quarter of an hour into the hour before

    assert worker_moments(paddle.uow, paddle.now(), APR_1) == [tick]
    assert worker_moments(paddle.uow, paddle.now(), tick - timedelta(seconds=1)) == []

    paddle.advance_to(tick - timedelta(minutes=1))
    assert paddle_plan(paddle) == "growth"
    paddle.advance_to(tick)
    assert paddle_plan(paddle) == "starter"  # switched at Paddle for the renewal ...
    assert [i.created for i in paddle.invoices("ada")] == [MAR_1]  # ... billing nothing
    assert paddle.subscription("ada").plan == "growth"  # the core keeps Growth until then
    assert paddle.entitlements("ada").plan == "growth"

    paddle.advance_to(APR_1)
    renewal = paddle.invoices("ada")[0]
    assert (renewal.created, renewal.amount_paid, renewal.reason) == (
        APR_1,
        1900,
        "subscription_cycle",
    )
    assert paddle.entitlements("ada").plan == "starter"


def test_a_downgrade_made_inside_the_window_is_switched_at_once(paddle: PaddleDriver) -> None:
    """A downgrade made 40 minutes before the renewal: the worker's next tick is now, not a
    moment already past (which would let Paddle renew at the old price)."""
    paddle.advance_to(APR_1 - timedelta(minutes=40))
    paddle.change_plan("ada", "starter", "month")

    assert worker_moments(paddle.uow, paddle.now(), APR_1) == [paddle.now()]

    paddle.advance_to(APR_1)
    assert paddle.invoices("ada")[0].amount_paid == 1900
    assert paddle.subscription("ada").plan == "starter"
