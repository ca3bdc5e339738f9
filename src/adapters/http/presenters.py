"""Domain objects to response bodies: the one place that decides what the API shows."""

from __future__ import annotations

from datetime import datetime

from adapters.http import schemas as s
from application.ports import CheckoutSession, PortalSession, SetupSession
from application.use_cases import SubscriptionView
from domain.invoices import Invoice, InvoicePage
from domain.money import Money
from domain.plans import Catalog, Features, Plan
from domain.quotes import Quote
from domain.subscription import Access, Subscription


def money(value: Money) -> s.MoneyOut:
    return s.MoneyOut(amount=value.amount, currency=value.currency)


def features(value: Features) -> s.FeaturesOut:
    return s.FeaturesOut(
        seats=value.seats,
        monthly_responses=value.monthly_responses,
        flags=sorted(value.flags),
    )


def plans(values: tuple[Plan, ...]) -> s.PlansOut:
    return s.PlansOut(
        data=[
            s.PlanOut(
                id=plan.id,
                name=plan.name,
                prices=[
                    s.PriceOut(interval=i.value, amount=money(amount))
                    for i, amount in sorted(plan.prices.items(), key=lambda p: p[0].months)
                ],
                features=features(plan.features),
            )
            for plan in sorted(values, key=lambda p: p.rank)
        ]
    )


def subscription(view: SubscriptionView) -> s.SubscriptionOut:
    sub, access = view.subscription, view.access
    change = sub.pending_change
    method = sub.payment_method
    return s.SubscriptionOut(
        plan=sub.plan_id,
        interval=sub.interval.value,
        status=sub.status.value,
        current_period_start=sub.current_period_start,
        current_period_end=sub.current_period_end,
        cancel_at_period_end=sub.cancel_at_period_end,
        cancels_at=sub.cancels_at,
        pending_change=(
            s.PendingChangeOut(
                plan=change.plan_id,
                interval=change.interval.value,
                effective_at=change.effective_at,
            )
            if change is not None
            else None
        ),
        payment_method=(
            s.PaymentMethodOut(brand=method.brand, last4=method.last4)
            if method is not None
            else None
        ),
        features=features(access.features),
        access_until=access.access_until,
    )


def entitlements(access: Access) -> s.EntitlementsOut:
    return s.EntitlementsOut(
        plan=access.plan_id,
        features=features(access.features),
        access_until=access.access_until,
        reason=access.reason.value,
    )


def checkout(session: CheckoutSession) -> s.CheckoutOut:
    return s.CheckoutOut(
        checkout_id=session.id, url=session.url, client_secret=session.client_secret
    )


def checkout_result(
    sub: Subscription | None, clock_now: datetime, catalog: Catalog
) -> s.CheckoutResultOut:
    if sub is None:
        return s.CheckoutResultOut(status="open", subscription=None)
    view = SubscriptionView(sub, sub.access_at(clock_now, catalog))
    return s.CheckoutResultOut(status="complete", subscription=subscription(view))


def payment_method_result(sub: Subscription | None, done: bool) -> s.PaymentMethodResultOut:
    method = sub.payment_method if sub is not None else None
    return s.PaymentMethodResultOut(
        status="complete" if done else "pending",
        payment_method=(
            s.PaymentMethodOut(brand=method.brand, last4=method.last4) if method else None
        ),
    )


def portal(session: PortalSession) -> s.PortalOut:
    return s.PortalOut(url=session.url)


def setup(session: SetupSession) -> s.SetupOut:
    return s.SetupOut(setup_id=session.id, url=session.url, client_secret=session.client_secret)


def preview(quote: Quote) -> s.PreviewOut:
    return s.PreviewOut(
        quote_id=quote.id,
        timing=quote.timing.value,
        amount_due_now=money(quote.amount_due_now),
        effective_at=quote.effective_at,
        expires_at=quote.expires_at,
    )


def invoice(value: Invoice) -> s.InvoiceOut:
    return s.InvoiceOut(
        id=value.id,
        number=value.number,
        status=value.status.value,
        amount_due=value.amount_due.amount,
        amount_paid=value.amount_paid.amount,
        currency=value.amount_due.currency,
        created=value.created,
        period_start=value.period_start,
        period_end=value.period_end,
        billing_reason=value.billing_reason.value,
        pdf_url=value.pdf_url,
        hosted_url=value.hosted_url,
    )


def invoices(page: InvoicePage) -> s.InvoicesOut:
    return s.InvoicesOut(data=[invoice(i) for i in page.items], has_more=page.has_more)
