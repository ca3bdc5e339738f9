"""A cancellation date (`cancel_at`) as Stripe handles it, at the double's clock.

Stripe's reference for `cancel_at` (stripe-python 16.1, API 2026-10-28.endive): "If set to a date
before the current period ends, this will cause a proration if prorations have been enabled using
`proration_behavior`" (default `create_prorations`: pending proration invoice items); "If set
during a future period, this will always cause a proration for that period". At the date the
subscription ends (`customer.subscription.deleted`, `ended_at` the date); pending prorations are
"collected at the end" by a final invoice, and a negative total is the customer's credit.
"""

from __future__ import annotations

import copy
from datetime import timedelta

import pytest
import stripe

from responseiq_billing.adapters.fake.clock import ControllableClock
from responseiq_billing.adapters.stripe.gateway import StripeGateway
from responseiq_billing.application.ports import GatewayEventKind
from responseiq_billing.domain.invoices import BillingReason, InvoiceStatus
from responseiq_billing.domain.plans import Catalog
from responseiq_billing.domain.subscription import GatewaySubscription, Status
from tests.stripe.test_double_events import deliver, kinds
from tests.stripe_double import StripeDouble

HOUR = timedelta(hours=1)


def test_a_date_inside_the_period_credits_the_unused_time_and_ends_the_subscription_then(
    gateway: StripeGateway,
    double: StripeDouble,
    subscription: GatewaySubscription,
    clock: ControllableClock,
) -> None:
    ref, start, end = (
        subscription.subscription_ref,
        subscription.current_period_start,
        subscription.current_period_end,
    )
    deliver(double, gateway)
    double.advance_to(start + timedelta(days=10))
    on = start + timedelta(days=20)

    double.dashboard_cancel_at(ref, on)
    setting = deliver(double, gateway)
    [credit] = copy.deepcopy(double.state.all("invoiceitem"))  # as it is while pending
    double.advance_to(on - HOUR)
    before = deliver(double, gateway)
    double.advance_to(on + HOUR)
    ending = deliver(double, gateway)

    assert kinds(setting) == [
        ("invoiceitem.created", GatewayEventKind.IGNORED),
        ("customer.subscription.updated", GatewayEventKind.SUBSCRIPTION_CHANGED),
    ]
    dated = setting[1].subscription
    assert dated is not None and dated.scheduled_end == on and dated.current_period_end == end
    # 11 of the 31 days unused: 4900 * 11 / 31 = 1738.7, rounded half up (classic proration).
    assert (credit["amount"], credit["proration"], credit["invoice"]) == (-1739, True, None)
    assert credit["period"] == {"start": int(on.timestamp()), "end": int(end.timestamp())}
    assert before == []  # nothing happens before the date
    assert kinds(ending) == [
        ("customer.subscription.deleted", GatewayEventKind.SUBSCRIPTION_CHANGED),
        ("invoice.finalized", GatewayEventKind.INVOICE_CHANGED),
        ("customer.updated", GatewayEventKind.PAYMENT_METHOD_CHANGED),
        ("invoice.paid", GatewayEventKind.INVOICE_CHANGED),
    ]
    ended = ending[0].subscription
    assert ended is not None and (ended.status, ended.ended_at) == (Status.CANCELED, on)
    final = ending[3].invoice
    assert final is not None and final.status is InvoiceStatus.PAID
    assert final.billing_reason is BillingReason.SUBSCRIPTION_CYCLE
    assert (final.amount_due.amount, final.amount_paid.amount) == (0, 0)
    assert not ending[2].default_payment_method_changed  # the balance moved, not the card
    raw = double.invoices(subscription.customer_ref)[0]
    assert (raw["total"], raw["starting_balance"], raw["ending_balance"]) == (-1739, 0, -1739)
    assert raw["lines"]["data"][0]["parent"]["invoice_item_details"]["invoice_item"] == credit["id"]
    assert double.state.get(credit["id"], "invoiceitem")["invoice"] == raw["id"]
    assert double.paid_with(raw["id"]) is None  # nothing was charged, nothing refunded
    assert double.customer(subscription.customer_ref)["balance"] == -1739
    assert double.subscription(ref)["ended_at"] == int(on.timestamp())
    assert ending[0].created == clock.now()


def test_the_credit_lowers_what_the_customer_pays_next(
    gateway: StripeGateway, double: StripeDouble, catalog: Catalog
) -> None:
    from tests.stripe.conftest import subscribe

    first = subscribe(gateway, double, catalog, "growth")
    double.advance_to(first.current_period_start + timedelta(days=10))
    double.dashboard_cancel_at(
        first.subscription_ref, first.current_period_start + timedelta(days=20)
    )
    double.advance_to(first.current_period_start + timedelta(days=21))
    customer = first.customer_ref
    credit = -int(double.customer(customer)["balance"])

    # The same Stripe customer subscribes again: the credit applies at finalization.
    session = double.state.create_checkout(
        {
            "mode": "subscription",
            "customer": customer,
            "line_items": [{"price": gateway.prices.price_id("starter", first.interval)}],
            "success_url": "https://app.example/done",
        }
    )
    double.complete_checkout(session["id"])
    newest = double.invoices(customer)[0]

    assert newest["billing_reason"] == "subscription_create"
    assert newest["amount_due"] == 1900 - credit
    assert (newest["starting_balance"], newest["ending_balance"]) == (-credit, 0)
    assert double.customer(customer)["balance"] == 0


def test_moving_the_date_charges_back_the_old_credit_and_credits_the_new_one(
    gateway: StripeGateway, double: StripeDouble, subscription: GatewaySubscription
) -> None:
    ref, start = subscription.subscription_ref, subscription.current_period_start
    double.advance_to(start + timedelta(days=5))
    double.dashboard_cancel_at(ref, start + timedelta(days=20))
    double.dashboard_cancel_at(ref, start + timedelta(days=25))

    amounts = sorted(item["amount"] for item in double.state.all("invoiceitem"))
    # 4900 * 11/31 = 1738.7 -> 1739 charged back; 4900 * 6/31 = 948.4 -> 948 credited.
    assert amounts == [-1739, -948, 1739]
    double.advance_to(start + timedelta(days=25) + HOUR)
    assert double.customer(subscription.customer_ref)["balance"] == -948


def test_resume_clears_the_date_and_the_renewal_nets_its_prorations_to_the_full_price(
    gateway: StripeGateway, double: StripeDouble, subscription: GatewaySubscription
) -> None:
    ref, start = subscription.subscription_ref, subscription.current_period_start
    double.advance_to(start + timedelta(days=5))
    double.dashboard_cancel_at(ref, start + timedelta(days=20))

    gateway.resume(subscription_ref=ref, idempotency_key="r:1")
    double.advance_to(subscription.current_period_end + HOUR)
    renewal = double.invoices(subscription.customer_ref)[0]

    assert renewal["billing_reason"] == "subscription_cycle"
    assert [line["amount"] for line in renewal["lines"]["data"]] == [4900, -1739, 1739]
    assert renewal["amount_paid"] == 4900
    assert double.customer(subscription.customer_ref)["balance"] == 0


def test_cancel_now_removes_the_pending_credit(
    gateway: StripeGateway, double: StripeDouble, subscription: GatewaySubscription
) -> None:
    """ "If the subscription is set to cancel immediately, pending prorations will be removed.\""""
    ref, start = subscription.subscription_ref, subscription.current_period_start
    double.advance_to(start + timedelta(days=5))
    double.dashboard_cancel_at(ref, start + timedelta(days=20))

    ended = gateway.cancel_now(subscription_ref=ref, idempotency_key="now:1")
    double.advance_to(start + timedelta(days=21))

    assert (ended.status, ended.ended_at) == (Status.CANCELED, start + timedelta(days=5))
    assert double.state.all("invoiceitem") == []
    assert len(double.invoices(subscription.customer_ref)) == 1
    assert double.customer(subscription.customer_ref)["balance"] == 0


def test_a_date_in_the_past_or_on_a_scheduled_subscription_is_refused(
    gateway: StripeGateway,
    double: StripeDouble,
    subscription: GatewaySubscription,
    catalog: Catalog,
    clock: ControllableClock,
) -> None:
    ref = subscription.subscription_ref
    client = double.client()
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.subscriptions.update(
            ref,
            {"cancel_at": int((clock.now() - HOUR).timestamp())},
            {"idempotency_key": "past:1"},
        )
    gateway.schedule_downgrade(
        subscription_ref=ref, target=catalog.price("starter", "month"), idempotency_key="d:1"
    )
    with pytest.raises(stripe.InvalidRequestError, match="subscription schedule"):
        client.v1.subscriptions.update(
            ref,
            {"cancel_at": int((clock.now() + timedelta(days=3)).timestamp())},
            {"idempotency_key": "scheduled:1"},
        )
    assert double.subscription(ref)["cancel_at"] is None
