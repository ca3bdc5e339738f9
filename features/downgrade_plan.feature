@downgrade
Feature: Downgrade plan
  From the help article's table: "Downgrade plan", done in "ResponseIQ Settings or Stripe
  Portal", takes effect at the "End of current billing period — you keep current plan features
  until then".

  A change that lowers the price per period, or shortens the billing interval, is a downgrade.

  Stripe schedules the change itself. Paddle cannot schedule a plan change: ResponseIQ keeps the
  downgrade, and its worker switches the price at Paddle in the hour before the renewal, billing
  nothing then, so that the renewal bills the new price. Either way the customer keeps the
  current plan and its features until the renewal, and the same steps hold.

  Scenario: A downgrade keeps the current features until the period ends, then switches
    Given Ada's account is on Growth monthly, renewing on April 1
    And today is March 16
    When Ada downgrades to Starter monthly
    Then Ada is charged nothing now
    And Ada is on Growth monthly
    And Ada has the Growth features
    And Ada's subscription is scheduled to change to Starter monthly on April 1
    # on Paddle the worker has switched the price by now (March 31 at 23:15), billing nothing
    When time passes to March 31 at 23:59:59
    Then Ada is on Growth monthly
    And Ada has the Growth features
    And Ada's subscription is scheduled to change to Starter monthly on April 1
    And Ada is charged nothing on March 31
    When April 1 arrives
    Then Ada is on Starter monthly
    And Ada has the Starter features
    And Ada is charged $19.00 on April 1
    And Ada's subscription renews on May 1
    And Ada has no scheduled change

  Scenario Outline: What counts as a downgrade waits for the end of the period
    Given Ada's account is on <from> <from interval>, renewing on <renewal>
    And today is June 10
    When Ada downgrades to <to> <to interval>
    Then Ada is charged nothing now
    And Ada has the <from> features
    And Ada's subscription is scheduled to change to <to> <to interval> on <renewal>

    Examples: a cheaper plan, or a shorter interval
      | from     | from interval | to      | to interval | renewal       |
      | Business | monthly       | Growth  | monthly     | June 15       |
      | Business | monthly       | Starter | monthly     | June 15       |
      | Growth   | yearly        | Growth  | monthly     | March 1, 2027 |
      | Business | yearly        | Starter | yearly      | March 1, 2027 |

  Scenario: Cancelling a scheduled downgrade keeps the current plan at renewal
    Given Ada's account is on Growth monthly, renewing on April 1
    And Ada has scheduled a downgrade to Starter monthly
    And today is March 20
    When Ada cancels the scheduled downgrade
    Then Ada has no scheduled change
    When April 1 arrives
    Then Ada is on Growth monthly
    And Ada has the Growth features
    And Ada is charged $49.00 on April 1

  Scenario: A second downgrade replaces the first one
    Given Ada's account is on Business monthly, renewing on April 1
    And Ada has scheduled a downgrade to Growth monthly
    And today is March 20
    When Ada downgrades to Starter monthly
    Then Ada's subscription is scheduled to change to Starter monthly on April 1
    And Ada has the Business features

  Scenario: There is no scheduled downgrade to cancel
    Given Ada's account is on Growth monthly, renewing on April 1
    And today is March 20
    When Ada tries to cancel a scheduled downgrade
    Then it is refused because there is no scheduled change to undo
    And Ada is on Growth monthly

  Scenario: A preview of a downgrade says nothing is due until the period ends
    Given Ada's account is on Growth monthly, renewing on April 1
    And today is March 16
    When Ada previews a change to Starter monthly
    Then the preview says it takes effect on April 1 for $0.00
