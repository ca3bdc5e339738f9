"""`POST /webhooks/paddle`: verify, store in the inbox, acknowledge. Applying is the worker's job."""

from __future__ import annotations

import json
import logging
from typing import Annotated, Any

from litestar import Response, post
from litestar.params import HeaderParameter, RawBody

from responseiq_billing.adapters.http import examples, schemas
from responseiq_billing.adapters.http.deps import Dep
from responseiq_billing.adapters.http.errors import error_response
from responseiq_billing.adapters.paddle.webhooks import (
    InvalidWebhook,
    PaddleWebhookVerifier,
    object_ref,
    occurred_at,
    redact,
)
from responseiq_billing.application.inbox import WebhookDeliveries

log = logging.getLogger("billing.webhooks")


@post(
    "/webhooks/paddle",
    status_code=200,
    tags=["webhooks"],
    summary="Paddle's notifications (signed); stored before they are acknowledged",
    description=(
        "Verifies `Paddle-Signature` (`ts=…;h1=…`, HMAC-SHA256 of `ts:body`) on the raw body "
        "(several secrets during rotation, 300 s tolerance either way), stores the event by "
        "`event_id` without personal data or card details (a duplicate is acknowledged and "
        "stored once) and answers 200. A delivery that cannot be stored gets 503, so Paddle "
        "retries it."
    ),
    responses=examples.responses(
        200, schemas.WebhookAck, {"received": True, "duplicate": False}, 400, 503
    ),
)
async def paddle_webhook(
    body: RawBody,
    paddle_deliveries: Dep[WebhookDeliveries[PaddleWebhookVerifier]],
    paddle_signature: Annotated[str | None, HeaderParameter(name="Paddle-Signature")] = None,
) -> Response[Any]:
    paddle_webhook_verifier = paddle_deliveries.verifier
    receive_gateway_event = paddle_deliveries.receive
    if paddle_webhook_verifier is None:
        return error_response(503, "webhook.not_configured", "PADDLE_WEBHOOK_SECRET is not set.")
    try:
        event = paddle_webhook_verifier.verify(body, paddle_signature)
    except InvalidWebhook as invalid:
        return error_response(400, f"webhook.{invalid.reason_code}", "The delivery was refused.")
    try:
        created = occurred_at(event)
        event_id, event_type = str(event["event_id"]), str(event["event_type"])
        # Paddle's cards carry the holder's name and expiry, its customers their e-mail and
        # address: never stored.
        payload = json.dumps(redact(event), separators=(",", ":"))
        ref = object_ref(event)
    except (KeyError, TypeError, ValueError, OverflowError):
        return error_response(400, "webhook.malformed_body", "The event lacks an id, type or time.")
    try:
        # Only storage runs here: whatever it raises, the event is not durable (503, not 400).
        # Awaited on the event loop: the inbox's writer thread stores it (group commit).
        stored = await receive_gateway_event.stored(
            gateway="paddle",
            event_id=event_id,
            type=event_type,
            payload=payload,
            event_created=created,
            object_ref=ref,
        )
    except Exception:
        # Not durable, so not acknowledged: Paddle retries with back-off (for three days live).
        log.exception("a Paddle delivery could not be stored")
        return error_response(503, "webhook.not_stored", "The event could not be stored; retry.")
    return Response(schemas.WebhookAck(received=True, duplicate=not stored))
