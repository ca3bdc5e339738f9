"""Steps of features/portal_changes.feature: what is done in the portal reaches our state."""

from __future__ import annotations

from pytest_bdd import scenarios, when

from tests.bdd.conftest import Outcome, attempt
from tests.bdd.drivers.base import BillingDriver
from tests.bdd.vocabulary import words

scenarios("portal_changes.feature")


@when(words("{name:Name} upgrades to {plan:Plan} {interval:Interval} in the billing portal"))
@when(words("{name:Name} downgrades to {plan:Plan} {interval:Interval} in the billing portal"))
def changes_plan_in_portal(driver: BillingDriver, name: str, plan: str, interval: str) -> None:
    driver.portal_change_plan(name, plan, interval)


@when(
    words("{name:Name} tries to upgrade to {plan:Plan} {interval:Interval} in the billing portal"),
    target_fixture="outcome",
)
def tries_to_upgrade_in_portal(
    driver: BillingDriver, name: str, plan: str, interval: str
) -> Outcome:
    return attempt(lambda: driver.portal_change_plan(name, plan, interval))


@when(words("{name:Name} cancels {pronoun:Pronoun} subscription in the billing portal"))
def cancels_in_portal(driver: BillingDriver, name: str, pronoun: str) -> None:
    driver.portal_cancel(name)


@when(words("{name:Name} renews {pronoun:Pronoun} subscription in the billing portal"))
def renews_in_portal(driver: BillingDriver, name: str, pronoun: str) -> None:
    driver.portal_resume(name)
