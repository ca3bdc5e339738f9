@portal
Feature: Manage Billing opens the customer portal
  From the help article: "Go to Settings and then Billing in your ResponseIQ dashboard. Click
  'Manage Billing' to open the Stripe Customer Portal." and "When you are done, close the portal
  tab to return to your ResponseIQ dashboard."

  Scenario Outline: Manage Billing opens the portal for the signed-in account only
    Given Ada's account is on Growth monthly, renewing on April 1
    And Bob's account is on Starter monthly, renewing on April 1
    When <who> opens Manage Billing
    Then the billing portal shows <who>'s billing and not <other>'s
    And leaving the portal returns <who> to the billing settings: by the portal's link back, or on Paddle, whose portal has no link back, by closing the portal's tab

    Examples:
      | who | other |
      | Ada | Bob   |
      | Bob | Ada   |

  Scenario: An account that never subscribed has no billing to manage
    Given Carol has never subscribed
    When Carol tries to open Manage Billing
    Then it is refused because the account has never subscribed

  Scenario: After the subscription has ended, Manage Billing still opens for past invoices
    Given Ada's account is on Growth monthly, renewing on April 1
    And Ada has cancelled her subscription
    And today is April 10
    When Ada opens Manage Billing
    Then the billing portal shows Ada's billing
