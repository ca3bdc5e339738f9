"""Invoices as the gateway issues them; we keep a read-only cache for listing and PDF download."""

from __future__ import annotations

import enum
from datetime import datetime

import attrs

from responseiq_billing.domain.money import Money


class InvoiceStatus(enum.Enum):
    DRAFT = "draft"
    OPEN = "open"
    PAID = "paid"
    UNCOLLECTIBLE = "uncollectible"
    VOID = "void"

    @property
    def stage(self) -> int:
        """How far along its life an invoice is; an invoice never moves to an earlier stage.

        draft -> open -> paid | void | uncollectible, and uncollectible -> paid | void.
        """
        return {"draft": 0, "open": 1, "uncollectible": 2, "paid": 3, "void": 3}[self.value]


class BillingReason(enum.Enum):
    """Why the invoice exists (Stripe's `billing_reason`)."""

    SUBSCRIPTION_CREATE = "subscription_create"
    SUBSCRIPTION_CYCLE = "subscription_cycle"
    SUBSCRIPTION_UPDATE = "subscription_update"
    MANUAL = "manual"
    OTHER = "other"

    @classmethod
    def parse(cls, value: str | None) -> BillingReason:
        try:
            return cls(value or "other")
        except ValueError:
            return cls.OTHER


@attrs.frozen
class Invoice:
    """One invoice. `id` is the gateway's opaque reference (`in_...`)."""

    id: str
    customer_ref: str
    subscription_ref: str | None
    number: str | None
    status: InvoiceStatus
    amount_due: Money
    amount_paid: Money
    created: datetime
    period_start: datetime
    period_end: datetime
    billing_reason: BillingReason
    pdf_url: str | None
    hosted_url: str | None


def is_older_state(candidate: Invoice, held: Invoice) -> bool:
    """Would `candidate` move `held` back to an earlier stage (a late event about it)?"""
    return candidate.status.stage < held.status.stage


@attrs.frozen
class InvoicePage:
    items: tuple[Invoice, ...]
    has_more: bool
