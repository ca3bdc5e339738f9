"""The one place where Paddle SDK entities become domain values and Paddle errors domain errors."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, NoReturn

import requests
from paddle_billing.Entities.Price import Price
from paddle_billing.Entities.Subscription import Subscription as PaddleSubscription
from paddle_billing.Entities.Transaction import Transaction
from paddle_billing.Exceptions.ApiError import ApiError

from responseiq_billing.domain.errors import (
    BillingError,
    GatewayRejected,
    GatewayUnavailable,
    PaymentActionRequired,
    PaymentDeclined,
)
from responseiq_billing.domain.invoices import BillingReason, Invoice, InvoiceStatus
from responseiq_billing.domain.money import Money
from responseiq_billing.domain.plans import Interval
from responseiq_billing.domain.subscription import GatewaySubscription, PaymentMethodSummary, Status

# What `billing paddle setup` writes into each price's (and product's) custom_data.
PLAN_KEY, INTERVAL_KEY = "plan_id", "interval"
# What our transactions and subscriptions carry in custom_data.
ACCOUNT_KEY = "account_id"
COMMAND_KEY = "command_key"  # the idempotency key of the command that created the object

# Transactions that are invoices: a checkout's first payment, renewals, upgrade charges.
INVOICE_ORIGINS = (
    "web",
    "api",
    "subscription_recurring",
    "subscription_update",
    "subscription_charge",
)
INVOICE_STATUSES = ("billed", "paid", "completed", "past_due")
_REASONS = {
    "web": BillingReason.SUBSCRIPTION_CREATE,
    "api": BillingReason.SUBSCRIPTION_CREATE,
    "subscription_recurring": BillingReason.SUBSCRIPTION_CYCLE,
    "subscription_update": BillingReason.SUBSCRIPTION_UPDATE,
    "subscription_charge": BillingReason.MANUAL,
}
_INVOICE_STATUS = {
    "draft": InvoiceStatus.DRAFT,
    "ready": InvoiceStatus.DRAFT,
    "billed": InvoiceStatus.OPEN,
    "past_due": InvoiceStatus.OPEN,  # the payment failed; Paddle's dunning retries it
    "paid": InvoiceStatus.PAID,
    "completed": InvoiceStatus.PAID,
    "canceled": InvoiceStatus.VOID,
}


def value(enum_or_str: object) -> str:
    """The wire value of an SDK enum member (or a plain string)."""
    found = getattr(enum_or_str, "value", enum_or_str)
    return str(found)


def custom(entity: object) -> Mapping[str, Any]:
    data = getattr(getattr(entity, "custom_data", None), "data", None)
    return data if isinstance(data, Mapping) else {}


def money(amount: str | int | None, currency: object) -> Money:
    return Money(int(amount or 0), value(currency).upper())


def utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC)


# -- prices ----------------------------------------------------------------------------------


def price_entry(price: Price) -> tuple[str, Interval] | None:
    """The (plan, interval) that `billing paddle setup` recorded in a price's custom_data."""
    data = custom(price)
    plan, interval = data.get(PLAN_KEY), data.get(INTERVAL_KEY)
    if not isinstance(plan, str) or not isinstance(interval, str):
        return None
    try:
        return plan, Interval(interval)
    except ValueError:
        return None


def require_entry(price: Price) -> tuple[str, Interval]:
    found = price_entry(price)
    if found is None:
        raise GatewayRejected(f"The Paddle price {price.id} is not a price of the plan catalog.")
    return found


# -- subscriptions ----------------------------------------------------------------------------

_STATUS = {
    "active": Status.ACTIVE,
    "trialing": Status.TRIALING,
    "past_due": Status.PAST_DUE,
    "paused": Status.PAUSED,
    "canceled": Status.CANCELED,
    "inactive": Status.INCOMPLETE,
}


def subscription_view(
    sub: PaddleSubscription, *, payment_method: PaymentMethodSummary | None, as_of: datetime
) -> GatewaySubscription:
    """A Paddle subscription as the domain's `GatewaySubscription`.

    Paddle has no scheduled item changes, so `pending_change` is always None here: the core
    keeps a downgrade until it applies it (`application.scheduled_changes`). A scheduled
    cancellation is Paddle's `scheduled_change.action == "cancel"`. A canceled subscription has
    no billing period any more; its last one ran from the last billing to the cancellation.
    """
    if not sub.items:
        raise GatewayRejected(f"Paddle subscription {sub.id} has no items.")
    item = sub.items[0]
    plan_id, interval = require_entry(item.price)
    status = _STATUS.get(value(sub.status), Status.INCOMPLETE)
    period = sub.current_billing_period
    ended = utc(sub.canceled_at) if sub.canceled_at and status is Status.CANCELED else None
    if period is not None:
        start, end = utc(period.starts_at), utc(period.ends_at)
    else:
        start = utc(item.previously_billed_at or sub.started_at or sub.created_at)
        end = ended or start
    change = sub.scheduled_change
    return GatewaySubscription(
        customer_ref=sub.customer_id,
        subscription_ref=sub.id,
        plan_id=plan_id,
        interval=interval,
        status=status,
        current_period_start=start,
        current_period_end=end,
        cancel_at_period_end=change is not None and value(change.action) == "cancel",
        pending_change=None,
        payment_method=payment_method,
        as_of=as_of,
        ended_at=ended,
    )


# -- transactions: payments and invoices --------------------------------------------------------


def card_summary(txn: Transaction) -> PaymentMethodSummary | None:
    """Brand and last4 of the card that a transaction's captured payment used."""
    for attempt in txn.payments or []:
        if value(attempt.status) != "captured":
            continue
        card = attempt.method_details.card if attempt.method_details else None
        if card is None:
            continue
        try:
            return PaymentMethodSummary(value(card.type), card.last4)
        except ValueError:
            continue
    return None


def is_invoice(txn: Transaction) -> bool:
    return value(txn.origin) in INVOICE_ORIGINS and value(txn.status) in INVOICE_STATUSES


def grand_total(txn: Transaction) -> Money:
    """What the customer pays: Paddle's totals are tax-inclusive (Paddle is merchant of record)."""
    totals = txn.details.totals
    return money(totals.grand_total or totals.total, txn.currency_code)


def invoice(txn: Transaction, pdf_url: str | None) -> Invoice:
    """A billed transaction as an invoice. Paddle issues it as merchant of record; there is no
    hosted invoice page, so the (short-lived) PDF link stands for both links."""
    status = _INVOICE_STATUS[value(txn.status)]
    due = grand_total(txn)
    period = txn.billing_period
    created = utc(txn.created_at)
    return Invoice(
        id=txn.id,
        customer_ref=txn.customer_id or "",
        subscription_ref=txn.subscription_id,
        number=txn.invoice_number,
        status=status,
        amount_due=due,
        amount_paid=due if status is InvoiceStatus.PAID else Money.zero(due.currency),
        created=created,
        period_start=utc(period.starts_at) if period else created,
        period_end=utc(period.ends_at) if period else created,
        billing_reason=_REASONS.get(value(txn.origin), BillingReason.OTHER),
        pdf_url=pdf_url,
        hosted_url=pdf_url,
    )


# -- errors --------------------------------------------------------------------------------------

NotFoundFactory = Callable[[], BillingError]
_DECLINED = {"subscription_payment_declined", "transaction_payment_method_declined"}
_ACTION = {"subscription_payment_requires_action", "transaction_payment_requires_action"}


def billing_error(error: Exception, *, not_found: NotFoundFactory | None = None) -> BillingError:
    """The domain error for a Paddle error. Messages never echo the API key or raw bodies."""
    if isinstance(error, ApiError):
        status = error.response.status_code if error.response is not None else 0
        code = error.error_code or ""
        if code in _DECLINED:
            return PaymentDeclined()
        if code in _ACTION:
            return PaymentActionRequired()
        if status == 404 and not_found is not None:
            return not_found()
        if status in (401, 403):
            return GatewayUnavailable(
                "Paddle refused our credentials; the operator must fix the key."
            )
        if status == 429 or status >= 500:
            return GatewayUnavailable("Paddle is unavailable or rate limiting; try again shortly.")
        return GatewayRejected(f"Paddle rejected the request ({code or status}).")
    if isinstance(error, requests.ConnectionError | requests.Timeout):
        return GatewayUnavailable("Paddle could not be reached; try again shortly.")
    if isinstance(error, requests.HTTPError):
        status = error.response.status_code if error.response is not None else 0
        if status == 404 and not_found is not None:
            return not_found()
        if 400 <= status < 500:
            return GatewayRejected(f"Paddle rejected the request ({status}).")
        return GatewayUnavailable("Paddle had an internal error; try again shortly.")
    return GatewayUnavailable("Paddle failed unexpectedly; try again shortly.")


def refused_price(error: BillingError) -> bool:
    """Whether Paddle refused a write because a price it names cannot be sold: archived or
    unknown. Paddle answers 400 with a `*price_not_found` code (`price_not_found`,
    `subscription_price_not_found`: "One or more prices sent in the items array could not be
    found"; its common cause, per Paddle's error reference, "The price has been archived")."""
    cause = error.__cause__
    if not isinstance(cause, ApiError) or cause.response is None:
        return False
    return cause.response.status_code == 400 and (cause.error_code or "").endswith(
        "price_not_found"
    )


def raise_billing_error(error: Exception, *, not_found: NotFoundFactory | None = None) -> NoReturn:
    raise billing_error(error, not_found=not_found) from error


@contextmanager
def translated(not_found: NotFoundFactory | None = None) -> Iterator[None]:
    """Run Paddle calls, turning SDK and transport errors into domain errors (cause kept)."""
    try:
        yield
    except (ApiError, requests.RequestException) as error:
        raise_billing_error(error, not_found=not_found)
