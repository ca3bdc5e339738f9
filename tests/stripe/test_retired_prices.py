"""Issue 10, finding 1: a price `billing stripe setup` retires keeps its subscribers readable.

The contract case (`test_a_subscriber_on_a_retired_price_reads_changes_cancels_and_sees_invoices`)
runs in the process that saw the price while it was current. These run where it matters most:
a process started after the retirement (a deploy, another worker), whose price map has only ever
seen the new prices, and the webhook translation of events sent after the retirement.
"""

from __future__ import annotations

from responseiq_billing.adapters.fake.clock import ControllableClock
from responseiq_billing.adapters.stripe import translate
from responseiq_billing.adapters.stripe.gateway import StripeGateway
from responseiq_billing.adapters.stripe.webhooks import translate_event
from responseiq_billing.application.ports import GatewayEventKind, UiMode
from responseiq_billing.domain.plans import Catalog, Interval
from responseiq_billing.domain.subscription import GatewaySubscription, PendingChange
from tests.contract.conftest import run_setup_repriced
from tests.stripe.conftest import subscribe
from tests.stripe_double import StripeDouble


def test_a_process_started_after_the_retirement_reads_lists_schedules_and_translates(
    gateway: StripeGateway, double: StripeDouble, catalog: Catalog, clock: ControllableClock
) -> None:
    sub = subscribe(gateway, double, catalog, "growth")
    old_price = double.subscription(sub.subscription_ref)["items"]["data"][0]["price"]["id"]
    run_setup_repriced(double.client(), catalog, "growth", "month", 5900)
    fresh = StripeGateway(double.client(), catalog, clock)  # knows only the current prices
    assert fresh.prices.price_id("growth", Interval.MONTH) != old_price

    shown = double.subscription(sub.subscription_ref)["items"]["data"][0]["price"]
    read = fresh.get_subscription(sub.subscription_ref)
    listed = fresh.list_subscriptions(sub.customer_ref)
    invoices = fresh.list_invoices(customer_ref=sub.customer_ref, limit=10, starting_after=None)
    down = fresh.schedule_downgrade(
        subscription_ref=sub.subscription_ref,
        target=catalog.price("starter", "month"),
        idempotency_key="retired:down",
    )
    # A schedule names its phases' prices by id only: the retired one is looked up once.
    again = StripeGateway(double.client(), catalog, clock).get_subscription(sub.subscription_ref)

    # The double shows the item's price as Stripe does now: retired, its lookup key moved on.
    assert (shown["id"], shown["active"], shown["lookup_key"]) == (old_price, False, None)
    assert (read.plan_id, read.interval) == ("growth", Interval.MONTH)
    assert [(s.plan_id, s.interval) for s in listed] == [("growth", Interval.MONTH)]
    assert [i.amount_paid.amount for i in invoices.items] == [4900]
    expected = PendingChange("starter", Interval.MONTH, sub.current_period_end)
    assert (down.plan_id, down.pending_change) == ("growth", expected)
    assert (again.plan_id, again.pending_change) == ("growth", expected)


def test_an_event_sent_after_the_retirement_translates_with_a_map_that_never_saw_the_price(
    gateway: StripeGateway, double: StripeDouble, catalog: Catalog
) -> None:
    sub: GatewaySubscription = subscribe(gateway, double, catalog, "growth")
    run_setup_repriced(double.client(), catalog, "growth", "month", 5900)
    double.state.events.clear()

    double.portal_cancel(sub.subscription_ref)
    [event] = double.events_of("customer.subscription.updated")
    price = event["data"]["object"]["items"]["data"][0]["price"]
    plans = [plan.id for plan in catalog.plans]
    translated = translate_event(event, translate.PriceMap(plans=plans))

    assert (price["active"], price["lookup_key"]) == (False, None)
    assert translated.kind is GatewayEventKind.SUBSCRIPTION_CHANGED
    view = translated.subscription
    assert view is not None
    assert (view.plan_id, view.interval, view.cancel_at_period_end) == (
        "growth",
        Interval.MONTH,
        True,
    )


def test_a_current_price_missing_from_the_map_is_listed_again_once_on_the_miss(
    gateway: StripeGateway, double: StripeDouble, catalog: Catalog
) -> None:
    """The other half of the bounded-age map: a catalog entry the map has no current price for
    (setup gave it one after the map was read) costs one listing, then is sold."""
    [yearly] = double.state.list_prices({"lookup_keys": ["growth_year"]})
    double.state.update_price(yearly["id"], {"lookup_key": ""})  # not made yet
    customer = gateway.ensure_customer("acct_miss", idempotency_key="customer:acct_miss")
    assert gateway.prices.price_id("growth", Interval.YEAR) is None
    double.state.update_price(yearly["id"], {"lookup_key": "growth_year"})  # setup runs

    with double.recording() as log:
        session = gateway.start_checkout(
            customer_ref=customer,
            account_id="acct_miss",
            price=catalog.price("growth", "year"),
            success_url="https://app.example/done",
            cancel_url="https://app.example/billing",
            ui_mode=UiMode.HOSTED,
            idempotency_key="checkout:acct_miss:1",
        )

    assert [r.route for r in log] == ["GET /v1/prices", "POST /v1/checkout/sessions"]
    assert log[1].params["line_items"] == [{"price": yearly["id"], "quantity": "1"}]
    assert session.url is not None
