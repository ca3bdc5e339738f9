"""What each write action costs: units of work opened and subscription writes (issue 11)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from types import TracebackType
from typing import Any, Self

import attrs
import pytest

from responseiq_billing.adapters.fake.repositories import InMemoryStore
from responseiq_billing.application import commands, use_cases
from responseiq_billing.application.ports import GatewayEvent
from tests.unit.conftest import Billing


@attrs.define
class Counts:
    units: int = 0
    subscription_writes: int = 0
    stale: int = 0  # events applied that were older than the state held


class _CountingSubscriptions:
    def __init__(self, inner: Any, counts: Counts) -> None:
        self._inner, self._counts = inner, counts

    def add(self, subscription: Any) -> None:
        self._counts.subscription_writes += 1
        self._inner.add(subscription)

    def save(self, subscription: Any) -> None:
        self._counts.subscription_writes += 1
        self._inner.save(subscription)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class _CountingUnit:
    def __init__(self, inner: Any, counts: Counts) -> None:
        self._inner, self._counts = inner, counts

    def __enter__(self) -> Self:
        self._counts.units += 1
        self._inner.__enter__()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._inner.__exit__(exc_type, exc, tb)

    @property
    def subscriptions(self) -> _CountingSubscriptions:
        # The store rebinds its repositories on commit: look them up each time.
        return _CountingSubscriptions(self._inner.subscriptions, self._counts)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class CountingBilling(Billing):
    """The unit-test harness with a unit-of-work factory that counts what it is asked for."""

    counts: Counts

    def uow(self) -> Any:
        return _CountingUnit(self.store.unit_of_work(), self.counts)

    @contextmanager
    def counting(self) -> Iterator[Counts]:
        self.counts = Counts()
        yield self.counts


@pytest.fixture
def billing(store: InMemoryStore, gateway: Any, clock: Any, catalog: Any) -> CountingBilling:
    harness = CountingBilling(store, gateway, clock, catalog)
    harness.counts = Counts()
    return harness


@pytest.fixture
def events(billing: CountingBilling) -> list[GatewayEvent]:
    """The gateway's events, collected instead of delivered inline (a webhook comes later)."""
    collected: list[GatewayEvent] = []
    billing.gateway.subscribe(collected.append)
    return collected


def deliver(billing: CountingBilling, events: list[GatewayEvent]) -> Counts:
    """Apply the events an action caused, later, as the webhook would: what does that write?"""
    with billing.counting() as counts:
        for event in events:
            counts.stale += billing.apply_event(event) is use_cases.ApplyOutcome.STALE
    events.clear()
    return counts


def assert_the_echo_writes_nothing(billing: CountingBilling, events: list[GatewayEvent]) -> None:
    """The webhooks of an action repeat what the action recorded: applied, nothing written."""
    echo = deliver(billing, events)
    assert (echo.subscription_writes, echo.stale) == (0, 0)


def subscribed(billing: CountingBilling, events: list[GatewayEvent]) -> None:
    billing.subscribe("acct_ada", "growth", "month")
    deliver(billing, events)
    billing.clock.advance(timedelta(days=3))


def test_an_upgrade_takes_at_most_four_units_of_work_and_one_subscription_write(
    billing: CountingBilling, events: list[GatewayEvent]
) -> None:
    subscribed(billing, events)
    with billing.counting() as counts:
        billing.change_plan(commands.ChangePlan("acct_ada", "business", "month"))
    assert billing.stored("acct_ada").plan_id == "business"
    assert counts.units <= 4
    assert counts.subscription_writes == 1
    assert_the_echo_writes_nothing(billing, events)


def test_an_upgrade_from_a_quote_takes_at_most_four_units_of_work_and_one_subscription_write(
    billing: CountingBilling, events: list[GatewayEvent]
) -> None:
    subscribed(billing, events)
    quote = billing.preview(commands.PreviewPlanChange("acct_ada", "business", "month"))
    with billing.counting() as counts:
        billing.change_plan(commands.ChangePlan("acct_ada", "business", "month", quote_id=quote.id))
    assert billing.stored("acct_ada").plan_id == "business"
    assert counts.units <= 4
    assert counts.subscription_writes == 1
    assert_the_echo_writes_nothing(billing, events)


def test_a_downgrade_takes_at_most_three_units_of_work_and_one_subscription_write(
    billing: CountingBilling, events: list[GatewayEvent]
) -> None:
    subscribed(billing, events)
    with billing.counting() as counts:
        billing.change_plan(commands.ChangePlan("acct_ada", "starter", "month"))
    assert billing.stored("acct_ada").pending_change is not None
    assert counts.units <= 3
    assert counts.subscription_writes == 1
    assert_the_echo_writes_nothing(billing, events)


def test_a_cancel_takes_at_most_three_units_of_work_and_one_subscription_write(
    billing: CountingBilling, events: list[GatewayEvent]
) -> None:
    subscribed(billing, events)
    with billing.counting() as counts:
        billing.cancel(commands.CancelSubscription("acct_ada"))
    assert billing.stored("acct_ada").cancel_at_period_end
    assert counts.units <= 3
    assert counts.subscription_writes == 1
    assert_the_echo_writes_nothing(billing, events)


def test_a_resume_takes_at_most_three_units_of_work_and_one_subscription_write(
    billing: CountingBilling, events: list[GatewayEvent]
) -> None:
    subscribed(billing, events)
    billing.cancel(commands.CancelSubscription("acct_ada"))
    deliver(billing, events)
    billing.clock.advance(timedelta(days=1))
    with billing.counting() as counts:
        billing.resume(commands.ResumeSubscription("acct_ada"))
    assert not billing.stored("acct_ada").cancel_at_period_end
    assert counts.units <= 3
    assert counts.subscription_writes == 1
    assert_the_echo_writes_nothing(billing, events)


def test_recording_a_view_identical_to_the_one_held_writes_nothing(
    billing: CountingBilling, events: list[GatewayEvent]
) -> None:
    subscribed(billing, events)
    view = billing.gateway_view("acct_ada")
    with billing.counting() as counts, billing.uow() as uow:
        use_cases.upsert_view(uow, "acct_ada", view)
        uow.commit()
    assert counts.subscription_writes == 1  # the first time: the held copy is older
    held = billing.stored("acct_ada")
    assert held.sync(view) is False
    with billing.counting() as counts, billing.uow() as uow:
        _, changed = use_cases.upsert_view(uow, "acct_ada", view)
        uow.commit()
    assert (changed, counts.subscription_writes) == (False, 0)
    assert billing.stored("acct_ada").version == held.version
