"""Strip card details and personal data from Stripe payloads before they are stored (the inbox).

Stripe's payment-method and charge objects carry a card's expiry, fingerprint, issuer and
more. The help article promises we keep none of it: a stored payload keeps a card's brand
and last four digits only, and no key anywhere may name a card number, expiry or CVC.
Names, e-mail addresses, phone numbers and postal addresses (`billing_details`, a customer's
`email`, a session's `customer_details`, …) are dropped too: no handler reads them, so the
inbox has no reason to hold them.
"""

from __future__ import annotations

from typing import Any

# Keys whose values are card data wherever they appear.
_FORBIDDEN = frozenset({"exp_month", "exp_year", "cvc", "cvv", "fingerprint", "iin"})
# Objects that describe a card; of these only the brand and last four digits are kept.
_CARD_KEYS = frozenset({"card", "card_present", "interac_present"})
_KEEP_IN_CARD = frozenset({"brand", "last4"})
# Personal data that no event handler reads (translate.py never looks at these keys).
_PERSONAL = frozenset(
    {
        "billing_details",
        "shipping",
        "shipping_details",
        "customer_details",
        "collected_information",
        "customer_email",
        "customer_name",
        "customer_phone",
        "customer_address",
        "customer_shipping",
        "customer_tax_ids",
        "receipt_email",
        "address",
        "email",
        "phone",
        "name",
        "individual_name",
        "business_name",
        "tax_ids",
        "account_holder_name",
        "custom_fields",
    }
)


def _describes_a_card(item: dict[str, Any]) -> bool:
    # `payment_method_options.card` is a setting, not a card: it has none of these keys.
    return bool(item.keys() & {"last4", "exp_month", "exp_year", "number", "fingerprint"})


def redact_card_details(value: Any) -> Any:
    """A copy of `value` (parsed JSON) without card data or personal data; other fields are left
    as they are."""
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            if key in _FORBIDDEN or key in _PERSONAL:
                continue
            if key in _CARD_KEYS and isinstance(item, dict) and _describes_a_card(item):
                out[key] = {k: v for k, v in item.items() if k in _KEEP_IN_CARD}
            else:
                out[key] = redact_card_details(item)
        return out
    if isinstance(value, list):
        return [redact_card_details(item) for item in value]
    return value
