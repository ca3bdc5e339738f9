@invoices
Feature: View invoices
  From the help article's table: "View invoices", in the "Stripe Customer Portal", is
  "Available immediately — download PDF invoices for any past payment".
  And its tip: "If you need a receipt for a specific payment, use the Stripe Customer Portal to
  download a PDF invoice."

  Scenario: The proration invoice of an upgrade is listed at once, with a PDF
    Given Ada's account is on Growth monthly, renewing on April 1
    And today is March 16
    When Ada upgrades to Business monthly
    Then Ada's invoices are, newest first:
      | date     | amount | for              | status |
      | March 16 | $25.81 | plan change      | paid   |
      | March 1  | $49.00 | new subscription | paid   |
    And each of Ada's invoices downloads as a PDF

  Scenario: Another account can neither see nor download Ada's invoice
    Given Ada's account is on Growth monthly, renewing on April 1
    And Bob's account is on Starter monthly, renewing on April 1
    And today is March 16
    And Ada has upgraded to Business monthly
    When Bob tries to download Ada's latest invoice
    Then it is refused because there is no such invoice
    And Bob's invoices are, newest first:
      | date    | amount | for              | status |
      | March 1 | $19.00 | new subscription | paid   |

  Scenario: Every renewal adds an invoice
    Given Ada's account is on Starter monthly, renewing on April 1
    When May 1 arrives
    Then Ada's invoices are, newest first:
      | date    | amount | for              | status |
      | May 1   | $19.00 | renewal          | paid   |
      | April 1 | $19.00 | renewal          | paid   |
      | March 1 | $19.00 | new subscription | paid   |
    And each of Ada's invoices downloads as a PDF

  Scenario: A renewal the bank declined is listed as unpaid
    Given Ada's account is on Growth monthly, renewing on April 1
    And Ada's bank will decline the next payment
    When April 1 arrives
    Then Ada's invoices are, newest first:
      | date    | amount | for              | status |
      | April 1 | $49.00 | renewal          | open   |
      | March 1 | $49.00 | new subscription | paid   |
    And Ada is charged nothing on April 1
    # while the bank retries, access continues for a week (the documented grace period)
    And Ada keeps access until April 8
    When April 8 arrives
    Then Ada has no access

  Scenario: Invoices stay available after the subscription has ended
    Given Ada's account is on Growth monthly, renewing on April 1
    And Ada has cancelled her subscription
    When April 10 arrives
    Then Ada has no access
    And Ada's invoices are, newest first:
      | date    | amount | for              | status |
      | March 1 | $49.00 | new subscription | paid   |
    And each of Ada's invoices downloads as a PDF

  Scenario: An account that never subscribed has no invoices
    Given Carol has never subscribed
    Then Carol has no invoices
