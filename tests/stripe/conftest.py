"""The Stripe adapter wired to the local double, with a paying customer at hand."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from responseiq_billing.adapters.fake.clock import ControllableClock
from responseiq_billing.adapters.stripe.gateway import StripeGateway
from responseiq_billing.application.ports import SetupSession, UiMode
from responseiq_billing.domain.plans import Catalog
from responseiq_billing.domain.subscription import GatewaySubscription
from tests.stripe_double import StripeDouble, running_double


@pytest.fixture
def clock() -> ControllableClock:
    return ControllableClock(datetime(2026, 3, 1, 9, 0, tzinfo=UTC))


@pytest.fixture
def double(clock: ControllableClock, catalog: Catalog) -> Iterator[StripeDouble]:
    """The double with the catalog's prices; a test fails if the adapter sent a bad request."""
    with running_double(clock, catalog) as stripe_double:
        yield stripe_double


@pytest.fixture
def gateway(double: StripeDouble, catalog: Catalog, clock: ControllableClock) -> StripeGateway:
    return StripeGateway(double.client(), catalog, clock)


def subscribe(
    gateway: StripeGateway, double: StripeDouble, catalog: Catalog, plan: str = "starter"
) -> GatewaySubscription:
    account = f"acct_{uuid.uuid4().hex[:10]}"
    customer = gateway.ensure_customer(account, idempotency_key=f"customer:{account}")
    session = gateway.start_checkout(
        customer_ref=customer,
        account_id=account,
        price=catalog.price(plan, "month"),
        success_url="https://app.example/done?session={CHECKOUT_SESSION_ID}",
        cancel_url="https://app.example/billing",
        ui_mode=UiMode.HOSTED,
        idempotency_key=f"checkout:{account}:1",
    )
    double.complete_checkout(session.id)
    outcome = gateway.get_checkout(session.id)
    assert outcome.subscription is not None
    return outcome.subscription


@pytest.fixture
def subscription(
    gateway: StripeGateway, double: StripeDouble, catalog: Catalog
) -> GatewaySubscription:
    """A customer paying for Growth monthly, with the request log cleared."""
    sub = subscribe(gateway, double, catalog, "growth")
    double.clear_log()
    return sub


def upgrade_to_business(
    gateway: StripeGateway,
    subscription: GatewaySubscription,
    catalog: Catalog,
    *,
    at: datetime,
    idempotency_key: str,
) -> GatewaySubscription:
    """The subscription upgraded to Business monthly, prorated at `at`."""
    return gateway.upgrade(
        subscription_ref=subscription.subscription_ref,
        target=catalog.price("business", "month"),
        proration_at=at,
        idempotency_key=idempotency_key,
    )


def start_card_setup(
    gateway: StripeGateway, subscription: GatewaySubscription, idempotency_key: str
) -> SetupSession:
    """A payment-method setup for the subscription's customer (Checkout in setup mode)."""
    return gateway.start_payment_method_setup(
        customer_ref=subscription.customer_ref,
        success_url="https://app.example/card",
        cancel_url="https://app.example/billing",
        idempotency_key=idempotency_key,
    )
