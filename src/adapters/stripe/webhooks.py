"""Stripe webhooks: signature verification on the raw body, and events in the core's terms."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal, get_args

import stripe

from responseiq_billing.adapters.stripe import translate
from responseiq_billing.application.ports import GatewayEvent, GatewayEventKind

# The event types the adapter acts on (ADR 0005); everything else is acknowledged and ignored. Typed as
# literals so mypy checks each name against stripe-python's list of event types.
EventType = Literal[
    "checkout.session.completed",
    "customer.subscription.created",
    "customer.subscription.updated",
    "customer.subscription.deleted",
    "customer.subscription.pending_update_applied",
    "customer.subscription.pending_update_expired",
    "subscription_schedule.created",
    "subscription_schedule.updated",
    "subscription_schedule.released",
    "subscription_schedule.canceled",
    "subscription_schedule.completed",
    "invoice.paid",
    "invoice.payment_failed",
    "invoice.payment_action_required",
    "invoice.finalized",
    "customer.updated",
    "payment_method.attached",
    "payment_method.automatically_updated",
]
ENABLED_EVENTS: tuple[EventType, ...] = get_args(EventType)
SUBSCRIPTION_EVENTS = frozenset(e for e in ENABLED_EVENTS if e.startswith("customer.subscription."))
SCHEDULE_EVENTS = frozenset(e for e in ENABLED_EVENTS if e.startswith("subscription_schedule."))
INVOICE_EVENTS = frozenset(e for e in ENABLED_EVENTS if e.startswith("invoice."))
PAYMENT_METHOD_EVENTS = frozenset(
    {"customer.updated", "payment_method.attached", "payment_method.automatically_updated"}
)


class InvalidWebhook(Exception):
    """A delivery that must be refused (400) and change nothing. `reason_code` says why."""

    MISSING_SIGNATURE = "missing_signature"
    MALFORMED_SIGNATURE = "malformed_signature"
    BAD_SIGNATURE = "bad_signature"
    STALE_TIMESTAMP = "stale_timestamp"
    MALFORMED_BODY = "malformed_body"

    def __init__(self, reason_code: str) -> None:
        super().__init__(reason_code)
        self.reason_code = reason_code


class StripeWebhookVerifier:
    """Checks `Stripe-Signature` (HMAC-SHA256 of `t.body`) against any of several secrets.

    Several secrets let an endpoint secret be rotated without refusing deliveries signed with
    the old one in between. Verification uses stripe-python's `WebhookSignature`.
    """

    def __init__(
        self,
        secrets: Sequence[str],
        tolerance: int = 300,
        *,
        now: Callable[[], float] = time.time,
    ) -> None:
        self._secrets = tuple(s for s in secrets if s)
        if not self._secrets:
            raise ValueError("at least one webhook signing secret is needed")
        self._tolerance = tolerance
        self._now = now

    def verify(self, raw_body: bytes, signature_header: str | None) -> dict[str, Any]:
        """The event as a dict, or `InvalidWebhook` with the reason; secrets never in messages."""
        if not signature_header:
            raise InvalidWebhook(InvalidWebhook.MISSING_SIGNATURE)
        if not _well_formed(signature_header):
            raise InvalidWebhook(InvalidWebhook.MALFORMED_SIGNATURE)
        try:
            payload = raw_body.decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidWebhook(InvalidWebhook.MALFORMED_BODY) from None
        self._signing_secret(payload, signature_header)
        # stripe-python checks only that a signature is not too old; one from the future is
        # as suspect (a replay kept for later, a skewed signer), so both ends are checked here.
        if abs(self._now() - _timestamp(signature_header)) > self._tolerance:
            raise InvalidWebhook(InvalidWebhook.STALE_TIMESTAMP)
        try:
            event = json.loads(payload)
        except ValueError:
            raise InvalidWebhook(InvalidWebhook.MALFORMED_BODY) from None
        if not _is_event(event):
            raise InvalidWebhook(InvalidWebhook.MALFORMED_BODY)
        result: dict[str, Any] = event
        return result

    def _signing_secret(self, payload: str, header: str) -> str:
        """The secret that signed the payload (ignoring its age), else `bad_signature`."""
        for secret in self._secrets:
            try:
                stripe.WebhookSignature.verify_header(payload, header, secret, tolerance=None)
            except stripe.SignatureVerificationError:
                continue
            return secret
        raise InvalidWebhook(InvalidWebhook.BAD_SIGNATURE)


def _well_formed(header: str) -> bool:
    parts = [part.split("=", 1) for part in header.split(",")]
    if any(len(part) != 2 for part in parts):
        return False
    stamps = [value for key, value in parts if key.strip() == "t"]
    signatures = [value for key, value in parts if key.strip() == "v1"]
    return len(stamps) == 1 and stamps[0].isdigit() and bool(signatures)


def _timestamp(header: str) -> int:
    """`t=` of a header that `_well_formed` accepted."""
    for key, value in (part.split("=", 1) for part in header.split(",")):
        if key.strip() == "t":
            return int(value)
    raise InvalidWebhook(InvalidWebhook.MALFORMED_SIGNATURE)


def _is_event(value: object) -> bool:
    if not isinstance(value, dict) or value.get("object") != "event":
        return False
    data = value.get("data")
    return (
        isinstance(value.get("id"), str)
        and isinstance(value.get("type"), str)
        and isinstance(value.get("created"), int)
        and isinstance(data, dict)
        and isinstance(data.get("object"), dict)
    )


def translate_event(event: Mapping[str, Any], prices: translate.PriceMap) -> GatewayEvent:
    """A verified Stripe event as the core's `GatewayEvent`. Pure: reads nothing over the network.

    A subscription event whose subscription has a schedule attached cannot say what the
    schedule will change (events never expand it), so it becomes `SCHEDULE_CHANGED`, which
    makes the core re-read the subscription instead of wiping its pending change.
    """
    kind, obj = str(event["type"]), event["data"]["object"]
    base: dict[str, Any] = {
        "id": str(event["id"]),
        "gateway_type": kind,
        "created": translate.ts(event["created"]),
        "customer_ref": translate.ref(obj.get("customer")),
    }
    if kind in SUBSCRIPTION_EVENTS:
        ref = str(obj["id"])
        if obj.get("schedule") is not None and translate.expanded(obj.get("schedule")) is None:
            return GatewayEvent(
                kind=GatewayEventKind.SCHEDULE_CHANGED, subscription_ref=ref, **base
            )
        view = translate.subscription_view(obj, prices, as_of=base["created"])
        return GatewayEvent(
            kind=GatewayEventKind.SUBSCRIPTION_CHANGED,
            subscription_ref=ref,
            subscription=view,
            account_id=(obj.get("metadata") or {}).get("account_id"),
            **base,
        )
    if kind in SCHEDULE_EVENTS:
        owner = translate.ref(obj.get("subscription")) or translate.ref(
            obj.get("released_subscription")
        )
        if owner is None:
            return GatewayEvent(kind=GatewayEventKind.IGNORED, **base)
        return GatewayEvent(kind=GatewayEventKind.SCHEDULE_CHANGED, subscription_ref=owner, **base)
    if kind == "checkout.session.completed":
        mode = obj.get("mode")
        common = {"checkout_id": str(obj["id"]), "account_id": obj.get("client_reference_id")}
        if mode == "subscription":
            return GatewayEvent(
                kind=GatewayEventKind.CHECKOUT_COMPLETED,
                subscription_ref=translate.ref(obj.get("subscription")),
                **common,
                **base,
            )
        if mode == "setup":
            return GatewayEvent(kind=GatewayEventKind.SETUP_COMPLETED, **common, **base)
        return GatewayEvent(kind=GatewayEventKind.IGNORED, **base)
    if kind in INVOICE_EVENTS:
        invoice = translate.invoice(obj)
        return GatewayEvent(
            kind=GatewayEventKind.INVOICE_CHANGED,
            subscription_ref=invoice.subscription_ref,
            invoice=invoice,
            **base,
        )
    if kind in PAYMENT_METHOD_EVENTS:
        # An event names a card by id and never expands it, and an attached card need not be
        # the one that pays: each of these makes the core re-read which card the next invoice
        # uses. `payment_method` is only what an attached card's own event shows of it.
        changed = False
        if kind == "customer.updated":
            base["customer_ref"] = str(obj["id"])
            previous = translate.expanded(event["data"].get("previous_attributes")) or {}
            settings = translate.expanded(previous.get("invoice_settings")) or {}
            changed = "default_payment_method" in settings
            summary = None
        else:
            summary = translate.card_summary(obj)
        if base["customer_ref"] is None:
            return GatewayEvent(kind=GatewayEventKind.IGNORED, **base)
        return GatewayEvent(
            kind=GatewayEventKind.PAYMENT_METHOD_CHANGED,
            payment_method=summary,
            default_payment_method_changed=changed,
            **base,
        )
    return GatewayEvent(kind=GatewayEventKind.IGNORED, **base)
