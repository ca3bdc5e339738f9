"""`POST /webhooks/stripe`: verify, store in the inbox, acknowledge. Applying is the worker's job."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Annotated, Any

from litestar import Response, post
from litestar.params import HeaderParameter, RawBody

from responseiq_billing.adapters.http import examples, schemas
from responseiq_billing.adapters.http.deps import Dep
from responseiq_billing.adapters.http.errors import error_response
from responseiq_billing.adapters.stripe.webhooks import InvalidWebhook, StripeWebhookVerifier
from responseiq_billing.application.inbox import WebhookDeliveries

log = logging.getLogger("billing.webhooks")


def _object_ref(event: dict[str, Any]) -> str | None:
    obj = (event.get("data") or {}).get("object") or {}
    ref = obj.get("id") if isinstance(obj, dict) else None
    return str(ref) if ref else None


@post(
    "/webhooks/stripe",
    status_code=200,
    tags=["webhooks"],
    summary="Stripe's webhook deliveries (signed); stored before they are acknowledged",
    description=(
        "Verifies `Stripe-Signature` on the raw body (several secrets during rotation, 300 s "
        "tolerance), stores the event by id (a duplicate is acknowledged and stored once) and "
        "answers 200. A delivery that cannot be stored gets 503, so Stripe retries it."
    ),
    responses=examples.responses(
        200, schemas.WebhookAck, {"received": True, "duplicate": False}, 400, 503
    ),
)
async def stripe_webhook(
    body: RawBody,
    stripe_deliveries: Dep[WebhookDeliveries[StripeWebhookVerifier]],
    stripe_signature: Annotated[str | None, HeaderParameter(name="Stripe-Signature")] = None,
) -> Response[Any]:
    from responseiq_billing.adapters.stripe.redact import redact_card_details

    webhook_verifier, receive_gateway_event = stripe_deliveries.verifier, stripe_deliveries.receive
    if webhook_verifier is None:
        return error_response(503, "webhook.not_configured", "STRIPE_WEBHOOK_SECRET is not set.")
    try:
        event = webhook_verifier.verify(body, stripe_signature)
    except InvalidWebhook as invalid:
        return error_response(400, f"webhook.{invalid.reason_code}", "The delivery was refused.")
    try:
        created = datetime.fromtimestamp(int(event["created"]), UTC)
        event_id, event_type = str(event["id"]), str(event["type"])
        # Stripe's payment-method objects carry card expiry and more: never stored.
        payload = json.dumps(redact_card_details(event), separators=(",", ":"))
    except (KeyError, TypeError, ValueError, OverflowError, OSError):
        return error_response(400, "webhook.malformed_body", "The event lacks an id, type or time.")
    try:
        # Only storage runs here: whatever it raises, the event is not durable (503, not 400).
        # Awaited on the event loop: the inbox's writer thread stores it (group commit).
        stored = await receive_gateway_event.stored(
            gateway="stripe",
            event_id=event_id,
            type=event_type,
            payload=payload,
            event_created=created,
            object_ref=_object_ref(event),
        )
    except Exception:
        # Not durable, so not acknowledged: Stripe retries with back-off for three days.
        log.exception("a Stripe delivery could not be stored")
        return error_response(503, "webhook.not_stored", "The event could not be stored; retry.")
    return Response(schemas.WebhookAck(received=True, duplicate=not stored))
