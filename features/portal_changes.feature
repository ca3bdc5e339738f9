@portal
Feature: Changes made in the customer portal reach ResponseIQ
  From the help article: "From the portal, you can update your payment method, view past
  invoices, download receipts, and change your subscription plan. All changes take effect
  according to your billing cycle — upgrades are prorated, and downgrades take effect at the
  end of the current period."
  What a customer does in the portal shows in ResponseIQ: the plan, features and dates in force.

  Not every gateway's portal changes plans. Paddle's customer portal updates the card, cancels
  (and undoes a cancellation before it takes effect) and lists invoices, but has no plan change:
  on Paddle the customer changes plan in ResponseIQ (see "Upgrade plan" and "Downgrade plan").
  The scenarios tagged @portal_plan_change are therefore not run on Paddle.

  @proration @portal_plan_change
  Scenario: An upgrade in the portal is prorated and switches features at once
    Given Ada's account is on Growth monthly, renewing on April 1
    And today is March 16
    When Ada upgrades to Business monthly in the billing portal
    Then Ada is on Business monthly
    And Ada has the Business features
    And Ada is charged $25.81 now
    And Ada's subscription renews on April 1

  @portal_plan_change
  Scenario: A downgrade in the portal waits for the end of the period
    Given Ada's account is on Business monthly, renewing on April 1
    And today is March 16
    When Ada downgrades to Growth monthly in the billing portal
    Then Ada's subscription is scheduled to change to Growth monthly on April 1
    And Ada has the Business features
    And Ada is charged nothing now
    When April 1 arrives
    Then Ada is on Growth monthly
    And Ada has the Growth features
    And Ada is charged $49.00 on April 1

  Scenario: A cancellation in the portal keeps access until the period ends
    Given Ada's account is on Growth monthly, renewing on April 1
    And today is March 16
    When Ada cancels her subscription in the billing portal
    Then Ada's subscription ends on April 1
    And Ada keeps access until April 1
    When April 1 arrives
    Then Ada has no access
    And Ada's subscription has ended

  Scenario: Renewing in the portal undoes a cancellation made in ResponseIQ
    Given Ada's account is on Growth monthly, renewing on April 1
    And Ada has cancelled her subscription
    And today is March 20
    When Ada renews her subscription in the billing portal
    Then Ada's subscription renews on April 1
    When April 1 arrives
    Then Ada is charged $49.00 on April 1
    And Ada has the Growth features

  Scenario: A cancellation in the portal supersedes a downgrade scheduled in ResponseIQ
    Given Ada's account is on Growth monthly, renewing on April 1
    And Ada has scheduled a downgrade to Starter monthly
    And today is March 16
    When Ada cancels her subscription in the billing portal
    Then Ada has no scheduled change
    And Ada's subscription ends on April 1
    And Ada has the Growth features

  Scenario: A card replaced in the portal shows in ResponseIQ and pays the next renewal
    Given Ada's account is on Growth monthly, renewing on April 1, paid by Visa
    And today is March 16
    When Ada replaces her card with a Mastercard in the billing portal
    Then Ada's card on file is Mastercard ending 4444
    When April 1 arrives
    Then Ada's April 1 payment was taken from Mastercard ending 4444

  @portal_plan_change
  Scenario: An upgrade in the portal that the bank declines changes nothing
    Given Ada's account is on Growth monthly, renewing on April 1
    And today is March 16
    And Ada's bank will decline the next payment
    When Ada tries to upgrade to Business monthly in the billing portal
    Then it is refused because the card was declined
    And Ada is on Growth monthly
    And Ada has the Growth features
    And Ada is charged nothing now
