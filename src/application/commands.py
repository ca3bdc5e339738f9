"""Commands: what a caller asks the billing core to do. The account always comes from auth."""

from __future__ import annotations

import uuid

import attrs

from responseiq_billing.application.ports import PortalFlow, UiMode
from responseiq_billing.domain.plans import Interval


def _request_id() -> str:
    return uuid.uuid4().hex


def _interval(value: Interval | str) -> Interval:
    """Commands carry the domain's Interval; a name is parsed once, here (a wrong one is
    `UnknownInterval`, whose message never repeats it)."""
    return value if isinstance(value, Interval) else Interval.parse(value)


@attrs.frozen
class StartCheckout:
    account_id: str
    plan: str
    interval: Interval = attrs.field(converter=_interval)
    success_url: str
    cancel_url: str
    ui_mode: UiMode = UiMode.HOSTED
    request_id: str = attrs.field(factory=_request_id)


@attrs.frozen
class CompleteCheckout:
    """The customer came back from checkout: record the subscription without waiting for the webhook."""

    account_id: str
    checkout_id: str


@attrs.frozen
class OpenPortal:
    account_id: str
    return_url: str
    flow: PortalFlow | None = None
    request_id: str = attrs.field(factory=_request_id)


@attrs.frozen
class PreviewPlanChange:
    account_id: str
    plan: str
    interval: Interval = attrs.field(converter=_interval)


@attrs.frozen
class ChangePlan:
    account_id: str
    plan: str
    interval: Interval = attrs.field(converter=_interval)
    quote_id: str | None = None
    request_id: str = attrs.field(factory=_request_id)


@attrs.frozen
class CancelPendingChange:
    account_id: str
    request_id: str = attrs.field(factory=_request_id)


@attrs.frozen
class CancelSubscription:
    account_id: str
    request_id: str = attrs.field(factory=_request_id)


@attrs.frozen
class ResumeSubscription:
    account_id: str
    request_id: str = attrs.field(factory=_request_id)


@attrs.frozen
class StartPaymentMethodUpdate:
    account_id: str
    success_url: str
    cancel_url: str
    request_id: str = attrs.field(factory=_request_id)


@attrs.frozen
class CompletePaymentMethodUpdate:
    account_id: str
    setup_id: str


@attrs.frozen
class ListInvoices:
    account_id: str
    limit: int = 10
    starting_after: str | None = None


@attrs.frozen
class GetInvoicePdf:
    account_id: str
    invoice_id: str
