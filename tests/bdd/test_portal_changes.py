"""Steps of features/portal_changes.feature: what is done in the portal reaches our state."""

from __future__ import annotations

from pytest_bdd import scenarios, when

from responseiq_billing.domain.plans import Catalog
from responseiq_billing.domain.rules import ChangeTiming
from tests.bdd.conftest import Outcome, attempt, check_direction
from tests.bdd.drivers.base import BillingDriver
from tests.bdd.vocabulary import words

scenarios("portal_changes.feature")


@when(words("{name:Name} upgrades to {plan:Plan} {interval:Interval} in the billing portal"))
def upgrades_in_portal(
    driver: BillingDriver, catalog: Catalog, name: str, plan: str, interval: str
) -> None:
    check_direction(driver, catalog, name, plan, interval, ChangeTiming.IMMEDIATE)
    driver.portal_change_plan(name, plan, interval)


@when(words("{name:Name} downgrades to {plan:Plan} {interval:Interval} in the billing portal"))
def downgrades_in_portal(
    driver: BillingDriver, catalog: Catalog, name: str, plan: str, interval: str
) -> None:
    check_direction(driver, catalog, name, plan, interval, ChangeTiming.END_OF_PERIOD)
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
