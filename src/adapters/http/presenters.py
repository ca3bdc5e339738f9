"""Domain objects to response bodies: the one place that decides what the API shows."""

from __future__ import annotations

from datetime import datetime

from responseiq_billing.adapters.http import schemas
from responseiq_billing.application.ports import CheckoutSession, PortalSession, SetupSession
from responseiq_billing.application.use_cases import SubscriptionView
from responseiq_billing.domain.invoices import Invoice, InvoicePage
from responseiq_billing.domain.money import Money
from responseiq_billing.domain.plans import Catalog, Features, Plan
from responseiq_billing.domain.quotes import Quote
from responseiq_billing.domain.subscription import Access, Subscription


def money(value: Money) -> schemas.MoneyOut:
    return schemas.MoneyOut(amount=value.amount, currency=value.currency)


def features(value: Features) -> schemas.FeaturesOut:
    return schemas.FeaturesOut(
        seats=value.seats,
        monthly_responses=value.monthly_responses,
        flags=sorted(value.flags),
    )


def plans(values: tuple[Plan, ...]) -> schemas.PlansOut:
    return schemas.PlansOut(
        data=[
            schemas.PlanOut(
                id=plan.id,
                name=plan.name,
                prices=[
                    schemas.PriceOut(interval=i.value, amount=money(amount))
                    for i, amount in sorted(plan.prices.items(), key=lambda p: p[0].months)
                ],
                features=features(plan.features),
            )
            for plan in sorted(values, key=lambda p: p.rank)
        ]
    )


def subscription(view: SubscriptionView) -> schemas.SubscriptionOut:
    sub, access = view.subscription, view.access
    change = sub.pending_change
    method = sub.payment_method
    return schemas.SubscriptionOut(
        plan=sub.plan_id,
        interval=sub.interval.value,
        status=sub.status.value,
        current_period_start=sub.current_period_start,
        current_period_end=sub.current_period_end,
        cancel_at_period_end=sub.cancel_at_period_end,
        cancels_at=sub.cancels_at,
        pending_change=(
            schemas.PendingChangeOut(
                plan=change.plan_id,
                interval=change.interval.value,
                effective_at=change.effective_at,
            )
            if change is not None
            else None
        ),
        payment_method=(
            schemas.PaymentMethodOut(brand=method.brand, last4=method.last4)
            if method is not None
            else None
        ),
        features=features(access.features),
        access_until=access.access_until,
    )


def entitlements(access: Access) -> schemas.EntitlementsOut:
    return schemas.EntitlementsOut(
        plan=access.plan_id,
        features=features(access.features),
        access_until=access.access_until,
        reason=access.reason.value,
    )


def checkout(session: CheckoutSession) -> schemas.CheckoutOut:
    return schemas.CheckoutOut(
        checkout_id=session.id, url=session.url, client_secret=session.client_secret
    )


def checkout_result(
    sub: Subscription | None, clock_now: datetime, catalog: Catalog
) -> schemas.CheckoutResultOut:
    if sub is None:
        return schemas.CheckoutResultOut(status="open", subscription=None)
    view = SubscriptionView(sub, sub.access_at(clock_now, catalog))
    return schemas.CheckoutResultOut(status="complete", subscription=subscription(view))


def payment_method_result(sub: Subscription | None, done: bool) -> schemas.PaymentMethodResultOut:
    method = sub.payment_method if sub is not None else None
    return schemas.PaymentMethodResultOut(
        status="complete" if done else "pending",
        payment_method=(
            schemas.PaymentMethodOut(brand=method.brand, last4=method.last4) if method else None
        ),
    )


def portal(session: PortalSession) -> schemas.PortalOut:
    return schemas.PortalOut(url=session.url)


def setup(session: SetupSession) -> schemas.SetupOut:
    return schemas.SetupOut(
        setup_id=session.id, url=session.url, client_secret=session.client_secret
    )


def preview(quote: Quote) -> schemas.PreviewOut:
    return schemas.PreviewOut(
        quote_id=quote.id,
        timing=quote.timing.value,
        amount_due_now=money(quote.amount_due_now),
        effective_at=quote.effective_at,
        expires_at=quote.expires_at,
    )


def invoice(value: Invoice) -> schemas.InvoiceOut:
    return schemas.InvoiceOut(
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


def invoices(page: InvoicePage) -> schemas.InvoicesOut:
    return schemas.InvoicesOut(data=[invoice(i) for i in page.items], has_more=page.has_more)
