#!/usr/bin/env bash
# The README's curl walk-through, run as written by tests/integration/test_http_walkthrough.py
# against `billing serve` (sandbox gateway). API and BILLING default to the README's values.
set -euo pipefail
API=${API:-http://127.0.0.1:8000}
BILLING=${BILLING:-.venv/bin/billing}
field() { python3 -c "import json, sys; print(json.load(sys.stdin)$1)"; }

# A token for a new account (the sandbox gateway starts empty each time the server starts).
export TOKEN=$($BILLING token "acct_demo_$RANDOM")
AUTH="Authorization: Bearer $TOKEN"
JSON="Content-Type: application/json"

echo "# 1. Checkout: Growth, monthly. Open the url in a browser, or press its button with curl:"
CHECKOUT=$(curl -sf -H "$AUTH" -H "$JSON" -d '{"plan": "growth", "interval": "month"}' \
  "$API/billing/checkout")
echo "$CHECKOUT"
CHECKOUT_ID=$(echo "$CHECKOUT" | field '["checkout_id"]')

echo "# 2. Pay on the sandbox page with the Visa test card (no real payment):"
curl -sf -o /dev/null -d outcome=succeeded -d card=visa "$API/sandbox/checkout/$CHECKOUT_ID/complete"
curl -sf -H "$AUTH" "$API/billing/subscription"; echo

echo "# 3. Upgrade to Business: preview the prorated charge, then change with the quote:"
QUOTE=$(curl -sf -H "$AUTH" -H "$JSON" -d '{"plan": "business", "interval": "month"}' \
  "$API/billing/subscription/preview")
echo "$QUOTE"
QUOTE_ID=$(echo "$QUOTE" | field '["quote_id"]')
curl -sf -H "$AUTH" -H "$JSON" -H "Idempotency-Key: upgrade-$QUOTE_ID" \
  -d "{\"plan\": \"business\", \"interval\": \"month\", \"quote_id\": \"$QUOTE_ID\"}" \
  "$API/billing/subscription/change"; echo

echo "# 4. Downgrade to Starter: scheduled for the end of the period (see pending_change):"
curl -sf -H "$AUTH" -H "$JSON" -d '{"plan": "starter", "interval": "month"}' \
  "$API/billing/subscription/change"; echo

echo "# 5. Move the sandbox clock 32 days (past the end of any monthly period): the downgrade takes effect, a renewal is billed:"
curl -sf -H "$JSON" -d '{"days": 32}' "$API/sandbox/clock/advance"; echo
curl -sf -H "$AUTH" "$API/billing/subscription"; echo

echo "# 6. Cancel: access continues until the period ends (see access_until):"
curl -sf -X POST -H "$AUTH" "$API/billing/subscription/cancel"; echo
curl -sf -H "$AUTH" "$API/billing/entitlements"; echo

echo "# 7. Invoices, and the newest one as a PDF:"
INVOICES=$(curl -sf -H "$AUTH" "$API/billing/invoices")
echo "$INVOICES"
INVOICE_ID=$(echo "$INVOICES" | field '["data"][0]["id"]')
curl -sfL -H "$AUTH" -o invoice.pdf "$API/billing/invoices/$INVOICE_ID/pdf"
head -c 8 invoice.pdf; echo
