"""`billing stripe setup`: make Stripe's products, prices, portal and webhook match our catalog."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any, cast

import stripe
from stripe.params import PriceCreateParams
from stripe.params.billing_portal import (
    ConfigurationCreateParamsFeatures,
    ConfigurationUpdateParamsFeatures,
)

from responseiq_billing.adapters.stripe import translate
from responseiq_billing.adapters.stripe.webhooks import ENABLED_EVENTS
from responseiq_billing.domain.plans import Catalog, Plan, PlanPrice

MANAGED_BY = {"managed_by": "responseiq-billing"}


def product_id(plan: Plan) -> str:
    """Our products have ids of our choosing, so finding them needs no search."""
    return f"responseiq_{plan.id}"


def _key(*parts: object) -> str:
    """An idempotency key naming the change and the state it was made from."""
    digest = hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()
    return f"setup:{parts[0]}:{digest[:32]}"


def run_setup(
    client: stripe.StripeClient, catalog: Catalog, *, webhook_url: str | None = None
) -> list[str]:
    """Create or update what Stripe needs for the catalog; one line per change made.

    Re-running it against an account that already matches changes nothing and returns [].
    """
    changes: list[str] = []
    try:
        for plan in catalog.plans:
            changes.extend(_ensure_product(client, plan))
        prices, price_changes = _ensure_prices(client, catalog)
        changes.extend(price_changes)
        changes.extend(_ensure_portal(client, catalog, prices))
        if webhook_url is not None:
            changes.extend(_ensure_webhook(client, webhook_url))
    except stripe.StripeError as error:
        translate.raise_billing_error(error)
    return changes


# -- products and prices -------------------------------------------------------------------


def _ensure_product(client: stripe.StripeClient, plan: Plan) -> list[str]:
    pid = product_id(plan)
    try:
        product = client.v1.products.retrieve(pid)
    except stripe.InvalidRequestError as error:
        if error.code != "resource_missing":
            raise
        client.v1.products.create(
            {"id": pid, "name": plan.name, "metadata": {**MANAGED_BY, "plan_id": plan.id}},
            {"idempotency_key": _key("product", pid, "missing", plan.name)},
        )
        return [f"created product {pid} ({plan.name})"]
    if product.name == plan.name and product.active:
        return []
    client.v1.products.update(
        pid,
        {"name": plan.name, "active": True},
        {"idempotency_key": _key("product-update", pid, product.updated, plan.name)},
    )
    return [f"updated product {pid} ({plan.name})"]


def _matches(price: Any, want: PlanPrice, product: str) -> bool:
    recurring = price.recurring
    return bool(
        price.active
        and price.unit_amount == want.amount.amount
        and price.currency == want.amount.currency.lower()
        and recurring is not None
        and recurring.interval == want.interval.value
        and (recurring.interval_count or 1) == 1
        and translate.ref(price.product) == product
    )


def _ensure_prices(
    client: stripe.StripeClient, catalog: Catalog
) -> tuple[dict[str, list[str]], list[str]]:
    """Prices by lookup key; a changed amount gets a new price (prices are immutable)."""
    wanted = list(catalog.all_prices())
    keys = [translate.lookup_key(p.plan_id, p.interval) for p in wanted]
    existing: dict[str, Any] = {}
    for start in range(0, len(keys), 10):
        page = client.v1.prices.list({"lookup_keys": keys[start : start + 10], "limit": 100})
        for price in page.data:
            if price.lookup_key:
                existing[price.lookup_key] = price
    changes: list[str] = []
    by_product: dict[str, list[str]] = {}
    for want, key in zip(wanted, keys, strict=True):
        product = product_id(catalog.plan(want.plan_id))
        current = existing.get(key)
        if current is not None and _matches(current, want, product):
            by_product.setdefault(product, []).append(current.id)
            continue
        params: PriceCreateParams = {
            "product": product,
            "currency": want.amount.currency.lower(),
            "unit_amount": want.amount.amount,
            "recurring": {"interval": want.interval.value},
            "lookup_key": key,
            "transfer_lookup_key": True,
            "metadata": {**MANAGED_BY, "plan_id": want.plan_id},
        }
        holder = current.id if current is not None else "none"
        created = client.v1.prices.create(
            params, {"idempotency_key": _key("price", key, holder, want.amount.amount)}
        )
        by_product.setdefault(product, []).append(created.id)
        line = f"created price {key}: {want.amount} per {want.interval.value} ({created.id})"
        if current is not None:
            if current.active:
                client.v1.prices.update(
                    current.id,
                    {"active": False},
                    {"idempotency_key": _key("price-retire", current.id)},
                )
            line += f", replacing {current.id}"
        changes.append(line)
    return by_product, changes


# -- customer portal -------------------------------------------------------------------------


def portal_features(prices: Mapping[str, Sequence[str]]) -> ConfigurationCreateParamsFeatures:
    """The portal's rules, equal to ours: upgrades invoiced now, downgrades at period end."""
    return {
        "payment_method_update": {"enabled": True},
        "invoice_history": {"enabled": True},
        "customer_update": {"enabled": False},
        "subscription_cancel": {
            "enabled": True,
            "mode": "at_period_end",
            "proration_behavior": "none",
        },
        "subscription_update": {
            "enabled": True,
            "default_allowed_updates": ["price"],
            "proration_behavior": "always_invoice",
            "schedule_at_period_end": {
                "conditions": [{"type": "decreasing_item_amount"}, {"type": "shortening_interval"}]
            },
            "products": [
                {"product": product, "prices": sorted(ids)}
                for product, ids in sorted(prices.items())
            ],
        },
    }


def _rules(features: Any) -> tuple[object, ...]:
    """What decides the portal's behaviour, comparable between our params and Stripe's object."""

    def get(obj: Any, *path: str) -> Any:
        for name in path:
            if obj is None:
                return None
            obj = obj.get(name) if isinstance(obj, Mapping) else getattr(obj, name, None)
        return obj

    update = get(features, "subscription_update")
    conditions = get(update, "schedule_at_period_end", "conditions") or []
    products = get(update, "products") or []
    return (
        bool(get(features, "payment_method_update", "enabled")),
        bool(get(features, "invoice_history", "enabled")),
        bool(get(features, "subscription_cancel", "enabled")),
        get(features, "subscription_cancel", "mode"),
        bool(get(update, "enabled")),
        sorted(get(update, "default_allowed_updates") or []),
        get(update, "proration_behavior"),
        sorted(get(c, "type") for c in conditions),
        sorted((get(p, "product"), tuple(sorted(get(p, "prices") or []))) for p in products),
    )


def find_portal_configuration(client: stripe.StripeClient) -> Any | None:
    """Our portal configuration (marked by metadata), if setup has made one."""
    page = client.v1.billing_portal.configurations.list({"active": True, "limit": 100})
    for config in page.auto_paging_iter():
        metadata = config.metadata.to_dict() if config.metadata is not None else {}
        if metadata.get("managed_by") == MANAGED_BY["managed_by"]:
            return config
    return None


def _ensure_portal(
    client: stripe.StripeClient, catalog: Catalog, prices: Mapping[str, Sequence[str]]
) -> list[str]:
    features = portal_features(prices)
    config = find_portal_configuration(client)
    if config is None:
        created = client.v1.billing_portal.configurations.create(
            {
                "features": features,
                "metadata": dict(MANAGED_BY),
                "name": "ResponseIQ billing",
            },
            {"idempotency_key": _key("portal", features)},
        )
        return [
            f"created portal configuration {created.id}: "
            f"set STRIPE_PORTAL_CONFIGURATION={created.id}"
        ]
    if _rules(config.features) == _rules(features):
        return []
    client.v1.billing_portal.configurations.update(
        config.id,
        # The same rules as on creation; the update params spell the same shape.
        {"features": cast("ConfigurationUpdateParamsFeatures", features)},
        {"idempotency_key": _key("portal-update", config.id, config.updated, features)},
    )
    return [f"updated portal configuration {config.id} to the catalog's rules"]


# -- webhook endpoint ------------------------------------------------------------------------


def _ensure_webhook(client: stripe.StripeClient, url: str) -> list[str]:
    events = sorted(ENABLED_EVENTS)
    version = stripe.api_version  # the SDK's pinned version: payloads match what we translate
    endpoints = client.v1.webhook_endpoints.list({"limit": 100})
    found = [e for e in endpoints.auto_paging_iter() if e.url == url]
    if not found:
        created = client.v1.webhook_endpoints.create(
            {
                "url": url,
                "enabled_events": [*ENABLED_EVENTS],
                "api_version": cast("Any", version),  # the SDK's own pinned version
                "description": "ResponseIQ billing",
                "metadata": dict(MANAGED_BY),
            },
            {
                "idempotency_key": _key(
                    "webhook", url, events, version, [e.id for e in endpoints.data]
                )
            },
        )
        return [
            f"created webhook endpoint {created.id} for {url} (API version {version}, "
            f"{len(events)} event types); reveal its signing secret in the Stripe Dashboard "
            "and add it to STRIPE_WEBHOOK_SECRETS"
        ]
    endpoint = found[0]
    changes: list[str] = []
    if sorted(endpoint.enabled_events) != events or endpoint.status != "enabled":
        client.v1.webhook_endpoints.update(
            endpoint.id,
            {"enabled_events": [*ENABLED_EVENTS], "disabled": False},
            {
                "idempotency_key": _key(
                    "webhook-update", endpoint.id, endpoint.enabled_events, events
                )
            },
        )
        changes.append(
            f"updated webhook endpoint {endpoint.id}: {len(events)} event types, enabled"
        )
    if endpoint.api_version != version:
        changes.append(
            f"webhook endpoint {endpoint.id} uses API version {endpoint.api_version}, not "
            f"{version}; Stripe cannot change it: create a new endpoint and delete this one"
        )
    return changes
