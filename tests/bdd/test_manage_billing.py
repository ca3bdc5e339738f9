"""Steps of features/manage_billing.feature: Manage Billing opens the customer portal."""

from __future__ import annotations

from pytest_bdd import scenarios, then, when

from tests.bdd.conftest import Outcome, attempt
from tests.bdd.drivers.base import BILLING_PAGE, BillingDriver, PortalFacts
from tests.bdd.vocabulary import words

scenarios("manage_billing.feature")


@when(words("{name:Name} opens Manage Billing"), target_fixture="portal")
def opens_manage_billing(driver: BillingDriver, name: str) -> PortalFacts:
    return driver.open_billing_portal(name)


@when(words("{name:Name} tries to open Manage Billing"), target_fixture="outcome")
def tries_to_open_manage_billing(driver: BillingDriver, name: str) -> Outcome:
    return attempt(lambda: driver.open_billing_portal(name))


@then(words("the billing portal shows {name:Name}'s billing"))
def portal_shows(portal: PortalFacts, name: str) -> None:
    assert portal.url, portal
    assert portal.account == name, portal


@then(words("the billing portal shows {name:Name}'s billing and not {other:Name}'s"))
def portal_shows_only(portal: PortalFacts, name: str, other: str) -> None:
    portal_shows(portal, name)
    assert portal.account != other, portal


@then(
    words(
        "leaving the portal returns {name:Name} to the billing settings: by the portal's link "
        "back, or on {other:Gateway}, {rule}, by closing the portal's tab"
    )
)
def portal_returns_to_settings(
    portal: PortalFacts, gateway: str, name: str, other: str, rule: str
) -> None:
    if gateway == other:
        # No link back at all: Manage Billing opens the portal in a tab of its own, and
        # closing that tab is the way back (as the help article says).
        assert portal.returns_to is None, portal
    else:
        assert portal.returns_to == BILLING_PAGE, portal
