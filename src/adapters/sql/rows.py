"""Rows and domain objects: how each repository's table row maps to its domain object and back,
explicitly, field by field."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from responseiq_billing.application.ports import AuditEntry, CheckoutRecord, CheckoutStatus
from responseiq_billing.domain.invoices import BillingReason, Invoice, InvoiceStatus
from responseiq_billing.domain.money import Money
from responseiq_billing.domain.plans import Interval
from responseiq_billing.domain.quotes import Quote
from responseiq_billing.domain.rules import ChangeTiming
from responseiq_billing.domain.subscription import (
    PaymentMethodSummary,
    PendingChange,
    Status,
    Subscription,
)

Row = sa.RowMapping


# -- subscriptions ----------------------------------------------------------------------------


def subscription_to_row(sub: Subscription) -> dict[str, Any]:
    pending, method = sub.pending_change, sub.payment_method
    return {
        "account_id": sub.account_id,
        "subscription_ref": sub.subscription_ref,
        "customer_ref": sub.customer_ref,
        "plan_id": sub.plan_id,
        "interval": sub.interval.value,
        "status": sub.status.value,
        "current_period_start": sub.current_period_start,
        "current_period_end": sub.current_period_end,
        "cancel_at_period_end": sub.cancel_at_period_end,
        "pending_plan_id": pending.plan_id if pending else None,
        "pending_interval": pending.interval.value if pending else None,
        "pending_effective_at": pending.effective_at if pending else None,
        "payment_method_brand": method.brand if method else None,
        "payment_method_last4": method.last4 if method else None,
        "synced_at": sub.synced_at,
        "ended_at": sub.ended_at,
        "cancels_at": sub.cancels_at,
    }


def subscription_from_row(row: Row) -> Subscription:
    pending = None
    if row["pending_plan_id"] is not None:
        pending = PendingChange(
            plan_id=row["pending_plan_id"],
            interval=Interval(row["pending_interval"]),
            effective_at=row["pending_effective_at"],
        )
    method = None
    if row["payment_method_brand"] is not None:
        method = PaymentMethodSummary(row["payment_method_brand"], row["payment_method_last4"])
    return Subscription(
        account_id=row["account_id"],
        customer_ref=row["customer_ref"],
        subscription_ref=row["subscription_ref"],
        plan_id=row["plan_id"],
        interval=Interval(row["interval"]),
        status=Status(row["status"]),
        current_period_start=row["current_period_start"],
        current_period_end=row["current_period_end"],
        cancel_at_period_end=row["cancel_at_period_end"],
        pending_change=pending,
        payment_method=method,
        version=row["version"],
        synced_at=row["synced_at"],
        ended_at=row["ended_at"],
        cancels_at=row["cancels_at"],
    )


# -- checkouts --------------------------------------------------------------------------------


def checkout_to_row(checkout: CheckoutRecord) -> dict[str, Any]:
    return {
        "id": checkout.id,
        "account_id": checkout.account_id,
        "plan_id": checkout.plan_id,
        "interval": checkout.interval.value,
        "status": checkout.status.value,
        "created_at": checkout.created_at,
        "closed_at": checkout.closed_at,
    }


def checkout_from_row(row: Row) -> CheckoutRecord:
    return CheckoutRecord(
        id=row["id"],
        account_id=row["account_id"],
        plan_id=row["plan_id"],
        interval=Interval(row["interval"]),
        status=CheckoutStatus(row["status"]),
        created_at=row["created_at"],
        closed_at=row["closed_at"],
    )


# -- quotes -----------------------------------------------------------------------------------


def quote_to_row(quote: Quote) -> dict[str, Any]:
    return {
        "id": quote.id,
        "account_id": quote.account_id,
        "subscription_ref": quote.subscription_ref,
        "from_plan": quote.from_plan,
        "from_interval": quote.from_interval.value,
        "to_plan": quote.to_plan,
        "to_interval": quote.to_interval.value,
        "timing": quote.timing.value,
        "amount_due_now": quote.amount_due_now.amount,
        "currency": quote.amount_due_now.currency,
        "effective_at": quote.effective_at,
        "proration_at": quote.proration_at,
        "created_at": quote.created_at,
        "expires_at": quote.expires_at,
        "redeemed_at": quote.redeemed_at,
    }


def quote_from_row(row: Row) -> Quote:
    return Quote(
        id=row["id"],
        account_id=row["account_id"],
        subscription_ref=row["subscription_ref"],
        from_plan=row["from_plan"],
        from_interval=Interval(row["from_interval"]),
        to_plan=row["to_plan"],
        to_interval=Interval(row["to_interval"]),
        timing=ChangeTiming(row["timing"]),
        amount_due_now=Money(row["amount_due_now"], row["currency"]),
        effective_at=row["effective_at"],
        proration_at=row["proration_at"],
        created_at=row["created_at"],
        expires_at=row["expires_at"],
        redeemed_at=row["redeemed_at"],
    )


# -- invoices ---------------------------------------------------------------------------------


def invoice_to_row(account_id: str, invoice: Invoice) -> dict[str, Any]:
    if invoice.amount_due.currency != invoice.amount_paid.currency:
        raise ValueError("an invoice is in one currency")
    return {
        "id": invoice.id,
        "account_id": account_id,
        "customer_ref": invoice.customer_ref,
        "subscription_ref": invoice.subscription_ref,
        "number": invoice.number,
        "status": invoice.status.value,
        "amount_due": invoice.amount_due.amount,
        "amount_paid": invoice.amount_paid.amount,
        "currency": invoice.amount_due.currency,
        "created": invoice.created,
        "period_start": invoice.period_start,
        "period_end": invoice.period_end,
        "billing_reason": invoice.billing_reason.value,
        "pdf_url": invoice.pdf_url,
        "hosted_url": invoice.hosted_url,
    }


def invoice_from_row(row: Row) -> Invoice:
    return Invoice(
        id=row["id"],
        customer_ref=row["customer_ref"],
        subscription_ref=row["subscription_ref"],
        number=row["number"],
        status=InvoiceStatus(row["status"]),
        amount_due=Money(row["amount_due"], row["currency"]),
        amount_paid=Money(row["amount_paid"], row["currency"]),
        created=row["created"],
        period_start=row["period_start"],
        period_end=row["period_end"],
        billing_reason=BillingReason.parse(row["billing_reason"]),
        pdf_url=row["pdf_url"],
        hosted_url=row["hosted_url"],
    )


def audit_entry_to_row(entry: AuditEntry) -> dict[str, Any]:
    return {
        "account_id": entry.account_id,
        "action": entry.action,
        "inputs": dict(entry.inputs),
        "outcome": entry.outcome,
        "at": entry.at,
    }
