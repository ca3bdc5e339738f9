"""OpenAPI examples for every route, and the documented error responses of each."""

from __future__ import annotations

from typing import Any

from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import Example

from responseiq_billing.adapters.http.errors import ErrorBody

PERIOD_START = "2026-03-01T09:00:00Z"
PERIOD_END = "2026-04-01T09:00:00Z"

FEATURES_GROWTH = {"seats": 10, "monthly_responses": 10000, "flags": ["ai_replies"]}
SUBSCRIPTION = {
    "plan": "growth",
    "interval": "month",
    "status": "active",
    "current_period_start": PERIOD_START,
    "current_period_end": PERIOD_END,
    "cancel_at_period_end": False,
    "cancels_at": None,
    "pending_change": {"plan": "starter", "interval": "month", "effective_at": PERIOD_END},
    "payment_method": {"brand": "visa", "last4": "4242"},
    "features": FEATURES_GROWTH,
    "access_until": None,
}
# Set to cancel, at the period end or on a date set elsewhere (the Stripe Dashboard): either
# way `cancel_at_period_end` is true and `cancels_at` says when it ends.
SUBSCRIPTION_CANCELING = {
    **SUBSCRIPTION,
    "cancel_at_period_end": True,
    "cancels_at": PERIOD_END,
    "pending_change": None,
    "access_until": PERIOD_END,
}
PLANS = {
    "data": [
        {
            "id": "starter",
            "name": "Starter",
            "prices": [
                {"interval": "month", "amount": {"amount": 1900, "currency": "USD"}},
                {"interval": "year", "amount": {"amount": 19000, "currency": "USD"}},
            ],
            "features": {"seats": 2, "monthly_responses": 1000, "flags": []},
        }
    ]
}
ENTITLEMENTS = {
    "plan": "growth",
    "features": FEATURES_GROWTH,
    "access_until": PERIOD_END,
    "reason": "canceling",
}
CHECKOUT = {
    "checkout_id": "cs_test_a1b2c3",
    "url": "https://checkout.stripe.com/c/pay/cs_test_a1b2c3",
    "client_secret": None,
}
CHECKOUT_RESULT = {"status": "complete", "subscription": SUBSCRIPTION}
PAYMENT_METHOD_RESULT = {"status": "complete", "payment_method": {"brand": "visa", "last4": "4242"}}
PORTAL = {"url": "https://billing.stripe.com/p/session/test_YWNjdF8x"}
SETUP = {
    "setup_id": "cs_test_setup_9z8y",
    "url": "https://checkout.stripe.com/c/pay/cs_test_setup_9z8y",
    "client_secret": None,
}
PREVIEW = {
    "quote_id": "qt_4f1c2e",
    "timing": "immediate",
    "amount_due_now": {"amount": 3000, "currency": "USD"},
    "effective_at": "2026-03-01T09:00:00Z",
    "expires_at": "2026-03-01T09:30:00Z",
}
INVOICES = {
    "data": [
        {
            "id": "in_1QxYz",
            "number": "RIQ-0001",
            "status": "paid",
            "amount_due": 4900,
            "amount_paid": 4900,
            "currency": "USD",
            "created": PERIOD_START,
            "period_start": PERIOD_START,
            "period_end": PERIOD_END,
            "billing_reason": "subscription_create",
            "pdf_url": "https://pay.stripe.com/invoice/acct_1/test_in_1QxYz/pdf",
            "hosted_url": "https://invoice.stripe.com/i/acct_1/test_in_1QxYz",
        }
    ],
    "has_more": False,
}

ERROR_EXAMPLES: dict[int, tuple[str, str]] = {
    400: ("card_data_rejected", "Card numbers must never be sent to this service."),
    401: ("auth.expired", "The bearer token has expired."),
    402: ("payment.declined", "The payment was declined; nothing was changed."),
    404: ("subscription.not_found", "This account has no subscription."),
    409: ("subscription.already_canceling", "The subscription is already set to end."),
    422: ("request.invalid", "Object missing required field `plan`"),
    503: ("gateway.unavailable", "The payment gateway could not be reached; try again shortly."),
}
ERROR_DESCRIPTIONS = {
    400: "Card data in the request: refused before any handler ran",
    401: "Missing, malformed, wrongly signed or expired bearer token",
    402: "The payment was declined or needs the customer's confirmation",
    404: "Not found (another account's objects are never found)",
    409: "Conflicts with the current state or a billing rule",
    422: "The request is not valid",
    503: "The payment gateway or database is unavailable; retry later",
}


def example(value: Any, summary: str = "Example") -> Example:
    return Example(summary=summary, value=value)


def responses(
    status: int,
    body: type | None,
    value: Any,
    *errors: int,
    description: str = "Success",
) -> dict[int, ResponseSpec]:
    """The success response with its example, then every error the route can answer with."""
    out: dict[int, ResponseSpec] = {
        status: ResponseSpec(
            data_container=body,
            description=description,
            examples=[example(value)] if body is not None else None,
            generate_examples=False,
        )
    }
    for code in sorted({400, 422, 503, *errors}):
        machine, detail = ERROR_EXAMPLES[code]
        out[code] = ResponseSpec(
            data_container=ErrorBody,
            description=ERROR_DESCRIPTIONS[code],
            examples=[example({"code": machine, "detail": detail})],
            generate_examples=False,
        )
    return out
