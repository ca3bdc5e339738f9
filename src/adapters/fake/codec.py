"""JSON for the sandbox gateway's events, so they travel through the webhook inbox like Stripe's."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from responseiq_billing.application.ports import GatewayEvent, GatewayEventKind
from responseiq_billing.domain.invoices import BillingReason, Invoice, InvoiceStatus
from responseiq_billing.domain.money import Money
from responseiq_billing.domain.plans import Interval
from responseiq_billing.domain.subscription import (
    GatewaySubscription,
    PaymentMethodSummary,
    PendingChange,
    Status,
)

Json = dict[str, Any]


def _t(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def _dt(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text is not None else None


def _req(text: str) -> datetime:
    return datetime.fromisoformat(text)


def _pm(pm: PaymentMethodSummary | None) -> Json | None:
    return {"brand": pm.brand, "last4": pm.last4} if pm is not None else None


def _pm_in(data: Json | None) -> PaymentMethodSummary | None:
    return PaymentMethodSummary(data["brand"], data["last4"]) if data else None


def _sub(view: GatewaySubscription) -> Json:
    change = view.pending_change
    return {
        "customer": view.customer_ref,
        "id": view.subscription_ref,
        "plan": view.plan_id,
        "interval": view.interval.value,
        "status": view.status.value,
        "current_period_start": _t(view.current_period_start),
        "current_period_end": _t(view.current_period_end),
        "cancel_at_period_end": view.cancel_at_period_end,
        "pending_change": None
        if change is None
        else {
            "plan": change.plan_id,
            "interval": change.interval.value,
            "effective_at": _t(change.effective_at),
        },
        "payment_method": _pm(view.payment_method),
        "as_of": _t(view.as_of),
        "ended_at": _t(view.ended_at),
        "cancels_at": _t(view.cancels_at),
    }


def _sub_in(data: Json) -> GatewaySubscription:
    change = data["pending_change"]
    return GatewaySubscription(
        customer_ref=data["customer"],
        subscription_ref=data["id"],
        plan_id=data["plan"],
        interval=Interval(data["interval"]),
        status=Status(data["status"]),
        current_period_start=_req(data["current_period_start"]),
        current_period_end=_req(data["current_period_end"]),
        cancel_at_period_end=data["cancel_at_period_end"],
        pending_change=None
        if change is None
        else PendingChange(
            change["plan"], Interval(change["interval"]), _req(change["effective_at"])
        ),
        payment_method=_pm_in(data["payment_method"]),
        as_of=_req(data["as_of"]),
        ended_at=_dt(data["ended_at"]),
        cancels_at=_dt(data.get("cancels_at")),
    )


def _inv(inv: Invoice) -> Json:
    return {
        "id": inv.id,
        "customer": inv.customer_ref,
        "subscription": inv.subscription_ref,
        "number": inv.number,
        "status": inv.status.value,
        "amount_due": inv.amount_due.amount,
        "amount_paid": inv.amount_paid.amount,
        "currency": inv.amount_due.currency,
        "created": _t(inv.created),
        "period_start": _t(inv.period_start),
        "period_end": _t(inv.period_end),
        "billing_reason": inv.billing_reason.value,
        "pdf_url": inv.pdf_url,
        "hosted_url": inv.hosted_url,
    }


def _inv_in(data: Json) -> Invoice:
    return Invoice(
        id=data["id"],
        customer_ref=data["customer"],
        subscription_ref=data["subscription"],
        number=data["number"],
        status=InvoiceStatus(data["status"]),
        amount_due=Money(data["amount_due"], data["currency"]),
        amount_paid=Money(data["amount_paid"], data["currency"]),
        created=_req(data["created"]),
        period_start=_req(data["period_start"]),
        period_end=_req(data["period_end"]),
        billing_reason=BillingReason.parse(data["billing_reason"]),
        pdf_url=data["pdf_url"],
        hosted_url=data["hosted_url"],
    )


def encode_event(event: GatewayEvent) -> str:
    return json.dumps(
        {
            "id": event.id,
            "kind": event.kind.value,
            "type": event.gateway_type,
            "created": _t(event.created),
            "customer": event.customer_ref,
            "account_id": event.account_id,
            "subscription_ref": event.subscription_ref,
            "subscription": _sub(event.subscription) if event.subscription else None,
            "invoice": _inv(event.invoice) if event.invoice else None,
            "payment_method": _pm(event.payment_method),
            "checkout_id": event.checkout_id,
            "default_payment_method_changed": event.default_payment_method_changed,
        },
        sort_keys=True,
    )


def decode_event(payload: str) -> GatewayEvent:
    data = json.loads(payload)
    return GatewayEvent(
        id=data["id"],
        kind=GatewayEventKind(data["kind"]),
        gateway_type=data["type"],
        created=_req(data["created"]),
        customer_ref=data["customer"],
        account_id=data["account_id"],
        subscription_ref=data["subscription_ref"],
        subscription=_sub_in(data["subscription"]) if data["subscription"] else None,
        invoice=_inv_in(data["invoice"]) if data["invoice"] else None,
        payment_method=_pm_in(data["payment_method"]),
        checkout_id=data["checkout_id"],
        default_payment_method_changed=bool(data.get("default_payment_method_changed")),
    )


class SandboxEventDecoder:
    """`application.ports.EventDecoder` for the sandbox gateway's payloads."""

    def decode(self, payload: str) -> GatewayEvent:
        return decode_event(payload)
