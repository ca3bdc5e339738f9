@upgrade
Feature: Upgrade plan
  From the help article's table: "Upgrade plan", done in "ResponseIQ Settings or Stripe
  Portal", takes effect "Immediately — prorated charge for the remainder of the billing cycle".

  The prorated charge is worked out as Stripe does, to the second: the unused time of the old
  plan is credited, the remaining time of the new plan is charged, each line rounded half away
  from zero to the cent, over the whole current period (March 1 to April 1 is 2,678,400 s).
  Paddle prorates to the minute (the minute under way counts as remaining); at every moment
  below that comes to the same cents. Paddle prorates at the moment of the change only: it takes
  no earlier moment to prorate at, so a preview confirmed later is charged the fresh proration.

  @proration
  Scenario: Upgrading mid-cycle charges the prorated difference now and switches features now
    Given Ada's account is on Growth monthly, renewing on April 1
    And today is March 16
    # 16 of 31 days remain: credit 4900 × 16/31 = 2529.03 → $25.29,
    # charge 9900 × 16/31 = 5109.68 → $51.10; due now $51.10 − $25.29 = $25.81
    When Ada upgrades to Business monthly
    Then Ada is on Business monthly
    And Ada has the Business features
    And Ada is charged $25.81 now
    And Ada's subscription renews on April 1

  @proration
  Scenario Outline: The prorated charge for the rest of the cycle, to the cent
    Given Ada's account is on <from> monthly, renewing on April 1
    And today is <today>
    When Ada upgrades to <to> monthly
    Then Ada is charged <due> now
    And Ada has the <to> features

    # remaining = seconds from today to April 1; each line = price × remaining / 2,678,400
    Examples:
      | from    | to       | today                | due    |
      | Starter | Growth   | March 16             | $15.48 |
      | Starter | Business | March 16             | $41.29 |
      | Growth  | Business | March 10             | $35.49 |
      | Growth  | Business | March 20 at 13:45:30 | $18.43 |
      | Growth  | Business | March 31 at 12:00    | $0.81  |

    # March 10: 22 days remain; credit 3477.42 → $34.77, charge 7025.81 → $70.26, due $35.49
    # (rounding the difference instead would give $35.48: each line is rounded on its own).
    # March 20 at 13:45:30: 987,270 s remain; credit 1806.16 → $18.06, charge 3649.18 → $36.49.

  @proration
  Scenario: Moving from monthly to yearly billing starts a new yearly period now
    Given Ada's account is on Growth monthly, renewing on April 1
    And today is March 16
    # a longer interval restarts the cycle today: credit $25.29 for unused March,
    # charge the whole year $490.00; due now $464.71
    When Ada upgrades to Growth yearly
    Then Ada is on Growth yearly
    And Ada is charged $464.71 now
    And Ada's subscription renews on March 16, 2027

  Scenario: A declined upgrade payment leaves the plan unchanged
    Given Ada's account is on Growth monthly, renewing on April 1
    And today is March 16
    And Ada's bank will decline the next payment
    When Ada tries to upgrade to Business monthly
    Then it is refused because the card was declined
    And Ada is on Growth monthly
    And Ada has the Growth features
    And Ada is charged nothing now
    And Ada's subscription renews on April 1

  @proration
  Scenario: Confirming a preview charges the amount previewed, where the gateway prorates at its moment
    Given Ada's account is on Growth monthly, renewing on April 1
    And today is March 16 at 10:00
    When Ada previews a change to Business monthly
    Then the preview says it takes effect now for $25.14
    # confirmed 20 minutes later, a fresh proration would be $25.11; Stripe honours the preview
    When time passes to March 16 at 10:20
    And Ada confirms the previewed change
    Then Ada is on Business monthly
    And Ada is charged $25.14 now, or on Paddle, which prorates at the moment of the change and not at the preview's, $25.11

  Scenario: A preview cannot be confirmed once it has expired
    Given Ada's account is on Growth monthly, renewing on April 1
    And today is March 16 at 10:00
    And Ada has previewed a change to Business monthly
    When time passes to March 16 at 10:45
    And Ada tries to confirm the previewed change
    Then it is refused because the quoted price has expired
    And Ada is on Growth monthly
    And Ada is charged nothing now

  Scenario: Upgrading replaces a downgrade that was scheduled
    Given Ada's account is on Growth monthly, renewing on April 1
    And Ada has scheduled a downgrade to Starter monthly
    And today is March 16
    When Ada upgrades to Business monthly
    Then Ada is on Business monthly
    And Ada has no scheduled change
    And Ada is charged $25.81 now

  Scenario Outline: A change to the same plan or to an unknown plan is refused
    Given Ada's account is on Growth monthly, renewing on April 1
    And today is March 16
    When Ada tries to change to <plan> <interval>
    Then it is refused because <reason>
    And Ada is on Growth monthly
    And Ada is charged nothing now

    Examples:
      | plan       | interval | reason                           |
      | Growth     | monthly  | that is the current plan already |
      | Enterprise | monthly  | there is no such plan            |

  Scenario: A subscription set to cancel cannot be upgraded until it is resumed
    Given Ada's account is on Growth monthly, renewing on April 1
    And Ada has cancelled her subscription
    And today is March 16
    When Ada tries to upgrade to Business monthly
    Then it is refused because the subscription is not active
    And Ada has the Growth features
