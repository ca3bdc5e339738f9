"""Request and response bodies as msgspec Structs; requests reject unknown fields."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

import msgspec

PlanId = Annotated[str, msgspec.Meta(min_length=1, max_length=64, examples=["growth"])]
IntervalName = Literal["month", "year"]
Timing = Literal["immediate", "end_of_period"]
ReturnUrl = Annotated[
    str,
    msgspec.Meta(
        min_length=8,
        max_length=2000,
        pattern=r"^https?://[^\s]+$",
        examples=["https://app.responseiq.com/settings/billing"],
    ),
]
# Gateway and quote ids (`qt_…`, `in_…`, `cs_test_…`): letters, digits, `_` and `-`. Checked at
# the edge so that a NUL byte, a newline or a 10 KB string never reaches a query or a log.
ID_PATTERN = r"^[A-Za-z0-9_-]+$"
ID_MAX_LENGTH = 255
OpaqueId = Annotated[str, msgspec.Meta(min_length=1, max_length=ID_MAX_LENGTH, pattern=ID_PATTERN)]


class RequestBody(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Base of every request body: an unknown field is an error, not silently dropped."""


class CheckoutRequest(RequestBody):
    plan: PlanId
    interval: IntervalName
    ui_mode: Literal["hosted", "embedded"] = "hosted"
    return_url: ReturnUrl | None = None


class PortalRequest(RequestBody):
    return_url: ReturnUrl | None = None
    flow: Literal["payment_method_update", "subscription_update", "subscription_cancel"] | None = (
        None
    )


class PlanChoice(RequestBody):
    plan: PlanId
    interval: IntervalName


class ChangeRequest(RequestBody):
    plan: PlanId
    interval: IntervalName
    quote_id: OpaqueId | None = None


class SetupRequest(RequestBody):
    return_url: ReturnUrl | None = None


class ClockAdvanceRequest(RequestBody):
    days: Annotated[int, msgspec.Meta(ge=0, le=3660)]


# -- responses ------------------------------------------------------------------------------------


class ResponseBody(msgspec.Struct, kw_only=True):
    pass


class MoneyOut(ResponseBody):
    amount: int  # minor units (cents)
    currency: str


class FeaturesOut(ResponseBody):
    seats: int | None  # None: unlimited
    monthly_responses: int | None
    flags: list[str]


class PriceOut(ResponseBody):
    interval: IntervalName
    amount: MoneyOut


class PlanOut(ResponseBody):
    id: str
    name: str
    prices: list[PriceOut]
    features: FeaturesOut


class PlansOut(ResponseBody):
    data: list[PlanOut]


class PendingChangeOut(ResponseBody):
    plan: str
    interval: IntervalName
    effective_at: datetime


class PaymentMethodOut(ResponseBody):
    brand: str
    last4: str


class SubscriptionOut(ResponseBody):
    plan: str
    interval: IntervalName
    status: str
    current_period_start: datetime
    current_period_end: datetime
    cancel_at_period_end: bool
    # When a scheduled cancellation ends it (period end or a set date); null when none is.
    cancels_at: datetime | None
    pending_change: PendingChangeOut | None
    payment_method: PaymentMethodOut | None
    features: FeaturesOut
    access_until: datetime | None


class EntitlementsOut(ResponseBody):
    plan: str | None
    features: FeaturesOut
    access_until: datetime | None
    reason: str


class CheckoutOut(ResponseBody):
    checkout_id: str
    url: str | None
    client_secret: str | None


class PortalOut(ResponseBody):
    url: str


class SetupOut(ResponseBody):
    setup_id: str
    url: str | None
    client_secret: str | None


class PreviewOut(ResponseBody):
    quote_id: str
    timing: Timing
    amount_due_now: MoneyOut
    effective_at: datetime
    expires_at: datetime


class InvoiceOut(ResponseBody):
    id: str
    number: str | None
    status: str
    amount_due: int
    amount_paid: int
    currency: str
    created: datetime
    period_start: datetime
    period_end: datetime
    billing_reason: str
    pdf_url: str | None
    hosted_url: str | None


class InvoicesOut(ResponseBody):
    data: list[InvoiceOut]
    has_more: bool


class WebhookAck(ResponseBody):
    received: bool
    duplicate: bool


class CheckoutResultOut(ResponseBody):
    status: str  # open | complete | expired
    subscription: SubscriptionOut | None


class PaymentMethodResultOut(ResponseBody):
    status: str  # pending | complete
    payment_method: PaymentMethodOut | None


class InboxOut(ResponseBody):
    pending: int
    oldest_pending_age_seconds: float | None
    parked: int
    applied: int


class HealthOut(ResponseBody):
    status: str


class ClockOut(ResponseBody):
    now: datetime
