"""`billing paddle setup`: a product and prices per plan, and the notification destination.

Idempotent on re-run: objects are found by what they carry (our plan id in `custom_data`, the
destination URL) and changed only where they differ from the catalog. A price whose amount
changed is archived and replaced, since Paddle keeps a price's amount for its subscribers.
"""

from __future__ import annotations

import attrs
from paddle_billing import Client
from paddle_billing.Entities.Events import EventTypeName
from paddle_billing.Entities.NotificationSettings import (
    NotificationSettingTrafficSource,
    NotificationSettingType,
)
from paddle_billing.Entities.Shared import (
    CurrencyCode,
    CustomData,
    Duration,
    Interval,
    Money,
    Status,
    TaxCategory,
)
from paddle_billing.Resources.NotificationSettings.Operations import (
    CreateNotificationSetting,
    UpdateNotificationSetting,
)
from paddle_billing.Resources.Prices.Operations import CreatePrice, ListPrices, UpdatePrice
from paddle_billing.Resources.Products.Operations import CreateProduct, ListProducts
from paddle_billing.Resources.Shared.Operations import Pager

from responseiq_billing.adapters.paddle import translate
from responseiq_billing.domain.plans import Catalog, PlanPrice

# What the core acts on (`adapters.paddle.webhooks` decodes these; others are stored and ignored).
EVENTS = (
    "subscription.created",
    "subscription.activated",
    "subscription.updated",
    "subscription.canceled",
    "subscription.past_due",
    "subscription.paused",
    "subscription.resumed",
    "transaction.completed",
    "transaction.paid",
    "transaction.past_due",
    "transaction.payment_failed",
    "transaction.canceled",
)


@attrs.frozen
class SetupReport:
    created: tuple[str, ...]
    updated: tuple[str, ...]
    notification_setting_id: str | None
    endpoint_secret: str | None  # shown once to the operator, for PADDLE_WEBHOOK_SECRET


def run_setup(client: Client, catalog: Catalog, *, notification_url: str | None) -> SetupReport:
    created: list[str] = []
    updated: list[str] = []
    with translate.translated():
        products = {
            translate.custom(p).get(translate.PLAN_KEY): p
            for p in client.products.list(ListProducts(pager=Pager(per_page=200)))
        }
        prices = {}
        for price in client.prices.list(
            ListPrices(pager=Pager(per_page=200), statuses=[Status.Active])
        ):
            entry = translate.price_entry(price)
            if entry is not None:
                prices[entry] = price
        for plan in catalog.plans:
            product = products.get(plan.id)
            if product is None:
                product = client.products.create(
                    CreateProduct(
                        name=plan.name,
                        tax_category=TaxCategory.Saas,
                        custom_data=CustomData({translate.PLAN_KEY: plan.id}),
                    )
                )
                created.append(f"product {plan.id}")
            for interval in plan.prices:
                wanted = plan.price(interval)
                held = prices.get((plan.id, interval))
                if held is not None and _same_amount(held, wanted):
                    continue
                if held is not None:
                    client.prices.update(held.id, UpdatePrice(status=Status.Archived))
                    updated.append(f"price {plan.id}/{interval.value} archived")
                client.prices.create(_price(product.id, wanted))
                created.append(f"price {plan.id}/{interval.value}")
        setting_id, secret = None, None
        if notification_url is not None:
            setting_id, secret = _notification_setting(client, notification_url, created, updated)
    return SetupReport(tuple(created), tuple(updated), setting_id, secret)


def _same_amount(held: object, wanted: PlanPrice) -> bool:
    unit = held.unit_price  # type: ignore[attr-defined]
    return int(unit.amount) == wanted.amount.amount and translate.value(unit.currency_code) == (
        wanted.amount.currency
    )


def _price(product_id: str, price: PlanPrice) -> CreatePrice:
    return CreatePrice(
        description=f"{price.plan_id} per {price.interval.value}",
        product_id=product_id,
        unit_price=Money(str(price.amount.amount), CurrencyCode(price.amount.currency)),
        billing_cycle=Duration(interval=Interval(price.interval.value), frequency=1),
        custom_data=CustomData(
            {translate.PLAN_KEY: price.plan_id, translate.INTERVAL_KEY: price.interval.value}
        ),
    )


def _notification_setting(
    client: Client, url: str, created: list[str], updated: list[str]
) -> tuple[str, str | None]:
    events = [EventTypeName(name) for name in EVENTS]
    for setting in client.notification_settings.list():
        if setting.destination != url:
            continue
        names = sorted(translate.value(e.name) for e in setting.subscribed_events)
        if names != sorted(EVENTS) or not setting.active:
            client.notification_settings.update(
                setting.id, UpdateNotificationSetting(subscribed_events=events, active=True)
            )
            updated.append("notification destination")
        return setting.id, None
    setting = client.notification_settings.create(
        CreateNotificationSetting(
            description="ResponseIQ Billing",
            destination=url,
            subscribed_events=events,
            type=NotificationSettingType.Url,
            include_sensitive_fields=False,
            api_version=1,
            traffic_source=NotificationSettingTrafficSource.All,
        )
    )
    created.append("notification destination")
    return setting.id, setting.endpoint_secret_key
