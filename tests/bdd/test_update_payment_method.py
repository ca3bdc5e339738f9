"""Steps of features/update_payment_method.feature: the row "Update payment method"."""

from __future__ import annotations

from pytest_bdd import scenarios, when

from tests.bdd.conftest import Outcome, attempt
from tests.bdd.drivers.base import BillingDriver
from tests.bdd.vocabulary import words

scenarios("update_payment_method.feature")


@when(words("{name:Name} replaces {pronoun:Pronoun} card with a {card:Card} on the billing page"))
@when(words("{name:Name} replaces {pronoun:Pronoun} card with an {card:Card} on the billing page"))
def replaces_card_on_billing_page(
    driver: BillingDriver, name: str, pronoun: str, card: str
) -> None:
    driver.update_payment_method(name, card)


@when(
    words(
        "{name:Name} tries to replace {pronoun:Pronoun} card with a {card:Card} on the billing page"
    ),
    target_fixture="outcome",
)
def tries_to_replace_card(driver: BillingDriver, name: str, pronoun: str, card: str) -> Outcome:
    return attempt(lambda: driver.update_payment_method(name, card))
