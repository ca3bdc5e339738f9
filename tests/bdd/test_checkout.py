"""Steps of features/checkout.feature: starting a subscription."""

from __future__ import annotations

from pytest_bdd import scenarios, then, when

from tests.bdd.conftest import Outcome, attempt
from tests.bdd.drivers.base import BillingDriver
from tests.bdd.vocabulary import words

scenarios("checkout.feature")


@when(words("{name:Name} subscribes to {plan:Plan} {interval:Interval}, paying by {card:Card}"))
def subscribes(driver: BillingDriver, name: str, plan: str, interval: str, card: str) -> None:
    driver.subscribe(name, plan, interval, card)


@when(
    words(
        "{name:Name} tries to subscribe to {plan:Plan} {interval:Interval}, paying by {card:Card}"
    ),
    target_fixture="outcome",
)
def tries_to_subscribe(
    driver: BillingDriver, name: str, plan: str, interval: str, card: str
) -> Outcome:
    return attempt(lambda: driver.subscribe(name, plan, interval, card))


def _count(text: str) -> int | None:
    return None if text == "unlimited" else int(text.replace(",", ""))


@then(words("{name:Name} can use {seats} seats and {responses} responses a month"))
def can_use(driver: BillingDriver, name: str, seats: str, responses: str) -> None:
    now = driver.entitlements(name)
    assert (now.seats, now.monthly_responses) == (_count(seats), _count(responses)), now
