"""Issue 10, finding 1, the running process: a plan `billing stripe setup` reprices is sold at its
new price at once by a gateway whose price map was read before the reprice.

Setup moves the plan's lookup key to a new price and archives the old one; the warm map still
names the old one, which Stripe now refuses ("The price specified is inactive"). Each write that
named it lists the current prices again (once) and is sent once more with the new price, under
a key that names that price; a quote made before the reprice is refused, not charged at another
amount. Every test here runs in one process, with the gateway created (and its map read) before
the reprice.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from responseiq_billing.adapters.fake.clock import ControllableClock
from responseiq_billing.adapters.stripe.gateway import StripeGateway
from responseiq_billing.adapters.stripe.setup import run_setup
from responseiq_billing.application.ports import UiMode
from responseiq_billing.domain.errors import PaymentDeclined, QuoteMismatch
from responseiq_billing.domain.plans import Catalog, Interval
from responseiq_billing.domain.subscription import GatewaySubscription, PendingChange, Status
from tests.contract.conftest import repriced
from tests.stripe.conftest import subscribe
from tests.stripe_double import Request, StripeDouble

GET_SUB = "GET /v1/subscriptions/{id}"
POST_SUB = "POST /v1/subscriptions/{id}"
LIST_PRICES = "GET /v1/prices"
INACTIVE = "The price specified is inactive. This field only accepts active prices."


def routes(log: list[Request]) -> list[str]:
    return [r.route for r in log]


def reprice(double: StripeDouble, catalog: Catalog, **amounts: int) -> dict[str, tuple[str, str]]:
    """`billing stripe setup` with the monthly prices of `amounts` changed, run by another process
    (its own client): plan -> (old price id, new price id)."""
    before = {plan: current_price(double, plan) for plan in amounts}
    edited = catalog
    for plan, amount in amounts.items():
        edited = repriced(edited, plan, "month", amount)
    changes = run_setup(double.client(), edited)
    assert sum(", replacing " in line for line in changes) == len(amounts), changes
    return {plan: (before[plan], current_price(double, plan)) for plan in amounts}


def current_price(double: StripeDouble, plan: str) -> str:
    [price] = double.state.list_prices({"lookup_keys": [f"{plan}_month"]})
    return str(price["id"])


def checkout(gateway: StripeGateway, catalog: Catalog, customer: str, key: str) -> str:
    return gateway.start_checkout(
        customer_ref=customer,
        account_id="acct_rp",
        price=catalog.price("growth", "month"),
        success_url="https://app.example/done",
        cancel_url="https://app.example/billing",
        ui_mode=UiMode.HOSTED,
        idempotency_key=key,
    ).id


def upgrade(
    gateway: StripeGateway,
    sub: GatewaySubscription,
    catalog: Catalog,
    at: datetime,
    key: str,
) -> GatewaySubscription:
    return gateway.upgrade(
        subscription_ref=sub.subscription_ref,
        target=catalog.price("business", "month"),
        proration_at=at,
        idempotency_key=key,
    )


def refusal(log: list[Request], double: StripeDouble, index: int) -> None:
    """The request at `index` was answered as Stripe answers an archived price."""
    request = log[index]
    assert request.method == "POST"
    status, body = double.answer_to(request.idempotency_key or "")
    assert (status, body["error"]["message"]) == (400, INACTIVE)


def test_a_checkout_for_the_repriced_plan_sells_the_new_price_with_one_listing_and_one_retry(
    gateway: StripeGateway, double: StripeDouble, catalog: Catalog
) -> None:
    customer = gateway.ensure_customer("acct_rp", idempotency_key="customer:acct_rp")
    assert gateway.prices.price_id("growth", Interval.MONTH)  # the map is warm
    [(old, new)] = reprice(double, catalog, growth=5900).values()

    with double.recording() as log:
        session_id = checkout(gateway, catalog, customer, "checkout:acct_rp:1")

    assert routes(log) == [
        "POST /v1/checkout/sessions",  # the old price: refused as inactive
        LIST_PRICES,  # the miss: the current prices listed again, once
        "POST /v1/checkout/sessions",  # the same session with the new price
    ]
    refusal(log, double, 0)
    assert [r.params["line_items"][0]["price"] for r in log if r.method == "POST"] == [old, new]
    assert [r.idempotency_key for r in log if r.method == "POST"] == [
        f"checkout:acct_rp:1:{old}",
        f"checkout:acct_rp:1:{new}",
    ]
    assert gateway.prices.price_id("growth", Interval.MONTH) == new
    session = double.state.get(session_id, "checkout.session")
    assert session["amount_total"] == 5900

    # The same command again (its answer was lost): the map now names the new price, so it
    # is the same request as the retry, and Stripe replays it; no second session.
    with double.recording() as again:
        assert checkout(gateway, catalog, customer, "checkout:acct_rp:1") == session_id
    assert routes(again) == ["POST /v1/checkout/sessions"]
    assert again[0].idempotency_key == f"checkout:acct_rp:1:{new}"
    # ... and from a process whose map is still stale: the same two requests, both replayed.
    stale = StripeGateway(double.client(), catalog, gateway._clock)
    stale._load_prices()
    stale._prices.replace_current({("growth", Interval.MONTH): old})
    with double.recording() as elsewhere:
        assert checkout(stale, catalog, customer, "checkout:acct_rp:1") == session_id
    assert routes(elsewhere) == [
        "POST /v1/checkout/sessions",
        LIST_PRICES,
        "POST /v1/checkout/sessions",
    ]
    sessions = double.state.all("checkout.session", lambda s: s["customer"] == customer)
    assert [s["id"] for s in sessions] == [session_id]

    double.complete_checkout(session_id)
    outcome = gateway.get_checkout(session_id)
    assert outcome.subscription is not None
    invoices = gateway.list_invoices(customer_ref=customer, limit=10, starting_after=None)
    assert [i.amount_paid.amount for i in invoices.items] == [5900]


def test_an_upgrade_to_the_repriced_plan_charges_the_new_price_once(
    gateway: StripeGateway,
    double: StripeDouble,
    catalog: Catalog,
    clock: ControllableClock,
) -> None:
    sub = subscribe(gateway, double, catalog, "growth")
    clock.advance(timedelta(days=3))
    assert len(gateway.prices)  # the map is read (and so within the hour) before the reprice
    [(old, new)] = reprice(double, catalog, business=10900).values()

    with double.recording() as log:
        upgraded = upgrade(gateway, sub, catalog, clock.now(), "plan-change:rp:1")

    assert routes(log) == [GET_SUB, POST_SUB, LIST_PRICES, POST_SUB]
    refusal(log, double, 1)
    assert [r.params["items"][0]["price"] for r in log if r.method == "POST"] == [old, new]
    assert [r.idempotency_key for r in log if r.method == "POST"] == [
        f"plan-change:rp:1:update:{old}",
        f"plan-change:rp:1:update:{new}",
    ]
    assert (upgraded.plan_id, upgraded.interval) == ("business", Interval.MONTH)
    item = double.subscription(sub.subscription_ref)["items"]["data"][0]
    assert item["price"]["id"] == new
    [charge, _first] = double.invoices(sub.customer_ref)
    assert charge["billing_reason"] == "subscription_update"
    charged = [line["pricing"]["price_details"]["price"] for line in charge["lines"]["data"]]
    assert new in charged and old not in charged

    # The same command again: the subscription is on the target already; nothing is sent.
    with double.recording() as again:
        repeat = upgrade(gateway, sub, catalog, clock.now(), "plan-change:rp:1")
    assert routes(again) == [GET_SUB]
    assert repeat.plan_id == "business"
    assert len(double.invoices(sub.customer_ref)) == 2


def test_a_quote_made_before_the_reprice_is_refused_and_keeps_the_scheduled_downgrade(
    gateway: StripeGateway,
    double: StripeDouble,
    catalog: Catalog,
    clock: ControllableClock,
) -> None:
    """The customer saw an amount for the old price: charging the new one would not be what
    they accepted. The upgrade is refused (409 `quote.mismatch`) before any charge, the
    downgrade it had to release is scheduled again, and a new preview is honoured."""
    sub = subscribe(gateway, double, catalog, "growth")
    gateway.schedule_downgrade(
        subscription_ref=sub.subscription_ref,
        target=catalog.price("starter", "month"),
        idempotency_key="plan-change:rp:down",
    )
    clock.advance(timedelta(days=3))
    quoted_at = clock.now()
    gateway.preview_plan_change(
        subscription_ref=sub.subscription_ref,
        target=catalog.price("business", "month"),
        proration_at=quoted_at,
    )
    clock.advance(timedelta(minutes=2))
    reprice(double, catalog, business=10900)

    with double.recording() as log, pytest.raises(QuoteMismatch, match="preview the change"):
        upgrade(gateway, sub, catalog, quoted_at, "plan-change:rp:2")

    assert routes(log) == [
        GET_SUB,
        "POST /v1/subscription_schedules/{id}/release",
        POST_SUB,  # the old price, refused: nothing charged
        LIST_PRICES,  # the new price was made after the quote: refused before sending
        "POST /v1/subscription_schedules",
        "POST /v1/subscription_schedules/{id}",
    ]
    view = gateway.get_subscription(sub.subscription_ref)
    assert (view.plan_id, view.status) == ("growth", Status.ACTIVE)
    assert view.pending_change == PendingChange("starter", Interval.MONTH, sub.current_period_end)
    assert len(double.invoices(sub.customer_ref)) == 1

    # The map is fresh now: the same stale quote is refused before anything is released.
    with double.recording() as fresh, pytest.raises(QuoteMismatch):
        upgrade(gateway, sub, catalog, quoted_at, "plan-change:rp:3")
    assert routes(fresh) == [GET_SUB]

    # A new preview is for the new price, and its amount is what the upgrade charges.
    requoted_at = clock.now()
    quoted = gateway.preview_plan_change(
        subscription_ref=sub.subscription_ref,
        target=catalog.price("business", "month"),
        proration_at=requoted_at,
    )
    upgraded = upgrade(gateway, sub, catalog, requoted_at, "plan-change:rp:4")
    assert upgraded.plan_id == "business"
    charge = double.invoices(sub.customer_ref)[0]
    assert charge["amount_paid"] == quoted.amount


def test_a_preview_after_the_reprice_quotes_the_new_price(
    gateway: StripeGateway, double: StripeDouble, catalog: Catalog, clock: ControllableClock
) -> None:
    sub = subscribe(gateway, double, catalog, "growth")
    clock.advance(timedelta(days=3))
    assert len(gateway.prices)
    [(old, new)] = reprice(double, catalog, business=10900).values()
    fresh_process = StripeGateway(double.client(), catalog, clock)

    with double.recording() as log:
        quoted = gateway.preview_plan_change(
            subscription_ref=sub.subscription_ref,
            target=catalog.price("business", "month"),
            proration_at=clock.now(),
        )

    preview = "POST /v1/invoices/create_preview"
    assert routes(log) == [GET_SUB, preview, LIST_PRICES, preview]
    prices = [r.params["subscription_details"]["items"][0]["price"] for r in log[1::2]]
    assert prices == [old, new]
    expected = fresh_process.preview_plan_change(
        subscription_ref=sub.subscription_ref,
        target=catalog.price("business", "month"),
        proration_at=clock.now(),
    )
    assert quoted == expected


def test_a_downgrade_to_the_repriced_plan_schedules_the_new_price_and_the_renewal_bills_it(
    gateway: StripeGateway, double: StripeDouble, catalog: Catalog
) -> None:
    """The subscriber's own price (growth) is retired too: the schedule's first phase keeps it
    to the period end, and the second phase is the new Starter price."""
    sub = subscribe(gateway, double, catalog, "growth")
    swapped = reprice(double, catalog, growth=5900, starter=2400)
    old_growth = swapped["growth"][0]
    old_starter, new_starter = swapped["starter"]

    with double.recording() as log:
        down = gateway.schedule_downgrade(
            subscription_ref=sub.subscription_ref,
            target=catalog.price("starter", "month"),
            idempotency_key="plan-change:rp:5",
        )

    assert routes(log) == [
        GET_SUB,
        "POST /v1/subscription_schedules",
        "POST /v1/subscription_schedules/{id}",  # phase two on the old Starter: refused
        LIST_PRICES,
        "POST /v1/subscription_schedules/{id}",  # the same phases, the new Starter price
    ]
    refusal(log, double, 2)
    phases = [r.params["phases"] for r in log[2::2]]
    assert [[p["items"][0]["price"] for p in ph] for ph in phases] == [
        [old_growth, old_starter],
        [old_growth, new_starter],
    ]
    assert [r.idempotency_key for r in log if r.method == "POST"] == [
        "plan-change:rp:5:schedule",
        f"plan-change:rp:5:phases:{old_starter}",
        f"plan-change:rp:5:phases:{new_starter}",
    ]
    assert down.pending_change == PendingChange("starter", Interval.MONTH, sub.current_period_end)

    # Subscribers of the retired Growth price keep reading, cancelling and resuming.
    assert gateway.get_subscription(sub.subscription_ref).plan_id == "growth"
    assert gateway.cancel_at_period_end(
        subscription_ref=sub.subscription_ref, idempotency_key="rp:cancel"
    ).cancel_at_period_end
    assert not gateway.resume(
        subscription_ref=sub.subscription_ref, idempotency_key="rp:resume"
    ).cancel_at_period_end
    gateway.schedule_downgrade(  # the cancellation released the schedule: set it again
        subscription_ref=sub.subscription_ref,
        target=catalog.price("starter", "month"),
        idempotency_key="plan-change:rp:6",
    )

    double.advance_to(sub.current_period_end + timedelta(hours=1))
    renewed = gateway.get_subscription(sub.subscription_ref)
    assert (renewed.plan_id, renewed.status) == ("starter", Status.ACTIVE)
    assert double.subscription(sub.subscription_ref)["items"]["data"][0]["price"]["id"] == (
        new_starter
    )
    newest = gateway.list_invoices(customer_ref=sub.customer_ref, limit=1, starting_after=None)
    assert newest.items[0].amount_paid.amount == 2400


def test_a_declined_upgrade_schedules_again_the_downgrade_whose_price_was_retired_since(
    gateway: StripeGateway, double: StripeDouble, catalog: Catalog, clock: ControllableClock
) -> None:
    """The released schedule named the old Starter price; Stripe refuses it in a new schedule,
    so the downgrade is put back at Starter's current price, not lost."""
    sub = subscribe(gateway, double, catalog, "growth")
    gateway.schedule_downgrade(
        subscription_ref=sub.subscription_ref,
        target=catalog.price("starter", "month"),
        idempotency_key="plan-change:rp:7",
    )
    clock.advance(timedelta(days=3))
    assert len(gateway.prices)
    [(old_starter, new_starter)] = reprice(double, catalog, starter=2400).values()
    double.decline_next_payment()

    with double.recording() as log, pytest.raises(PaymentDeclined):
        upgrade(gateway, sub, catalog, clock.now(), "plan-change:rp:8")

    assert routes(log) == [
        GET_SUB,
        "POST /v1/subscription_schedules/{id}/release",
        POST_SUB,
        "GET /v1/invoice_payments",
        "POST /v1/subscription_schedules",
        "POST /v1/subscription_schedules/{id}",  # the old Starter price: refused
        LIST_PRICES,
        "POST /v1/subscription_schedules/{id}",
    ]
    assert [r.idempotency_key for r in log if r.method == "POST"][-2:] == [
        f"plan-change:rp:8:reschedule:phases:{old_starter}",
        f"plan-change:rp:8:reschedule:phases:{new_starter}",
    ]
    view = gateway.get_subscription(sub.subscription_ref)
    assert view.plan_id == "growth"
    assert view.pending_change == PendingChange("starter", Interval.MONTH, sub.current_period_end)
