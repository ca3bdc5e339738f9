"""Paddle notifications: signature verification on the raw body, and events in the core's terms.

A notification is `{event_id, event_type, occurred_at, notification_id, data}`, signed in
`Paddle-Signature: ts=<unix seconds>;h1=<HMAC-SHA256 of "ts:body">`. The event id is what the
inbox stores once; `occurred_at` (microseconds) is the event's time, which orders it.

How Paddle's events become the core's (`translate_event`):
- `subscription.*`: the subscription as it stood, as a view. Paddle has no scheduled item
  changes, so the view never carries a pending change; the core merges the downgrade it keeps
  (`ApplyGatewayEvent` for a `ScheduledChanges.CORE` gateway), so an event cannot wipe it.
- `transaction.completed` of a checkout (origin `api` or `web`): the checkout completed; the
  account rides in the transaction's `custom_data`, the subscription in `subscription_id`.
- `transaction.completed` of a card change (origin `subscription_payment_method_change`): the
  card the subscription charges changed; the core re-reads it from the gateway.
- `transaction.billed/paid/completed/payment_failed/past_due` of a billed transaction: its
  invoice (`translate.invoice`, without the PDF link: Paddle hands out short-lived links on
  request only, never in a payload).
- anything else: acknowledged and ignored.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from paddle_billing.Notifications import PaddleSignature, Secret
from paddle_billing.Notifications.Entities.Subscription import (
    Subscription as SubscriptionPayload,
)
from paddle_billing.Notifications.Entities.Transaction import Transaction as TransactionPayload

from responseiq_billing.adapters.paddle import translate
from responseiq_billing.adapters.paddle.gateway import PaddleGateway
from responseiq_billing.application.ports import GatewayEvent, GatewayEventKind
from responseiq_billing.domain.plans import Interval
from responseiq_billing.domain.subscription import PaymentMethodSummary

# Paddle price id -> (plan, interval): what the gateway knows (`PaddleGateway.price_entries`).
PriceEntries = Mapping[str, tuple[str, Interval]]

SUBSCRIPTION_EVENTS = frozenset(
    {
        "subscription.created",
        "subscription.activated",
        "subscription.updated",
        "subscription.canceled",
        "subscription.past_due",
        "subscription.paused",
        "subscription.resumed",
        "subscription.trialing",
        "subscription.imported",
    }
)
# A transaction in one of these states is an invoice's news (`translate.is_invoice` decides).
INVOICE_EVENTS = frozenset(
    {
        "transaction.billed",
        "transaction.paid",
        "transaction.completed",
        "transaction.payment_failed",
        "transaction.past_due",
    }
)
CHECKOUT_ORIGINS = frozenset({"api", "web"})
CARD_CHANGE_ORIGIN = "subscription_payment_method_change"


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


class PaddleWebhookVerifier:
    """Checks `Paddle-Signature` (HMAC-SHA256 of `ts:body`) against any of several secrets.

    Several secrets let a notification destination's secret be rotated without refusing
    deliveries signed with the old one in between. The HMAC is the SDK's `PaddleSignature`
    (constant-time comparison, several `h1` and several secrets). The SDK's `Verifier` is not
    used: it reads the wall clock itself, allows 5 seconds by default and can be switched off
    by a `TEST_MODE` environment variable; here the age is checked against `now`, both ways.
    """

    def __init__(
        self,
        secrets: Sequence[str],
        tolerance: int = 300,
        *,
        now: Callable[[], float] = time.time,
    ) -> None:
        self._secrets = [Secret(s) for s in secrets if s]
        if not self._secrets:
            raise ValueError("at least one webhook signing secret is needed")
        self._tolerance = tolerance
        self._now = now
        self._signature = PaddleSignature()
        # The SDK logs every verification at INFO; as `build_client` does, keep its warnings only.
        logging.getLogger("paddle_billing").setLevel(logging.WARNING)

    def verify(self, raw_body: bytes, signature_header: str | None) -> dict[str, Any]:
        """The notification as a dict, or `InvalidWebhook` with the reason; secrets never in
        messages."""
        if not signature_header:
            raise InvalidWebhook(InvalidWebhook.MISSING_SIGNATURE)
        stamp = _timestamp(signature_header)
        try:
            payload = raw_body.decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidWebhook(InvalidWebhook.MALFORMED_BODY) from None
        try:
            signed = self._signature.verify(signature_header, payload, self._secrets)
        except (ConnectionRefusedError, ValueError):  # the SDK raises when no secret matches
            signed = False
        if not signed:
            raise InvalidWebhook(InvalidWebhook.BAD_SIGNATURE)
        # A signature too old may be a replay; one from the future is as suspect (a delivery
        # kept for later, a skewed signer).
        if abs(self._now() - stamp) > self._tolerance:
            raise InvalidWebhook(InvalidWebhook.STALE_TIMESTAMP)
        try:
            event = json.loads(payload)
        except ValueError:
            raise InvalidWebhook(InvalidWebhook.MALFORMED_BODY) from None
        if not _is_notification(event):
            raise InvalidWebhook(InvalidWebhook.MALFORMED_BODY)
        result: dict[str, Any] = event
        return result


def _timestamp(header: str) -> int:
    """`ts=` of a well-formed header: one `ts` (digits), at least one hex `h1`, nothing else
    (the SDK refuses other keys), else `malformed_signature`."""
    stamps: list[str] = []
    hashes: list[str] = []
    for part in header.split(";"):
        key, sep, value = part.partition("=")
        if not sep or "=" in value or not value:
            raise InvalidWebhook(InvalidWebhook.MALFORMED_SIGNATURE)
        if key == "ts":
            stamps.append(value)
        elif key == "h1":
            hashes.append(value)
        else:
            raise InvalidWebhook(InvalidWebhook.MALFORMED_SIGNATURE)
    hexadecimal = all(h and all(c in "0123456789abcdefABCDEF" for c in h) for h in hashes)
    if len(stamps) != 1 or not stamps[0].isdigit() or not hashes or not hexadecimal:
        raise InvalidWebhook(InvalidWebhook.MALFORMED_SIGNATURE)
    return int(stamps[0])


def occurred_at(event: Mapping[str, Any]) -> datetime:
    """The event's time (UTC, to the microsecond); ValueError/TypeError/KeyError when unusable."""
    moment = datetime.fromisoformat(event["occurred_at"])
    if moment.tzinfo is None:
        raise ValueError("occurred_at has no offset")
    try:
        return moment.astimezone(UTC)
    except OverflowError:  # the last day of year 9999 west of UTC
        raise ValueError("occurred_at is out of range") from None


def _is_notification(value: object) -> bool:
    if not isinstance(value, dict):
        return False
    try:
        occurred_at(value)
    except (KeyError, TypeError, ValueError):
        return False
    return (
        isinstance(value.get("event_id"), str)
        and bool(value["event_id"])
        and isinstance(value.get("event_type"), str)
        and bool(value["event_type"])
        and isinstance(value.get("data"), dict)
    )


# -- what the inbox keeps ---------------------------------------------------------------------

# Personal data and card details: no handler reads them (the translation below never looks at
# these keys), so the inbox has no reason to hold them. Paddle's cards carry the holder's name
# and the expiry; PayPal carries an e-mail and an agreement reference; a transaction may include
# its customer, address and business; `management_urls` are links that act for the customer.
_DROPPED = frozenset(
    {
        "email",
        "phone",
        "cardholder_name",
        "expiry_month",
        "expiry_year",
        "fingerprint",
        "paypal",
        "south_korea_local_card",
        "underlying_details",
        "billing_details",
        "address",
        "customer",
        "business",
        "contacts",
        "first_line",
        "second_line",
        "city",
        "postal_code",
        "region",
        "company_number",
        "tax_identifier",
        "ip",
        "ip_address",
        "management_urls",
    }
)
_KEEP_IN_CARD = frozenset({"type", "last4"})
# Events about these entities are acted on; of any other, only the object's id is kept (a
# customer's, address's or business's data is all personal, and nothing reads it).
_READ_ENTITIES = frozenset({"subscription", "transaction"})


def redact(event: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of a notification to store: without personal data or card details (a card keeps
    its type and last four digits), and of an event no handler acts on, only the object's id."""
    out = {k: v for k, v in event.items() if k != "data"}
    data = event.get("data")
    entity = str(event.get("event_type") or "").partition(".")[0]
    if not isinstance(data, Mapping):
        out["data"] = data
    elif entity not in _READ_ENTITIES:
        out["data"] = {"id": data["id"]} if "id" in data else {}
    else:
        out["data"] = _scrub(data)
    return out


def _scrub(value: Any) -> Any:
    if isinstance(value, Mapping):
        kept: dict[str, Any] = {}
        for key, item in value.items():
            if key in _DROPPED:
                continue
            if key == "card" and isinstance(item, Mapping):
                kept[key] = {k: v for k, v in item.items() if k in _KEEP_IN_CARD}
            else:
                kept[key] = _scrub(item)
        return kept
    if isinstance(value, list):
        return [_scrub(item) for item in value]
    return value


# -- ordering -----------------------------------------------------------------------------------


def object_ref(event: Mapping[str, Any]) -> str | None:
    """The object whose events the inbox keeps in order, and whose newest applied event is the
    high-water mark a late event is judged by. The same as `translate_event(...).object_ref`.

    Like Stripe's route, the object is the one whose state the event brings: a subscription
    event orders by the subscription; a billed transaction by itself, because it is an invoice
    and the inbox judges a late invoice event by the newest applied event of that invoice (a
    renewal's `transaction.paid` and `subscription.updated` change different things, so they
    need no order between them). A checkout's completion and a card change are news of the
    subscription (the core settles its view), so they order with its subscription events.
    """
    data = event.get("data")
    if not isinstance(data, Mapping):
        return None
    kind = str(event.get("event_type") or "")
    ref = data.get("id")
    if kind.startswith("transaction."):
        origin = data.get("origin")
        about_subscription = origin == CARD_CHANGE_ORIGIN or (
            origin in CHECKOUT_ORIGINS and kind == "transaction.completed"
        )
        if about_subscription and data.get("subscription_id"):
            ref = data["subscription_id"]
    return str(ref) if ref else None


# -- translation --------------------------------------------------------------------------------


def translate_event(event: Mapping[str, Any], prices: PriceEntries) -> GatewayEvent:
    """A verified Paddle notification as the core's `GatewayEvent`. Pure: reads nothing over
    the network. `prices` maps a price whose `custom_data` does not name our plan."""
    kind, data = str(event["event_type"]), event["data"]
    created = occurred_at(event)
    # An ignored event carries nothing more: of most, the inbox keeps only the object's id.
    ignored = GatewayEvent(
        kind=GatewayEventKind.IGNORED, id=str(event["event_id"]), gateway_type=kind, created=created
    )
    base: dict[str, Any] = {
        "id": ignored.id,
        "gateway_type": kind,
        "created": created,
        "customer_ref": _text(data.get("customer_id")),
    }
    if kind in SUBSCRIPTION_EVENTS:
        return _subscription_event(data, prices, created, base)
    if not kind.startswith("transaction."):
        return ignored
    origin = data.get("origin")
    status = data.get("status")
    if kind == "transaction.completed" and origin in CHECKOUT_ORIGINS:
        return GatewayEvent(
            kind=GatewayEventKind.CHECKOUT_COMPLETED,
            checkout_id=str(data["id"]),
            account_id=_account(data),
            subscription_ref=_text(data.get("subscription_id")),
            **base,
        )
    if origin == CARD_CHANGE_ORIGIN:
        if kind != "transaction.completed" or status != "completed" or not base["customer_ref"]:
            return ignored
        # The card the subscription charges is the gateway's to say (a late event about an
        # older card must not bring it back): the core re-reads it. Paddle keeps the card on
        # the subscription, so there is no customer default to follow.
        return GatewayEvent(
            kind=GatewayEventKind.PAYMENT_METHOD_CHANGED,
            subscription_ref=_text(data.get("subscription_id")),
            payment_method=_card(data),
            default_payment_method_changed=False,
            **base,
        )
    if kind in INVOICE_EVENTS:
        txn = TransactionPayload.from_dict(_readable_transaction(data))
        if translate.is_invoice(txn):
            invoice = translate.invoice(txn, pdf_url=None)
            return GatewayEvent(
                kind=GatewayEventKind.INVOICE_CHANGED,
                subscription_ref=invoice.subscription_ref,
                invoice=invoice,
                **base,
            )
    return ignored


def _subscription_event(
    data: Mapping[str, Any], prices: PriceEntries, created: datetime, base: dict[str, Any]
) -> GatewayEvent:
    ref = str(data["id"])
    try:
        sub = SubscriptionPayload.from_dict(_readable_subscription(data, prices))
    except (KeyError, TypeError, ValueError, AttributeError):
        # A payload shaped unlike what we read: the core re-reads the subscription instead.
        sub = None
    # Paddle's times carry microseconds; the gateway's views are to the second (`as_of` of a
    # call), so an event's view is too: a view from a call made later in the same second must
    # not look older than the event's, and a tie is settled by re-reading (`settle`).
    view = (
        None
        if sub is None
        else translate.subscription_view(
            sub, payment_method=None, as_of=created.replace(microsecond=0)
        )
    )
    return GatewayEvent(
        kind=GatewayEventKind.SUBSCRIPTION_CHANGED,
        subscription_ref=ref,
        subscription=view,
        account_id=_account(data),
        **base,
    )


# The SDK's notification entities are built from the fields the translation reads (and those
# the entity insists on), so a change in a part we never read (a product, a discount, line
# items, a payment's details that `redact` removed) cannot stop an event from being applied.
_SUBSCRIPTION_FIELDS = (
    "id", "status", "customer_id", "address_id", "currency_code", "created_at", "updated_at",
    "collection_mode", "billing_cycle", "current_billing_period", "canceled_at", "started_at",
    "scheduled_change", "custom_data",
)  # fmt: skip
_ITEM_FIELDS = (
    "status", "quantity", "recurring", "created_at", "updated_at", "previously_billed_at",
    "next_billed_at", "price",
)  # fmt: skip
_TRANSACTION_FIELDS = (
    "id", "status", "customer_id", "currency_code", "origin", "subscription_id",
    "invoice_number", "collection_mode", "billing_period", "created_at", "updated_at",
    "custom_data",
)  # fmt: skip


def _readable_subscription(data: Mapping[str, Any], prices: PriceEntries) -> dict[str, Any]:
    readable = {k: data[k] for k in _SUBSCRIPTION_FIELDS if k in data}
    readable["items"] = [
        _mapped_item({k: item[k] for k in _ITEM_FIELDS if k in item}, prices)
        for item in data["items"]
    ]
    return readable


def _mapped_item(item: dict[str, Any], prices: PriceEntries) -> dict[str, Any]:
    """The item, its price's `custom_data` naming our plan from `prices` if it does not."""
    price = item.get("price")
    if not isinstance(price, Mapping):
        return item
    custom = price.get("custom_data")
    custom = dict(custom) if isinstance(custom, Mapping) else {}
    if translate.PLAN_KEY in custom and translate.INTERVAL_KEY in custom:
        return item
    entry = prices.get(str(price.get("id")))
    if entry is None:
        return item
    custom.update({translate.PLAN_KEY: entry[0], translate.INTERVAL_KEY: entry[1].value})
    return {**item, "price": {**price, "custom_data": custom}}


def _readable_transaction(data: Mapping[str, Any]) -> dict[str, Any]:
    readable = {k: data[k] for k in _TRANSACTION_FIELDS if k in data}
    details = data["details"]
    readable["details"] = {"totals": details["totals"], "tax_rates_used": [], "line_items": []}
    return readable


def _account(data: Mapping[str, Any]) -> str | None:
    custom = data.get("custom_data")
    found = custom.get(translate.ACCOUNT_KEY) if isinstance(custom, Mapping) else None
    return found if isinstance(found, str) and found else None


def _text(value: object) -> str | None:
    return str(value) if value else None


def _card(data: Mapping[str, Any]) -> PaymentMethodSummary | None:
    """Type and last4 of the card that the transaction's captured payment used (what `redact`
    keeps of it); the same reading as `translate.card_summary`."""
    for attempt in data.get("payments") or []:
        if not isinstance(attempt, Mapping) or attempt.get("status") != "captured":
            continue
        details = attempt.get("method_details")
        card = details.get("card") if isinstance(details, Mapping) else None
        if not isinstance(card, Mapping):
            continue
        try:
            return PaymentMethodSummary(str(card["type"]), str(card["last4"]))
        except (KeyError, ValueError):
            continue
    return None


class PaddleEventDecoder:
    """Stored Paddle notifications (JSON) to gateway events; prices map through the gateway."""

    def __init__(self, gateway: PaddleGateway) -> None:
        self._gateway = gateway

    def decode(self, payload: str) -> GatewayEvent:
        return translate_event(json.loads(payload), self._gateway.price_entries)
