"""`billing stripe setup` makes Stripe match the catalog, and a second run changes nothing."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import stripe

from responseiq_billing.adapters.fake.clock import ControllableClock
from responseiq_billing.adapters.stripe.gateway import StripeGateway, StripeOptions
from responseiq_billing.adapters.stripe.setup import find_portal_configuration, run_setup
from responseiq_billing.adapters.stripe.webhooks import ENABLED_EVENTS
from responseiq_billing.application.ports import PortalFlow, UiMode
from responseiq_billing.domain.money import Money
from responseiq_billing.domain.plans import Catalog, Interval, Plan
from tests.stripe_double import StripeDouble, running_double

HOOK = "https://billing.example/webhooks/stripe"


@pytest.fixture
def empty(clock: ControllableClock) -> Iterator[StripeDouble]:
    """A Stripe account with nothing in it yet."""
    with running_double(clock) as stripe_double:
        yield stripe_double


def test_a_first_run_creates_products_prices_portal_and_webhook(
    empty: StripeDouble, catalog: Catalog
) -> None:
    client = empty.client()
    changes = run_setup(client, catalog, webhook_url=HOOK)

    assert len([c for c in changes if c.startswith("created product")]) == 3
    assert len([c for c in changes if c.startswith("created price")]) == 6
    assert any(c.startswith("created portal configuration") for c in changes)
    assert any(c.startswith("created webhook endpoint") for c in changes)
    assert not any("whsec_" in c for c in changes)  # the signing secret is never printed

    prices = client.v1.prices.list({"active": True, "limit": 100}).data
    keys = {p.lookup_key: p for p in prices}
    assert set(keys) == {f"{p.plan_id}_{p.interval.value}" for p in catalog.all_prices()}
    assert keys["growth_year"].unit_amount == 49000
    assert keys["growth_year"].recurring is not None
    assert keys["growth_year"].recurring.interval == "year"

    endpoint = client.v1.webhook_endpoints.list().data[0]
    assert endpoint.url == HOOK
    assert endpoint.api_version == stripe.api_version
    assert sorted(endpoint.enabled_events) == sorted(ENABLED_EVENTS)


def test_the_portal_configuration_has_the_same_rules_as_ours(
    empty: StripeDouble, catalog: Catalog
) -> None:
    client = empty.client()
    run_setup(client, catalog)
    config = find_portal_configuration(client)
    assert config is not None
    features = config.features.to_dict()

    update = features["subscription_update"]
    assert update["enabled"] is True
    assert update["proration_behavior"] == "always_invoice"
    assert update["default_allowed_updates"] == ["price"]
    conditions = {c["type"] for c in update["schedule_at_period_end"]["conditions"]}
    assert conditions == {"decreasing_item_amount", "shortening_interval"}
    assert len(update["products"]) == 3
    assert sum(len(p["prices"]) for p in update["products"]) == 6
    assert features["subscription_cancel"]["mode"] == "at_period_end"
    assert features["subscription_cancel"]["enabled"] is True
    assert features["payment_method_update"]["enabled"] is True
    assert features["invoice_history"]["enabled"] is True


def test_running_it_again_changes_nothing(empty: StripeDouble, catalog: Catalog) -> None:
    client = empty.client()
    run_setup(client, catalog, webhook_url=HOOK)
    empty.clear_log()

    assert run_setup(client, catalog, webhook_url=HOOK) == []
    assert [r for r in empty.requests if r.method == "POST"] == []


def test_a_new_amount_gets_a_new_price_that_takes_over_the_lookup_key(
    empty: StripeDouble, catalog: Catalog
) -> None:
    client = empty.client()
    run_setup(client, catalog)
    old = client.v1.prices.list({"lookup_keys": ["growth_month"]}).data[0]
    growth = catalog.plan("growth")
    dearer = Catalog(
        [
            p
            if p.id != "growth"
            else Plan(
                p.id,
                p.name,
                {Interval.MONTH: Money(5900, "USD"), Interval.YEAR: growth.prices[Interval.YEAR]},
                p.features,
                p.rank,
            )
            for p in catalog.plans
        ]
    )

    changes = run_setup(client, dearer)

    assert len(changes) == 2
    assert changes[0].startswith("created price growth_month") and old.id in changes[0]
    assert changes[1].startswith("updated portal configuration")
    now = client.v1.prices.list({"lookup_keys": ["growth_month"]}).data
    assert [(p.unit_amount, p.active) for p in now] == [(5900, True)]
    assert client.v1.prices.retrieve(old.id).active is False
    assert run_setup(client, dearer) == []


def test_the_gateway_works_on_what_setup_made(
    empty: StripeDouble, catalog: Catalog, clock: ControllableClock
) -> None:
    client = empty.client()
    run_setup(client, catalog)
    config = find_portal_configuration(client)
    assert config is not None
    gateway = StripeGateway(client, catalog, clock, StripeOptions(portal_configuration=config.id))
    customer = gateway.ensure_customer("acct_1", idempotency_key="customer:acct_1")
    session = gateway.start_checkout(
        customer_ref=customer,
        account_id="acct_1",
        price=catalog.price("business", "year"),
        success_url="https://app.example/done",
        cancel_url="https://app.example/billing",
        ui_mode=UiMode.HOSTED,
        idempotency_key="checkout:acct_1:1",
    )
    empty.complete_checkout(session.id)
    outcome = gateway.get_checkout(session.id)
    assert outcome.subscription is not None
    assert (outcome.subscription.plan_id, outcome.subscription.interval) == (
        "business",
        Interval.YEAR,
    )
    with empty.recording() as log:
        gateway.open_portal(
            customer_ref=customer,
            return_url="https://app.example/billing",
            flow=PortalFlow.PAYMENT_METHOD_UPDATE,
            subscription_ref=None,
            idempotency_key="portal:1",
        )
    assert log[0].params["configuration"] == config.id
