@payment_method
Feature: Update payment method
  From the help article's table: "Update payment method", done in the "Stripe Customer
  Portal", takes effect "Immediately — next charge uses the new method".
  Only the card's brand and last four digits are ever shown; Stripe keeps the card.

  Scenario: A card replaced in the billing portal is on file at once
    Given Ada's account is on Growth monthly, renewing on April 1, paid by Visa
    And today is March 16
    When Ada replaces her card with a Mastercard in the billing portal
    Then Ada's card on file is Mastercard ending 4444

  Scenario: The next charge uses the new card
    Given Ada's account is on Growth monthly, renewing on April 1, paid by Visa
    And today is March 16
    When Ada replaces her card with an Amex in the billing portal
    And April 1 arrives
    Then Ada is charged $49.00 on April 1
    And Ada's April 1 payment was taken from Amex ending 8431

  Scenario: A card replaced from the billing page is on file at once
    Given Ada's account is on Growth monthly, renewing on April 1, paid by Visa
    And today is March 16
    When Ada replaces her card with a Mastercard on the billing page
    Then Ada's card on file is Mastercard ending 4444

  Scenario: An upgrade right after the change is paid with the new card
    Given Ada's account is on Growth monthly, renewing on April 1, paid by Visa
    And today is March 16
    When Ada replaces her card with a Mastercard on the billing page
    And Ada upgrades to Business monthly
    Then Ada is charged $25.81 now
    And Ada's March 16 payment was taken from Mastercard ending 4444

  Scenario: An account that never subscribed has no card to replace
    Given Carol has never subscribed
    When Carol tries to replace her card with a Visa on the billing page
    Then it is refused because the account has never subscribed
