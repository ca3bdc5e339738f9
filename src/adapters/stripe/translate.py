"""The one place where Stripe objects become domain values and Stripe errors become domain errors."""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, NoReturn

import stripe

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
from responseiq_billing.domain.subscription import (
    GatewaySubscription,
    PaymentMethodSummary,
    PendingChange,
    Status,
)

StripeDict = Mapping[str, Any]


# -- prices --------------------------------------------------------------------------------


def lookup_key(plan_id: str, interval: Interval) -> str:
    """The Stripe price lookup key of a catalog entry."""
    return f"{plan_id}_{interval.value}"


def parse_lookup_key(key: str | None) -> tuple[str, Interval] | None:
    if not key or "_" not in key:
        return None
    plan_id, _, interval = key.rpartition("_")
    try:
        return plan_id, Interval(interval)
    except ValueError:
        return None


# Our products are `responseiq_{plan}` (`billing stripe setup`); their prices carry the plan in
# metadata. Either names the plan of a price that no longer has a lookup key (retired by setup).
PRODUCT_PREFIX = "responseiq_"


def price_entry(
    price: StripeDict, plans: Collection[str] | None = None
) -> tuple[str, Interval] | None:
    """The (plan, interval) of a price object, active or retired; None when not one of ours.

    The plan comes from the price's metadata (setup writes `plan_id`), else from our product id,
    else from the lookup key; the interval from `recurring` (one interval, no multiples).
    """
    recurring = expanded(price.get("recurring")) or {}
    try:
        interval = Interval(str(recurring.get("interval")))
    except ValueError:
        return None
    if int(recurring.get("interval_count") or 1) != 1:
        return None
    metadata = expanded(price.get("metadata")) or {}
    product = ref(price.get("product")) or ""
    candidates = [
        metadata.get("plan_id"),
        product.removeprefix(PRODUCT_PREFIX) if product.startswith(PRODUCT_PREFIX) else None,
    ]
    keyed = parse_lookup_key(price.get("lookup_key"))
    if keyed is not None and keyed[1] is interval:
        candidates.append(keyed[0])
    for plan in candidates:
        if isinstance(plan, str) and plan and (plans is None or plan in plans):
            return plan, interval
    return None


class PriceMap:
    """Stripe prices <-> catalog entries.

    Two tables of different lifetimes. Price id -> entry is a fact (a price's product and
    interval never change), so it is kept for good and covers retired prices, which
    subscribers keep paying until they change plan. Entry -> current price id (what a checkout
    or an upgrade sells) moves when `billing stripe setup` transfers a lookup key, so its owner
    reloads it when it is older than a bound or misses.

    A price object maps by itself (`price_entry`); a bare id (a schedule phase's) maps from the
    table, else through `resolve` (one `GET /v1/prices/{id}`), whose answer is remembered.
    """

    def __init__(
        self,
        by_key: Mapping[tuple[str, Interval], str] | None = None,
        *,
        plans: Collection[str] | None = None,
        resolve: Callable[[str], StripeDict | None] | None = None,
    ) -> None:
        self._ids: dict[tuple[str, Interval], str] = dict(by_key or {})
        self._keys: dict[str, tuple[str, Interval]] = {v: k for k, v in self._ids.items()}
        self._plans = frozenset(plans) if plans is not None else None
        self._resolve = resolve

    def add(self, plan_id: str, interval: Interval, price_id: str) -> None:
        self._ids[(plan_id, interval)] = price_id
        self._keys[price_id] = (plan_id, interval)

    def replace_current(self, current: Mapping[tuple[str, Interval], str]) -> None:
        """The catalog's current prices, as just read; ids learnt before stay known."""
        self._ids = dict(current)
        for entry, price_id in current.items():
            self._keys[price_id] = entry

    def remember(self, price: StripeDict) -> None:
        """Learn a price object's entry (prices seen in responses)."""
        found = price_entry(price, self._plans)
        if found is not None and isinstance(price.get("id"), str):
            self._keys.setdefault(price["id"], found)

    def price_id(self, plan_id: str, interval: Interval) -> str | None:
        return self._ids.get((plan_id, interval))

    def entry(self, price: str | StripeDict) -> tuple[str, Interval]:
        """The (plan, interval) of a price id or price object; GatewayRejected if not ours."""
        if isinstance(price, Mapping):
            found = price_entry(price, self._plans)
            if found is not None:
                if isinstance(price.get("id"), str):
                    self._keys.setdefault(price["id"], found)
                return found
            price = str(price.get("id"))
        known = self._keys.get(price)
        if known is None and self._resolve is not None:
            obj = self._resolve(price)
            known = price_entry(obj, self._plans) if obj is not None else None
            if known is not None:
                self._keys[price] = known
        if known is None:
            raise GatewayRejected(f"The Stripe price {price} is not a price of the plan catalog.")
        return known

    def __len__(self) -> int:
        return len(self._ids)


# -- small readers -------------------------------------------------------------------------


def ts(value: int | float) -> datetime:
    return datetime.fromtimestamp(int(value), tz=UTC)


def ref(value: str | StripeDict | None) -> str | None:
    """The id of an expandable field, expanded or not."""
    if value is None:
        return None
    if isinstance(value, str):
        return value
    found = value.get("id")
    return found if isinstance(found, str) else None


def expanded(value: object) -> StripeDict | None:
    return value if isinstance(value, Mapping) else None


def money(amount: int, currency: str) -> Money:
    return Money(int(amount), currency.upper())


# -- payment methods -------------------------------------------------------------------------


def card_summary(payment_method: object) -> PaymentMethodSummary | None:
    """Brand and last4 of an expanded card payment method; None for anything else."""
    pm = expanded(payment_method)
    if pm is None:
        return None
    card = expanded(pm.get("card"))
    if card is None:
        return None
    brand, last4 = card.get("brand"), card.get("last4")
    if not isinstance(brand, str) or not isinstance(last4, str):
        return None
    try:
        return PaymentMethodSummary(brand, last4)
    except ValueError:
        return None


def subscription_payment_method(sub: StripeDict) -> PaymentMethodSummary | None:
    """The method the next charge uses: the subscription's own default wins over the customer's."""
    own = card_summary(sub.get("default_payment_method"))
    if own is not None or sub.get("default_payment_method") is not None:
        return own
    customer = expanded(sub.get("customer"))
    if customer is None:
        return None
    settings = expanded(customer.get("invoice_settings")) or {}
    return card_summary(settings.get("default_payment_method"))


# -- subscriptions -----------------------------------------------------------------------------


def subscription_is_live(sub: StripeDict) -> bool:
    """Whether a Stripe subscription still belongs to its customer (`Status.is_live`)."""
    return Status(sub["status"]).is_live


def first_item(sub: StripeDict) -> StripeDict:
    items = expanded(sub.get("items")) or {}
    data = items.get("data") or []
    if not data:
        raise GatewayRejected(f"Stripe subscription {sub.get('id')} has no items.")
    item: StripeDict = data[0]
    return item


def pending_change(schedule: object, prices: PriceMap) -> PendingChange | None:
    """The next phase of an attached schedule whose price differs from the current phase."""
    sched = expanded(schedule)
    if sched is None or sched.get("status") not in ("not_started", "active"):
        return None
    phases = list(sched.get("phases") or [])
    current = expanded(sched.get("current_phase"))
    start = int(current["start_date"]) if current else None
    index = 0
    for i, phase in enumerate(phases):
        if start is not None and int(phase.get("start_date") or 0) == start:
            index = i
            break
    now_entry = _phase_entry(phases[index], prices) if phases else None
    for phase in phases[index + 1 :]:
        entry = _phase_entry(phase, prices)
        if entry is not None and entry != now_entry:
            return PendingChange(entry[0], entry[1], ts(phase["start_date"]))
    return None


def _phase_entry(phase: StripeDict, prices: PriceMap) -> tuple[str, Interval] | None:
    items = phase.get("items") or []
    if not items:
        return None
    return prices.entry(items[0]["price"])


def subscription_view(
    sub: StripeDict,
    prices: PriceMap,
    *,
    as_of: datetime,
    schedule: object = None,
) -> GatewaySubscription:
    """A Stripe subscription as the domain's `GatewaySubscription`.

    Periods come from the first item (current API generation). `schedule` overrides the
    subscription's own `schedule` field when the caller holds a fresher schedule object.
    """
    item = first_item(sub)
    price = item["price"]
    if isinstance(price, Mapping):
        prices.remember(price)
    plan_id, interval = prices.entry(price)
    sched = schedule if schedule is not None else sub.get("schedule")
    ended = sub.get("ended_at")
    return GatewaySubscription(
        customer_ref=ref(sub.get("customer")) or "",
        subscription_ref=str(sub["id"]),
        plan_id=plan_id,
        interval=interval,
        status=Status(sub["status"]),
        current_period_start=ts(item["current_period_start"]),
        current_period_end=ts(item["current_period_end"]),
        # A cancellation set by date (`cancel_at`: Dashboard, API, `min_period_end`) ends the
        # subscription as surely as `cancel_at_period_end`; the view says so either way.
        cancel_at_period_end=bool(sub.get("cancel_at_period_end"))
        or (sub.get("cancel_at") is not None and Status(sub["status"]).is_live),
        pending_change=pending_change(sched, prices),
        payment_method=subscription_payment_method(sub),
        as_of=as_of,
        ended_at=ts(ended) if ended else None,
        # `cancel_at` is the date either way (this API version sets it with
        # `cancel_at_period_end` too); without it the view's `scheduled_end` is the period end.
        cancels_at=ts(sub["cancel_at"]) if sub.get("cancel_at") is not None else None,
    )


# -- invoices ------------------------------------------------------------------------------------


def invoice_subscription_ref(inv: StripeDict) -> str | None:
    """The subscription of an invoice: `parent.subscription_details` in the current API."""
    parent = expanded(inv.get("parent")) or {}
    details = expanded(parent.get("subscription_details")) or {}
    found = ref(details.get("subscription"))
    if found:
        return found
    legacy = inv.get("subscription")
    return ref(legacy) if legacy else None


def invoice(inv: StripeDict) -> Invoice:
    currency = str(inv["currency"])
    start, end = int(inv.get("period_start") or 0), int(inv.get("period_end") or 0)
    # A subscription invoice's own period fields describe the *previous* usage period; the
    # service period it bills is on its lines.
    lines = (expanded(inv.get("lines")) or {}).get("data") or []
    periods = [line["period"] for line in lines if expanded(line.get("period"))]
    if periods:
        start = min(int(p["start"]) for p in periods)
        end = max(int(p["end"]) for p in periods)
    return Invoice(
        id=str(inv["id"]),
        customer_ref=ref(inv.get("customer")) or "",
        subscription_ref=invoice_subscription_ref(inv),
        number=inv.get("number"),
        status=InvoiceStatus(inv.get("status") or "draft"),
        amount_due=money(inv.get("amount_due") or 0, currency),
        amount_paid=money(inv.get("amount_paid") or 0, currency),
        created=ts(inv["created"]),
        period_start=ts(start),
        period_end=ts(end),
        billing_reason=BillingReason.parse(inv.get("billing_reason")),
        pdf_url=inv.get("invoice_pdf"),
        hosted_url=inv.get("hosted_invoice_url"),
    )


# -- errors --------------------------------------------------------------------------------------

NotFoundFactory = Callable[[], BillingError]


def billing_error(
    error: stripe.StripeError, *, not_found: NotFoundFactory | None = None
) -> BillingError:
    """The domain error for a Stripe error. Messages never echo the API key or raw bodies."""
    if isinstance(error, stripe.CardError):
        if error.code == "authentication_required":
            return PaymentActionRequired()
        return PaymentDeclined(_decline_message(error))
    if isinstance(error, stripe.RateLimitError):
        return GatewayUnavailable("Stripe is rate limiting requests; try again shortly.")
    if isinstance(error, stripe.APIConnectionError):
        return GatewayUnavailable("Stripe could not be reached; try again shortly.")
    if isinstance(error, stripe.AuthenticationError | stripe.PermissionError):
        # The SDK's message can quote part of the key; ours never does.
        return GatewayUnavailable("Stripe refused our credentials; the operator must fix the key.")
    if isinstance(error, stripe.IdempotencyError):
        return GatewayRejected(
            "Stripe refused a retry: the same request key was used with different details."
        )
    if isinstance(error, stripe.InvalidRequestError):
        if not_found is not None and error.code == "resource_missing" and error.http_status == 404:
            return not_found()
        return GatewayRejected(f"Stripe rejected the request: {error.user_message or 'invalid'}")
    if isinstance(error, stripe.APIError):
        return GatewayUnavailable("Stripe had an internal error; try again shortly.")
    return GatewayUnavailable("Stripe failed unexpectedly; try again shortly.")


def _decline_message(error: stripe.CardError) -> str:
    body = expanded(error.json_body) or {}
    detail = expanded(body.get("error")) or {}
    reason = detail.get("decline_code") or error.code
    base = PaymentDeclined.default_message
    return f"{base} ({reason})" if reason else base


def refused_price(error: BillingError, where: str) -> bool:
    """Whether Stripe refused a write because the price it names under the parameter `where`
    (`line_items`, `items`, `phases[1]`, `subscription_details`) cannot be sold: 400
    `invalid_request_error` with `param` that price field, and either "The price specified is
    inactive. This field only accepts active prices." (archived: no `code`) or
    `resource_missing` ("No such price")."""
    cause = error.__cause__
    if not isinstance(cause, stripe.InvalidRequestError) or cause.http_status != 400:
        return False
    param = cause.param or ""
    if not (param.startswith(where) and param.endswith("[price]")):
        return False
    message = (cause.user_message or "").lower()
    return cause.code == "resource_missing" or "inactive" in message


def raise_billing_error(
    error: stripe.StripeError, *, not_found: NotFoundFactory | None = None
) -> NoReturn:
    raise billing_error(error, not_found=not_found) from error


@contextmanager
def translated(not_found: NotFoundFactory | None = None) -> Iterator[None]:
    """Run Stripe calls, turning any Stripe error into the matching domain error (cause kept)."""
    try:
        yield
    except stripe.StripeError as error:
        raise_billing_error(error, not_found=not_found)
