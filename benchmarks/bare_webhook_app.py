"""The baseline for the ingestion benchmark: a bare Litestar endpoint that only verifies the
Stripe signature (the same `StripeWebhookVerifier`, the same secret) and answers 200."""

from __future__ import annotations

import os
from typing import Annotated, Any

from litestar import Litestar, Response, post
from litestar.params import HeaderParameter, RawBody

from responseiq_billing.adapters.stripe.webhooks import InvalidWebhook, StripeWebhookVerifier

verifier = StripeWebhookVerifier(os.environ["STRIPE_WEBHOOK_SECRET"].split(","))


@post("/webhooks/stripe", status_code=200, sync_to_thread=False)
def verify_only(
    body: RawBody,
    stripe_signature: Annotated[str | None, HeaderParameter(name="Stripe-Signature")] = None,
) -> Response[Any]:
    try:
        verifier.verify(body, stripe_signature)
    except InvalidWebhook:
        return Response({"refused": True}, status_code=400)
    return Response({"received": True, "duplicate": False})


app = Litestar(route_handlers=[verify_only])
