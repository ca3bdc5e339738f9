"""Card events from Stripe: the core re-reads which card pays next, and a portal's new default wins."""

from __future__ import annotations

from datetime import timedelta

from responseiq_billing.adapters.config import GatewayKind
from responseiq_billing.adapters.fake.clock import ControllableClock
from responseiq_billing.adapters.fake.repositories import InMemoryStore
from responseiq_billing.adapters.fake.storage import MemoryStorage
from responseiq_billing.adapters.stripe.gateway import StripeGateway
from responseiq_billing.adapters.stripe.webhooks import translate_event
from responseiq_billing.application.ports import GatewayEventKind
from responseiq_billing.application.use_cases import ApplyGatewayEvent, ApplyOutcome
from responseiq_billing.domain.plans import Catalog
from responseiq_billing.domain.subscription import PaymentMethodSummary
from tests.stripe.conftest import subscribe
from tests.stripe_double import StripeDouble
from tests.wiring import container_for, sandbox_settings

VISA = PaymentMethodSummary("visa", "4242")
AMEX = PaymentMethodSummary("amex", "8431")


def applying(
    store: InMemoryStore, gateway: StripeGateway, catalog: Catalog, clock: ControllableClock
) -> ApplyGatewayEvent:
    """`ApplyGatewayEvent` from the container in Stripe mode, over `gateway` and `store`."""
    container = container_for(
        sandbox_settings(gateway=GatewayKind.STRIPE),
        catalog=catalog,
        clock=clock,
        gateway=gateway,
        storage=MemoryStorage(store),
    )
    apply: ApplyGatewayEvent = container.apply_gateway_event()
    return apply


def test_a_customer_update_without_a_card_in_it_is_still_a_payment_method_change(
    gateway: StripeGateway, double: StripeDouble, catalog: Catalog
) -> None:
    sub = subscribe(gateway, double, catalog)
    seen = len(double.state.events)
    double.portal_update_payment_method(sub.customer_ref, "amex")

    [updated] = [e for e in double.events_since(seen) if e["type"] == "customer.updated"]
    translated = translate_event(updated, gateway.prices)

    # The event names the new default by id only; it says that the default changed.
    assert isinstance(updated["data"]["object"]["invoice_settings"]["default_payment_method"], str)
    assert translated.kind is GatewayEventKind.PAYMENT_METHOD_CHANGED
    assert translated.default_payment_method_changed
    assert translated.customer_ref == sub.customer_ref


def test_a_late_attached_event_for_the_old_card_leaves_the_portal_card_paying_the_renewal(
    gateway: StripeGateway, double: StripeDouble, catalog: Catalog, clock: ControllableClock
) -> None:
    store = InMemoryStore()
    apply = applying(store, gateway, catalog, clock)
    sub = subscribe(gateway, double, catalog)
    account = double.subscription(sub.subscription_ref)["metadata"]["account_id"]
    signup = double.events_since(0)
    [old_card] = [e for e in signup if e["type"] == "payment_method.attached"]
    for event in (e for e in signup if e is not old_card):
        apply(translate_event(event, gateway.prices))
    clock.advance(timedelta(minutes=5))
    seen = len(double.state.events)
    double.portal_update_payment_method(sub.customer_ref, "amex")
    portal = double.events_since(seen)

    # Stripe retries the old card's event after the portal's, and delivers the portal's
    # `customer.updated` before its `payment_method.attached`.
    for event in sorted(portal, key=lambda e: e["type"] != "customer.updated"):
        apply(translate_event(event, gateway.prices))
    outcome = apply(translate_event(old_card, gateway.prices))
    with store.unit_of_work() as uow:
        held = uow.subscriptions.for_account(account)
    double.advance_to(sub.current_period_end + timedelta(hours=1))

    assert outcome in (ApplyOutcome.APPLIED, ApplyOutcome.STALE)
    assert held is not None and held.payment_method == AMEX
    assert double.subscription(sub.subscription_ref)["default_payment_method"] is None
    [renewal] = [
        i for i in double.invoices(sub.customer_ref) if i["billing_reason"] == "subscription_cycle"
    ]
    paid = double.paid_with(renewal["id"])
    assert renewal["status"] == "paid" and paid is not None
    assert (paid["card"]["brand"], paid["card"]["last4"]) == ("amex", "8431")


def test_an_attached_card_that_is_not_the_default_does_not_become_the_card_shown(
    gateway: StripeGateway, double: StripeDouble, catalog: Catalog, clock: ControllableClock
) -> None:
    store = InMemoryStore()
    apply = applying(store, gateway, catalog, clock)
    sub = subscribe(gateway, double, catalog)
    for event in double.events_since(0):
        apply(translate_event(event, gateway.prices))
    clock.advance(timedelta(minutes=5))
    seen = len(double.state.events)
    double.state.add_card(sub.customer_ref, "amex")  # attached, never made a default

    [attached] = double.events_since(seen)
    apply(translate_event(attached, gateway.prices))

    account = double.subscription(sub.subscription_ref)["metadata"]["account_id"]
    with store.unit_of_work() as uow:
        held = uow.subscriptions.for_account(account)
    assert held is not None and held.payment_method == VISA
