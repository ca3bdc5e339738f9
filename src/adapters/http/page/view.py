"""What the billing page shows, in the help article's words: domain objects to display values.

Nothing here decides anything: amounts, dates and timings come from the use cases (the
subscription, its access, the quote); this module only names and formats them.
"""

from __future__ import annotations

from datetime import datetime

import attrs

from responseiq_billing.application.use_cases import SubscriptionView
from responseiq_billing.domain.errors import BillingError
from responseiq_billing.domain.invoices import Invoice, InvoiceStatus
from responseiq_billing.domain.money import Money
from responseiq_billing.domain.plans import Catalog, Interval, PlanPrice
from responseiq_billing.domain.quotes import Quote
from responseiq_billing.domain.rules import ChangeTiming, classify_change
from responseiq_billing.domain.subscription import Status, Subscription

STATUS_WORDS: dict[Status, str] = {
    Status.ACTIVE: "Active",
    Status.TRIALING: "Trial",
    Status.PAST_DUE: "Payment overdue",
    Status.INCOMPLETE: "Waiting for the first payment",
    Status.INCOMPLETE_EXPIRED: "Not started",
    Status.CANCELED: "Ended",
    Status.UNPAID: "Unpaid",
    Status.PAUSED: "Paused",
}

INVOICE_WORDS: dict[InvoiceStatus, str] = {
    InvoiceStatus.DRAFT: "Draft",
    InvoiceStatus.OPEN: "Unpaid",
    InvoiceStatus.PAID: "Paid",
    InvoiceStatus.UNCOLLECTIBLE: "Uncollectible",
    InvoiceStatus.VOID: "Void",
}


FLAG_WORDS: dict[str, str] = {
    "ai_replies": "AI replies",
    "priority_support": "Priority support",
    "sso": "Single sign-on (SSO)",
}


def date(moment: datetime) -> str:
    """`28 February 2027`: unambiguous in every locale."""
    return f"{moment.day} {moment:%B %Y}"


def short_date(moment: datetime) -> str:
    return f"{moment.day} {moment:%b %Y}"


def money(value: Money) -> str:
    return str(value)


def per(interval: Interval) -> str:
    return f"per {interval.value}"


def billed(interval: Interval) -> str:
    return "Monthly" if interval is Interval.MONTH else "Yearly"


def plan_name(catalog: Catalog, plan_id: str) -> str:
    try:
        return catalog.plan(plan_id).name
    except BillingError:
        return plan_id  # a plan since removed from the catalog still has a name to show


def card(brand: str, last4: str) -> str:
    return f"{brand.capitalize()} ending in {last4}"


@attrs.frozen
class Choice:
    """One plan the customer may move to, and which way that goes."""

    plan: str
    interval: str
    verb: str  # Upgrade | Downgrade | Switch
    label: str  # "Growth, yearly"
    price: str  # "490.00 USD per year"


@attrs.frozen
class InvoiceRow:
    id: str
    number: str
    date: str
    amount: str
    status: str
    has_pdf: bool
    pay_url: str | None  # the gateway's page to pay (or confirm) an unpaid invoice


@attrs.frozen
class PlanOffer:
    id: str
    name: str
    features: tuple[str, ...]
    prices: tuple[tuple[str, str, str], ...]  # (interval, "49.00 USD per month", "Monthly")


@attrs.frozen
class SubscriptionPanel:
    plan: str
    billed: str
    status: str
    status_key: str
    live: bool
    renewal: str | None  # "28 February 2027: 49.00 USD"
    access_until: str | None
    ended_on: str | None
    card: str | None
    pending_plan: str | None
    pending_on: str | None
    canceling: bool
    past_due: bool
    grace_until: str | None
    needs_first_payment: bool
    changeable: bool


def subscription_panel(view: SubscriptionView, catalog: Catalog) -> SubscriptionPanel:
    sub, access = view.subscription, view.access
    pending = sub.pending_change
    renewal = None
    renews = sub.status in (Status.ACTIVE, Status.TRIALING, Status.PAST_DUE)
    if renews and not sub.cancel_at_period_end:
        plan_id, interval = (
            (pending.plan_id, pending.interval) if pending else sub.current_price_key
        )
        price = _price(catalog, plan_id, interval)
        renewal = f"{date(sub.current_period_end)}: {money(price.amount)}" if price else None
    method = sub.payment_method
    past_due = sub.status is Status.PAST_DUE
    return SubscriptionPanel(
        plan=plan_name(catalog, sub.plan_id),
        billed=billed(sub.interval),
        status=STATUS_WORDS.get(sub.status, sub.status.value),
        status_key=sub.status.value,
        live=sub.status.is_live,
        renewal=renewal,
        access_until=date(sub.current_period_end) if sub.cancel_at_period_end else None,
        ended_on=None if sub.status.is_live else date(sub.ended_at or sub.current_period_end),
        card=card(method.brand, method.last4) if method else None,
        pending_plan=(
            f"{plan_name(catalog, pending.plan_id)}, {billed(pending.interval).lower()}"
            if pending
            else None
        ),
        pending_on=date(pending.effective_at) if pending else None,
        canceling=sub.cancel_at_period_end and sub.status.is_live,
        past_due=past_due,
        grace_until=date(access.access_until) if past_due and access.access_until else None,
        needs_first_payment=sub.status is Status.INCOMPLETE,
        changeable=sub.status.is_changeable and not sub.cancel_at_period_end,
    )


def _price(catalog: Catalog, plan_id: str, interval: Interval) -> PlanPrice | None:
    try:
        return catalog.price(plan_id, interval)
    except BillingError:
        return None


def verb(current: PlanPrice, target: PlanPrice, timing: ChangeTiming) -> str:
    """Downgrade when it waits for the period end; Upgrade when it costs more per month now."""
    if timing is ChangeTiming.END_OF_PERIOD:
        return "Downgrade"
    monthly_target = target.amount.amount * current.interval.months
    monthly_current = current.amount.amount * target.interval.months
    return "Upgrade" if monthly_target > monthly_current else "Switch"


def choices(sub: Subscription, catalog: Catalog) -> list[Choice]:
    """Every price but the current one and the one already scheduled, in catalog order."""
    current = _price(catalog, sub.plan_id, sub.interval)
    if current is None:
        return []
    scheduled = (
        (sub.pending_change.plan_id, sub.pending_change.interval) if sub.pending_change else None
    )
    out = []
    for price in catalog.all_prices():
        key = (price.plan_id, price.interval)
        if key in (sub.current_price_key, scheduled):
            continue
        try:
            timing = classify_change(current, price)
        except BillingError:
            continue  # another currency: not something this page can offer
        out.append(
            Choice(
                plan=price.plan_id,
                interval=price.interval.value,
                verb=verb(current, price, timing),
                label=f"{plan_name(catalog, price.plan_id)}, {billed(price.interval).lower()}",
                price=f"{money(price.amount)} {per(price.interval)}",
            )
        )
    return out


def offers(catalog: Catalog) -> list[PlanOffer]:
    out = []
    for plan in sorted(catalog.plans, key=lambda p: p.rank):
        f = plan.features
        features = [
            "Unlimited seats" if f.seats is None else f"{f.seats} seats",
            "Unlimited responses"
            if f.monthly_responses is None
            else f"{f.monthly_responses:,} responses a month",
            *(
                FLAG_WORDS.get(flag, flag.replace("_", " ").capitalize())
                for flag in sorted(f.flags)
            ),
        ]
        prices = tuple(
            (interval.value, f"{money(amount)} {per(interval)}", billed(interval))
            for interval, amount in sorted(plan.prices.items(), key=lambda p: p[0].months)
        )
        out.append(PlanOffer(plan.id, plan.name, tuple(features), prices))
    return out


def invoice_rows(invoices: tuple[Invoice, ...]) -> list[InvoiceRow]:
    return [
        InvoiceRow(
            id=invoice.id,
            number=invoice.number or "Draft",
            date=short_date(invoice.created),
            amount=money(invoice.amount_due),
            status=INVOICE_WORDS.get(invoice.status, invoice.status.value),
            has_pdf=invoice.pdf_url is not None,
            pay_url=invoice.hosted_url if invoice.status is InvoiceStatus.OPEN else None,
        )
        for invoice in invoices
    ]


@attrs.frozen
class ConfirmView:
    """The second step of a plan change: what it costs now and when it applies."""

    verb: str
    plan: str
    interval: str
    target: str  # "Business, monthly"
    price: str  # "99.00 USD per month"
    immediate: bool
    amount_now: str
    effective_on: str
    current: str  # "Growth, monthly"
    quote_id: str


def confirm_view(quote: Quote, catalog: Catalog) -> ConfirmView:
    target = catalog.price(quote.to_plan, quote.to_interval)
    current = _price(catalog, quote.from_plan, quote.from_interval)
    immediate = quote.timing is ChangeTiming.IMMEDIATE
    return ConfirmView(
        verb=verb(current, target, quote.timing) if current else "Change",
        plan=quote.to_plan,
        interval=quote.to_interval.value,
        target=f"{plan_name(catalog, quote.to_plan)}, {billed(quote.to_interval).lower()}",
        price=f"{money(target.amount)} {per(target.interval)}",
        immediate=immediate,
        amount_now=money(quote.amount_due_now),
        effective_on=date(quote.effective_at),
        current=f"{plan_name(catalog, quote.from_plan)}, {billed(quote.from_interval).lower()}",
        quote_id=quote.id,
    )
