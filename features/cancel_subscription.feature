@cancel
Feature: Cancel subscription
  From the help article's table: "Cancel subscription", done in the "Stripe Customer Portal",
  takes effect at the "End of current billing period — access continues until the period ends".

  Scenario: Cancelling keeps access until the period ends, then access ends
    Given Ada's account is on Growth monthly, renewing on April 1
    And today is March 16
    When Ada cancels her subscription
    Then Ada's subscription ends on April 1
    And Ada has the Growth features
    And Ada keeps access until April 1
    When time passes to March 31 at 23:59:59
    Then Ada has the Growth features
    When April 1 arrives
    Then Ada has no access
    And Ada's subscription has ended
    And Ada is charged nothing on April 1

  Scenario: Resuming before the period ends keeps the subscription renewing
    Given Ada's account is on Growth monthly, renewing on April 1
    And Ada has cancelled her subscription
    And today is March 20
    When Ada resumes her subscription
    Then Ada's subscription renews on April 1
    When April 1 arrives
    Then Ada has the Growth features
    And Ada is charged $49.00 on April 1
    And Ada's subscription renews on May 1

  Scenario Outline: A cancelled subscription cannot be resumed once its period has ended
    Given Ada's account is on Growth monthly, renewing on April 1
    And Ada has cancelled her subscription
    And today is <today>
    When Ada tries to resume her subscription
    Then it is refused because there is no cancellation to undo
    And Ada has no access

    Examples:
      | today    |
      | April 1  |
      | April 20 |

  Scenario: Cancelling supersedes a scheduled downgrade
    Given Ada's account is on Growth monthly, renewing on April 1
    And Ada has scheduled a downgrade to Starter monthly
    And today is March 16
    When Ada cancels her subscription
    Then Ada has no scheduled change
    And Ada's subscription ends on April 1
    And Ada has the Growth features
    When April 1 arrives
    Then Ada has no access
    And Ada is charged nothing on April 1

  Scenario: Cancelling twice is refused
    Given Ada's account is on Growth monthly, renewing on April 1
    And Ada has cancelled her subscription
    And today is March 16
    When Ada tries to cancel her subscription
    Then it is refused because the subscription is already set to cancel
    And Ada's subscription ends on April 1

  Scenario: A subscription that is not set to cancel has nothing to resume
    Given Ada's account is on Growth monthly, renewing on April 1
    And today is March 16
    When Ada tries to resume her subscription
    Then it is refused because there is no cancellation to undo
    And Ada's subscription renews on April 1

  Scenario: An account that never subscribed has nothing to cancel
    Given Carol has never subscribed
    When Carol tries to cancel her subscription
    Then it is refused because there is no subscription
