"""Each action sends exactly the Stripe requests ADR 0005 names, and no more.

The counts here are the table in docs/adr/0005-stripe-adapter.md; change both together.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from responseiq_billing.adapters.fake.clock import ControllableClock
from responseiq_billing.adapters.stripe.gateway import StripeGateway
from responseiq_billing.application.ports import PortalFlow, UiMode
from responseiq_billing.domain.errors import PaymentDeclined
from responseiq_billing.domain.plans import Catalog
from responseiq_billing.domain.subscription import GatewaySubscription
from tests.stripe.conftest import start_card_setup, upgrade_to_business
from tests.stripe_double import Request, StripeDouble

GET_SUB = "GET /v1/subscriptions/{id}"
POST_SUB = "POST /v1/subscriptions/{id}"


def routes(log: list[Request]) -> list[str]:
    return [r.route for r in log]


def test_a_customer_is_one_create_with_the_account_in_metadata_and_our_key(
    gateway: StripeGateway, double: StripeDouble
) -> None:
    with double.recording() as log:
        gateway.ensure_customer("acct_42", idempotency_key="customer:acct_42")
    assert routes(log) == ["POST /v1/customers"]
    assert log[0].params == {"metadata": {"account_id": "acct_42"}}
    assert log[0].idempotency_key == "customer:acct_42"


def test_a_checkout_is_one_create_after_the_prices_are_looked_up_once(
    gateway: StripeGateway, double: StripeDouble, catalog: Catalog
) -> None:
    customer = gateway.ensure_customer("acct_1", idempotency_key="customer:acct_1")

    def start(n: int, ui_mode: UiMode) -> None:
        gateway.start_checkout(
            customer_ref=customer,
            account_id="acct_1",
            price=catalog.price("growth", "year"),
            success_url="https://app.example/done?session={CHECKOUT_SESSION_ID}",
            cancel_url="https://app.example/billing",
            ui_mode=ui_mode,
            idempotency_key=f"checkout:acct_1:{n}",
        )

    with double.recording() as first:
        start(1, UiMode.HOSTED)
    with double.recording() as second:
        start(2, UiMode.EMBEDDED)

    assert routes(first) == ["GET /v1/prices", "POST /v1/checkout/sessions"]
    assert routes(second) == ["POST /v1/checkout/sessions"]
    assert sorted(first[0].params["lookup_keys"]) == sorted(
        f"{p.plan_id}_{p.interval.value}" for p in catalog.all_prices()
    )
    hosted, embedded = first[1].params, second[0].params
    growth_year = gateway.prices.price_id("growth", catalog.price("growth", "year").interval)
    assert hosted == {
        "mode": "subscription",
        "customer": customer,
        "client_reference_id": "acct_1",
        "line_items": [{"price": growth_year, "quantity": "1"}],
        "subscription_data": {
            "metadata": {"account_id": "acct_1"},
            "billing_mode": {"type": "classic"},
        },
        "ui_mode": "hosted_page",
        "success_url": "https://app.example/done?session={CHECKOUT_SESSION_ID}",
        "cancel_url": "https://app.example/billing",
    }
    assert embedded["ui_mode"] == "embedded_page"
    assert "success_url" not in embedded and "cancel_url" not in embedded
    assert embedded["return_url"] == "https://app.example/done?session={CHECKOUT_SESSION_ID}"


def test_the_catalogs_prices_are_listed_again_once_an_hour_old_and_reads_never_list_them(
    gateway: StripeGateway,
    double: StripeDouble,
    subscription: GatewaySubscription,
    catalog: Catalog,
    clock: ControllableClock,
) -> None:
    growth = catalog.price("growth", "month")
    gateway.prices.price_id("growth", growth.interval)
    clock.advance(timedelta(minutes=59))
    with double.recording() as fresh:
        gateway.prices.price_id("growth", growth.interval)
    clock.advance(timedelta(minutes=2))
    with double.recording() as stale:
        gateway.get_subscription(subscription.subscription_ref)
        gateway.prices.price_id("growth", growth.interval)
    assert routes(fresh) == []
    assert routes(stale) == [GET_SUB, "GET /v1/prices"]


def test_reading_a_checkout_or_subscription_is_one_request_with_expansions(
    gateway: StripeGateway, double: StripeDouble, subscription: GatewaySubscription
) -> None:
    with double.recording() as log:
        view = gateway.get_subscription(subscription.subscription_ref)
    assert routes(log) == [GET_SUB]
    assert log[0].params["expand"] == [
        "schedule",
        "default_payment_method",
        "customer.invoice_settings.default_payment_method",
    ]
    assert view.payment_method is not None


def test_a_preview_is_a_read_and_one_create_preview_with_the_proration_date(
    gateway: StripeGateway,
    double: StripeDouble,
    subscription: GatewaySubscription,
    catalog: Catalog,
    clock: ControllableClock,
) -> None:
    clock.advance(timedelta(days=3))
    at = clock.now()
    with double.recording() as log:
        gateway.preview_plan_change(
            subscription_ref=subscription.subscription_ref,
            target=catalog.price("business", "month"),
            proration_at=at,
        )
    # Three days on, the catalog's current prices are over an hour old: listed once more.
    assert routes(log) == [GET_SUB, "GET /v1/prices", "POST /v1/invoices/create_preview"]
    details = log[2].params["subscription_details"]
    assert details["proration_behavior"] == "always_invoice"
    assert details["proration_date"] == str(int(at.timestamp()))
    assert log[2].params["subscription"] == subscription.subscription_ref


def test_an_upgrade_is_a_read_and_one_update_with_pending_if_incomplete(
    gateway: StripeGateway,
    double: StripeDouble,
    subscription: GatewaySubscription,
    catalog: Catalog,
    clock: ControllableClock,
) -> None:
    at = clock.now() + timedelta(days=1)
    clock.set(at)
    assert len(gateway.prices)  # a day on, the current prices are listed again (pinned above)
    with double.recording() as log:
        upgrade_to_business(
            gateway, subscription, catalog, at=at, idempotency_key="plan-change:a:1"
        )
    assert routes(log) == [GET_SUB, POST_SUB]
    update = log[1].params
    assert update["proration_behavior"] == "always_invoice"
    assert update["payment_behavior"] == "pending_if_incomplete"
    assert update["proration_date"] == str(int(at.timestamp()))
    # A write that names a price carries it in its key (a repriced plan's retry is its own).
    business = gateway.prices.price_id("business", catalog.price("business", "month").interval)
    assert update["items"][0]["price"] == business
    assert log[1].idempotency_key == f"plan-change:a:1:update:{business}"


def test_a_declined_upgrade_adds_one_read_of_the_invoice_payment(
    gateway: StripeGateway,
    double: StripeDouble,
    subscription: GatewaySubscription,
    catalog: Catalog,
    clock: ControllableClock,
) -> None:
    double.decline_next_payment()
    with double.recording() as log, pytest.raises(PaymentDeclined):
        upgrade_to_business(
            gateway, subscription, catalog, at=clock.now(), idempotency_key="plan-change:a:2"
        )
    assert routes(log) == [GET_SUB, POST_SUB, "GET /v1/invoice_payments"]


def test_a_downgrade_is_a_read_a_schedule_from_the_subscription_and_its_two_phases(
    gateway: StripeGateway,
    double: StripeDouble,
    subscription: GatewaySubscription,
    catalog: Catalog,
) -> None:
    with double.recording() as log:
        gateway.schedule_downgrade(
            subscription_ref=subscription.subscription_ref,
            target=catalog.price("starter", "month"),
            idempotency_key="plan-change:a:3",
        )
    with double.recording() as replaced:
        gateway.schedule_downgrade(
            subscription_ref=subscription.subscription_ref,
            target=catalog.price("starter", "year"),
            idempotency_key="plan-change:a:4",
        )

    assert routes(log) == [
        GET_SUB,
        "POST /v1/subscription_schedules",
        "POST /v1/subscription_schedules/{id}",
    ]
    assert log[1].params == {"from_subscription": subscription.subscription_ref}
    starter = gateway.prices.price_id("starter", catalog.price("starter", "month").interval)
    assert [r.idempotency_key for r in log[1:]] == [
        "plan-change:a:3:schedule",
        f"plan-change:a:3:phases:{starter}",
    ]
    phases = log[2].params["phases"]
    assert log[2].params["end_behavior"] == "release"
    assert phases[0]["start_date"] == str(int(subscription.current_period_start.timestamp()))
    assert phases[0]["end_date"] == str(int(subscription.current_period_end.timestamp()))
    assert phases[1]["proration_behavior"] == "none"
    assert phases[1]["items"][0]["price"] == gateway.prices.price_id(
        "starter", catalog.price("starter", "month").interval
    )
    # an existing schedule is reused, not stacked
    assert routes(replaced) == [GET_SUB, "POST /v1/subscription_schedules/{id}"]


def test_withdraw_cancel_and_resume_release_a_schedule_before_touching_the_subscription(
    gateway: StripeGateway,
    double: StripeDouble,
    subscription: GatewaySubscription,
    catalog: Catalog,
) -> None:
    ref = subscription.subscription_ref
    down = catalog.price("starter", "month")
    gateway.schedule_downgrade(subscription_ref=ref, target=down, idempotency_key="d:1")
    with double.recording() as withdraw:
        gateway.withdraw_scheduled_change(subscription_ref=ref, idempotency_key="w:1")
    gateway.schedule_downgrade(subscription_ref=ref, target=down, idempotency_key="d:2")
    with double.recording() as cancel:
        gateway.cancel_at_period_end(subscription_ref=ref, idempotency_key="c:1")
    with double.recording() as resume:
        gateway.resume(subscription_ref=ref, idempotency_key="r:1")
    with double.recording() as plain_cancel:
        gateway.cancel_at_period_end(subscription_ref=ref, idempotency_key="c:2")

    assert routes(withdraw) == [GET_SUB, "POST /v1/subscription_schedules/{id}/release"]
    assert routes(cancel) == [GET_SUB, "POST /v1/subscription_schedules/{id}/release", POST_SUB]
    assert cancel[2].params["cancel_at_period_end"] == "true"
    assert routes(resume) == [POST_SUB]
    assert resume[0].params["cancel_at_period_end"] == "false"
    assert routes(plain_cancel) == [GET_SUB, POST_SUB]


def test_portal_sessions_are_one_create_with_the_deep_link(
    gateway: StripeGateway, double: StripeDouble, subscription: GatewaySubscription
) -> None:
    flows = {}
    for n, flow in enumerate([None, *PortalFlow]):
        with double.recording() as log:
            gateway.open_portal(
                customer_ref=subscription.customer_ref,
                return_url="https://app.example/billing",
                flow=flow,
                subscription_ref=subscription.subscription_ref,
                idempotency_key=f"portal:{n}",
            )
        assert routes(log) == ["POST /v1/billing_portal/sessions"]
        flows[flow] = log[0].params.get("flow_data")
    assert flows[None] is None
    assert flows[PortalFlow.PAYMENT_METHOD_UPDATE] == {"type": "payment_method_update"}
    assert flows[PortalFlow.SUBSCRIPTION_UPDATE] == {
        "type": "subscription_update",
        "subscription_update": {"subscription": subscription.subscription_ref},
    }
    assert flows[PortalFlow.SUBSCRIPTION_CANCEL] == {
        "type": "subscription_cancel",
        "subscription_cancel": {"subscription": subscription.subscription_ref},
    }


def test_a_payment_method_setup_is_one_create_and_completing_it_sets_both_defaults(
    gateway: StripeGateway, double: StripeDouble, subscription: GatewaySubscription
) -> None:
    with double.recording() as start:
        setup = start_card_setup(gateway, subscription, "setup:1")
    double.complete_checkout(setup.id, card="amex")
    with double.recording() as complete:
        gateway.complete_payment_method_setup(
            setup.id, customer_ref=subscription.customer_ref, idempotency_key="setup-complete:1"
        )

    assert routes(start) == ["POST /v1/checkout/sessions"]
    assert start[0].params["mode"] == "setup"
    assert routes(complete) == [
        "GET /v1/checkout/sessions/{id}",
        "POST /v1/customers/{id}",
        POST_SUB,  # Checkout set the subscription's own default, which wins over the customer's
    ]
    pm = complete[1].params["invoice_settings"]["default_payment_method"]
    assert complete[2].params == {"default_payment_method": pm}
    assert double.subscription(subscription.subscription_ref)["default_payment_method"] == pm


def test_invoices_are_one_list_per_page_and_one_retrieve(
    gateway: StripeGateway, double: StripeDouble, subscription: GatewaySubscription
) -> None:
    with double.recording() as listing:
        page = gateway.list_invoices(
            customer_ref=subscription.customer_ref, limit=5, starting_after=None
        )
    with double.recording() as one:
        gateway.get_invoice(page.items[0].id)
    assert routes(listing) == ["GET /v1/invoices"]
    assert listing[0].params == {"customer": subscription.customer_ref, "limit": "5"}
    assert routes(one) == ["GET /v1/invoices/{id}"]


def test_every_post_carries_a_key_derived_from_the_command(
    gateway: StripeGateway,
    double: StripeDouble,
    subscription: GatewaySubscription,
    catalog: Catalog,
) -> None:
    ref = subscription.subscription_ref
    with double.recording() as log:
        gateway.schedule_downgrade(
            subscription_ref=ref, target=catalog.price("starter", "month"), idempotency_key="cmd:7"
        )
        gateway.cancel_at_period_end(subscription_ref=ref, idempotency_key="cmd:8")
        gateway.resume(subscription_ref=ref, idempotency_key="cmd:9")
    keys = [r.idempotency_key for r in log if r.method == "POST"]
    starter = gateway.prices.price_id("starter", catalog.price("starter", "month").interval)
    assert keys == [
        "cmd:7:schedule",
        f"cmd:7:phases:{starter}",  # a write that names a price names it in its key
        "cmd:8:release",
        "cmd:8:update",
        "cmd:9",
    ]


def test_expiring_a_checkout_is_one_post_and_a_read_only_when_it_was_no_longer_open(
    gateway: StripeGateway, double: StripeDouble, catalog: Catalog
) -> None:
    customer = gateway.ensure_customer("acct_2", idempotency_key="customer:acct_2")

    def start(n: int) -> str:
        return gateway.start_checkout(
            customer_ref=customer,
            account_id="acct_2",
            price=catalog.price("growth", "month"),
            success_url="https://app.example/done?session={CHECKOUT_SESSION_ID}",
            cancel_url="https://app.example/billing",
            ui_mode=UiMode.HOSTED,
            idempotency_key=f"checkout:acct_2:{n}",
        ).id

    open_one, paid = start(1), start(2)
    double.complete_checkout(paid)
    with double.recording() as expire:
        gateway.expire_checkout(open_one, idempotency_key=f"checkout-expire:{open_one}")
    with double.recording() as too_late:
        gateway.expire_checkout(paid, idempotency_key=f"checkout-expire:{paid}")

    assert routes(expire) == ["POST /v1/checkout/sessions/{id}/expire"]
    assert expire[0].idempotency_key == f"checkout-expire:{open_one}"
    assert routes(too_late) == [
        "POST /v1/checkout/sessions/{id}/expire",  # Stripe refuses: only open sessions expire
        "GET /v1/checkout/sessions/{id}",
    ]


def test_cancel_now_is_one_delete_without_proration_and_a_read_once_it_has_ended(
    gateway: StripeGateway, double: StripeDouble, subscription: GatewaySubscription
) -> None:
    ref = subscription.subscription_ref
    with double.recording() as cancel:
        gateway.cancel_now(subscription_ref=ref, idempotency_key=f"duplicate:{ref}:cancel")
    with double.recording() as again:
        gateway.cancel_now(subscription_ref=ref, idempotency_key=f"duplicate:{ref}:cancel")

    assert routes(cancel) == ["DELETE /v1/subscriptions/{id}"]
    assert cancel[0].params == {
        "expand": [
            "schedule",
            "default_payment_method",
            "customer.invoice_settings.default_payment_method",
        ],
        "invoice_now": "false",
        "prorate": "false",
    }
    assert cancel[0].idempotency_key is None  # Stripe: a DELETE takes no key
    assert routes(again) == ["DELETE /v1/subscriptions/{id}", GET_SUB]  # 404, then read


def test_a_refund_reads_the_invoice_payment_then_refunds_its_payment_intent_with_our_key(
    gateway: StripeGateway, double: StripeDouble, subscription: GatewaySubscription
) -> None:
    [invoice] = gateway.list_invoices(
        customer_ref=subscription.customer_ref, limit=1, starting_after=None
    ).items
    with double.recording() as log:
        gateway.refund_invoice(invoice_id=invoice.id, idempotency_key="duplicate:sub_x:refund")

    assert routes(log) == ["GET /v1/invoice_payments", "POST /v1/refunds"]
    assert log[0].params == {"invoice": invoice.id, "status": "paid"}
    assert log[1].params["payment_intent"].startswith("pi_")
    assert log[1].params["metadata"] == {"invoice": invoice.id}
    assert log[1].idempotency_key == "duplicate:sub_x:refund"


def test_following_the_customers_new_card_is_a_read_and_one_update_only_when_it_differs(
    gateway: StripeGateway, double: StripeDouble, subscription: GatewaySubscription
) -> None:
    double.portal_update_payment_method(subscription.customer_ref, "amex")
    ref = subscription.subscription_ref

    with double.recording() as first:
        gateway.use_customer_payment_method(subscription_ref=ref, idempotency_key="evt_1:pm")
    with double.recording() as again:
        gateway.use_customer_payment_method(subscription_ref=ref, idempotency_key="evt_2:pm")

    assert routes(first) == [GET_SUB, POST_SUB]
    assert first[1].params["default_payment_method"] == ""
    assert first[1].idempotency_key == "evt_1:pm:follow"
    assert routes(again) == [GET_SUB]


def test_a_declined_upgrade_over_a_scheduled_downgrade_schedules_it_again_in_two_posts(
    gateway: StripeGateway,
    double: StripeDouble,
    subscription: GatewaySubscription,
    catalog: Catalog,
    clock: ControllableClock,
) -> None:
    gateway.schedule_downgrade(
        subscription_ref=subscription.subscription_ref,
        target=catalog.price("starter", "month"),
        idempotency_key="plan-change:d:1",
    )
    double.decline_next_payment()
    with double.recording() as log, pytest.raises(PaymentDeclined):
        upgrade_to_business(
            gateway, subscription, catalog, at=clock.now(), idempotency_key="plan-change:a:3"
        )
    assert routes(log) == [
        GET_SUB,
        "POST /v1/subscription_schedules/{id}/release",
        POST_SUB,
        "GET /v1/invoice_payments",
        "POST /v1/subscription_schedules",
        "POST /v1/subscription_schedules/{id}",
    ]
    starter = gateway.prices.price_id("starter", catalog.price("starter", "month").interval)
    assert [r.idempotency_key for r in log if r.method == "POST"][-2:] == [
        "plan-change:a:3:reschedule:schedule",
        f"plan-change:a:3:reschedule:phases:{starter}",
    ]
