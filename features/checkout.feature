@checkout
Feature: Start a subscription at checkout
  From the help article: "When you enter your payment information during checkout or plan
  upgrades, your card details are sent directly from your browser to Stripe's servers",
  and "What ResponseIQ stores is a Stripe customer ID and subscription ID".
  A customer picks a plan, pays on the payment page, and the plan's features are theirs at once.

  Scenario: Subscribing to Growth monthly gives Growth features now and renews in a month
    Given today is March 1
    When Ada subscribes to Growth monthly, paying by Visa
    Then Ada is on Growth monthly
    And Ada has the Growth features
    And Ada's subscription renews on April 1
    And Ada is charged $49.00 now
    And Ada's card on file is Visa ending 4242

  Scenario Outline: Each plan's price and renewal date at checkout
    Given today is March 1
    When Ada subscribes to <plan> <interval>, paying by Mastercard
    Then Ada is charged <price> now
    And Ada's subscription renews on <renewal>
    And Ada can use <seats> seats and <responses> responses a month

    Examples:
      | plan     | interval | price   | renewal       | seats     | responses |
      | Starter  | monthly  | $19.00  | April 1       | 2         | 1,000     |
      | Starter  | yearly   | $190.00 | March 1, 2027 | 2         | 1,000     |
      | Growth   | yearly   | $490.00 | March 1, 2027 | 10        | 10,000    |
      | Business | monthly  | $99.00  | April 1       | unlimited | 100,000   |
      | Business | yearly   | $990.00 | March 1, 2027 | unlimited | 100,000   |

  Scenario: A subscription started on the 31st renews on the last day of a shorter month
    Given today is January 31
    When Ada subscribes to Starter monthly, paying by Visa
    Then Ada's subscription renews on February 28
    When February 28 arrives
    Then Ada is charged $19.00 on February 28
    And Ada's subscription renews on March 31

  Scenario: A declined card at checkout starts nothing
    Given today is March 1
    And Ada's bank will decline the next payment
    When Ada tries to subscribe to Growth monthly, paying by Visa
    Then it is refused because the card was declined
    And Ada has no access
    And Ada is charged nothing now

  Scenario: An account with a subscription cannot check out a second one
    Given Ada's account is on Growth monthly, renewing on April 1
    And today is March 16
    When Ada tries to subscribe to Business monthly, paying by Visa
    Then it is refused because the account already has a subscription
    And Ada is on Growth monthly

  Scenario: A plan that is not on the pricing page cannot be bought
    Given today is March 1
    When Ada tries to subscribe to Enterprise monthly, paying by Visa
    Then it is refused because there is no such plan
    And Ada has no access

  Scenario: After a cancelled subscription has ended, a new checkout starts a new one
    Given Ada's account is on Growth monthly, renewing on April 1
    And Ada has cancelled her subscription
    And today is April 10
    When Ada subscribes to Starter monthly, paying by Visa
    Then Ada is on Starter monthly
    And Ada has the Starter features
    And Ada's subscription renews on May 10
    And Ada is charged $19.00 now
