"""The sandbox gateway itself: idempotency, periods and renewals, events in Stripe's order, failures."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from responseiq_billing.adapters.fake.clock import ControllableClock
from responseiq_billing.adapters.fake.gateway import TEST_CARDS, FakeGateway
from responseiq_billing.application.ports import (
    CheckoutStatus,
    GatewayEvent,
    GatewayEventKind,
    PortalFlow,
    UiMode,
)
from responseiq_billing.domain.errors import (
    CheckoutNotFound,
    CustomerNotFound,
    GatewayRejected,
    GatewayUnavailable,
    InvoiceNotFound,
    PaymentDeclined,
    SamePlan,
    SubscriptionNotFound,
)
from responseiq_billing.domain.invoices import BillingReason, InvoiceStatus
from responseiq_billing.domain.money import Money
from responseiq_billing.domain.plans import Catalog, Interval, default_catalog
from responseiq_billing.domain.subscription import GatewaySubscription, PendingChange, Status
from tests.unit.conftest import APR_1, MAR_1, MAR_16

M, Y = Interval.MONTH, Interval.YEAR


def start(
    gateway: FakeGateway,
    catalog: Catalog,
    account: str = "acct_ada",
    plan: str = "growth",
    interval: Interval = M,
    card: str = "visa",
) -> GatewaySubscription:
    customer = gateway.ensure_customer(account, idempotency_key=f"customer:{account}")
    session = gateway.start_checkout(
        customer_ref=customer,
        account_id=account,
        price=catalog.price(plan, interval),
        success_url="https://app/ok/{CHECKOUT_SESSION_ID}",
        cancel_url="https://app/no",
        ui_mode=UiMode.HOSTED,
        idempotency_key=f"checkout:{account}",
    )
    outcome = gateway.complete_checkout(session.id, card=card)
    assert outcome.subscription is not None
    return outcome.subscription


def types_since(gateway: FakeGateway, mark: int) -> list[str]:
    return [e.gateway_type for e in gateway.events[mark:]]


# -- idempotency --------------------------------------------------------------------------------


def test_one_customer_per_idempotency_key(gateway: FakeGateway) -> None:
    first = gateway.ensure_customer("acct_ada", idempotency_key="customer:acct_ada")
    again = gateway.ensure_customer("acct_ada", idempotency_key="customer:acct_ada")
    other = gateway.ensure_customer("acct_ada", idempotency_key="customer:acct_ada:2")
    assert first == again != other
    assert first.startswith("cus_")


def test_a_key_reused_with_other_parameters_is_rejected(gateway: FakeGateway) -> None:
    gateway.ensure_customer("acct_ada", idempotency_key="k")
    with pytest.raises(GatewayRejected):
        gateway.ensure_customer("acct_bob", idempotency_key="k")


def test_a_repeated_upgrade_returns_the_first_result_and_charges_once(
    gateway: FakeGateway, catalog: Catalog
) -> None:
    sub = start(gateway, catalog)
    gateway.advance_to(MAR_16)
    args = dict(
        subscription_ref=sub.subscription_ref,
        target=catalog.price("business", M),
        proration_at=MAR_16,
        idempotency_key="plan-change:1",
    )
    first = gateway.upgrade(**args)  # type: ignore[arg-type]
    gateway.advance(timedelta(minutes=1))
    again = gateway.upgrade(**args)  # type: ignore[arg-type]
    assert first == again
    invoices = gateway.customer_invoices(sub.customer_ref)
    assert [i.billing_reason for i in invoices].count(BillingReason.SUBSCRIPTION_UPDATE) == 1


def test_a_declined_upgrade_replays_its_decline_for_the_same_key_like_stripe(
    gateway: FakeGateway, catalog: Catalog
) -> None:
    sub = start(gateway, catalog)
    target = catalog.price("business", M)
    gateway.decline_next_payment()
    with pytest.raises(PaymentDeclined):
        gateway.upgrade(
            subscription_ref=sub.subscription_ref,
            target=target,
            proration_at=MAR_1,
            idempotency_key="k",
        )
    with pytest.raises(PaymentDeclined):
        gateway.upgrade(
            subscription_ref=sub.subscription_ref,
            target=target,
            proration_at=MAR_1,
            idempotency_key="k",
        )
    view = gateway.upgrade(
        subscription_ref=sub.subscription_ref,
        target=target,
        proration_at=MAR_1,
        idempotency_key="k2",
    )
    assert view.plan_id == "business"


def test_concurrent_retries_with_one_key_change_the_subscription_once(
    gateway: FakeGateway, catalog: Catalog
) -> None:
    sub = start(gateway, catalog)
    results: list[GatewaySubscription] = []

    def upgrade() -> None:
        results.append(
            gateway.upgrade(
                subscription_ref=sub.subscription_ref,
                target=catalog.price("business", M),
                proration_at=MAR_1,
                idempotency_key="same",
            )
        )

    threads = [threading.Thread(target=upgrade) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 8 and len(set(results)) == 1
    assert len(gateway.customer_invoices(sub.customer_ref)) == 2


# -- sessions -------------------------------------------------------------------------------------


def test_checkout_sessions_fill_in_the_session_id_and_expire_after_a_day(
    gateway: FakeGateway, catalog: Catalog
) -> None:
    customer = gateway.ensure_customer("acct_ada", idempotency_key="c")
    session = gateway.start_checkout(
        customer_ref=customer,
        account_id="acct_ada",
        price=catalog.price("growth", M),
        success_url="https://app/ok?s={CHECKOUT_SESSION_ID}",
        cancel_url="https://app/no",
        ui_mode=UiMode.EMBEDDED,
        idempotency_key="k",
    )
    assert session.url is None and session.client_secret is not None
    assert session.expires_at == MAR_1 + timedelta(hours=24)
    assert gateway.checkout_price(session.id) == catalog.price("growth", M)
    gateway.advance(timedelta(hours=24))
    assert gateway.get_checkout(session.id).status is CheckoutStatus.EXPIRED
    with pytest.raises(GatewayRejected):
        gateway.complete_checkout(session.id)


def test_checkout_refuses_prices_that_are_not_in_the_catalog(
    gateway: FakeGateway, catalog: Catalog
) -> None:
    customer = gateway.ensure_customer("acct_ada", idempotency_key="c")
    cheap = catalog.price("growth", M)
    with pytest.raises(GatewayRejected):
        gateway.start_checkout(
            customer_ref=customer,
            account_id="acct_ada",
            price=type(cheap)("growth", M, Money(1, "USD")),
            success_url="s",
            cancel_url="c",
            ui_mode=UiMode.HOSTED,
            idempotency_key="k",
        )


def test_only_test_cards_are_accepted(gateway: FakeGateway, catalog: Catalog) -> None:
    with pytest.raises(GatewayRejected):
        start(gateway, catalog, card="diners")
    assert set(TEST_CARDS) == {"visa", "mastercard", "amex", "authenticate"}


def test_portal_flows_about_a_subscription_need_one(gateway: FakeGateway, catalog: Catalog) -> None:
    sub = start(gateway, catalog)
    with pytest.raises(GatewayRejected):
        gateway.open_portal(
            customer_ref=sub.customer_ref,
            return_url="r",
            flow=PortalFlow.SUBSCRIPTION_CANCEL,
            subscription_ref=None,
            idempotency_key="p1",
        )
    other = start(gateway, catalog, account="acct_bob")
    with pytest.raises(SubscriptionNotFound):
        gateway.open_portal(
            customer_ref=sub.customer_ref,
            return_url="r",
            flow=None,
            subscription_ref=other.subscription_ref,
            idempotency_key="p2",
        )


def test_unknown_ids_raise_the_domains_not_found_errors(gateway: FakeGateway) -> None:
    with pytest.raises(CheckoutNotFound):
        gateway.get_checkout("cs_missing")
    with pytest.raises(CheckoutNotFound):
        gateway.complete_payment_method_setup(
            "cs_missing", customer_ref="cus_x", idempotency_key="k"
        )
    with pytest.raises(SubscriptionNotFound):
        gateway.get_subscription("sub_missing")
    with pytest.raises(InvoiceNotFound):
        gateway.get_invoice("in_missing")
    with pytest.raises(InvoiceNotFound):
        gateway.render_invoice_pdf("in_missing")
    with pytest.raises(CustomerNotFound):
        gateway.list_invoices(customer_ref="cus_missing", limit=10, starting_after=None)
    with pytest.raises(CheckoutNotFound):
        gateway.portal_session_customer("bps_missing")


# -- periods and renewals -------------------------------------------------------------------------


def test_a_cycle_started_on_january_31_renews_on_the_last_day_of_shorter_months() -> None:
    catalog = default_catalog()
    clock = ControllableClock(datetime(2026, 1, 31, 12, 0, tzinfo=UTC))
    gateway = FakeGateway(catalog, clock)
    sub = start(gateway, catalog)
    gateway.advance_to(datetime(2026, 5, 1, tzinfo=UTC))
    cycles = [
        i
        for i in reversed(gateway.customer_invoices(sub.customer_ref))
        if i.billing_reason is BillingReason.SUBSCRIPTION_CYCLE
    ]
    assert [
        (i.period_start.date().isoformat(), i.period_end.date().isoformat()) for i in cycles
    ] == [
        ("2026-02-28", "2026-03-31"),
        ("2026-03-31", "2026-04-30"),
        ("2026-04-30", "2026-05-31"),
    ]
    assert all(
        i.status is InvoiceStatus.PAID and i.amount_paid == Money(4900, "USD") for i in cycles
    )


def test_advancing_over_several_subscriptions_handles_their_boundaries_in_time_order(
    gateway: FakeGateway, catalog: Catalog
) -> None:
    start(gateway, catalog, account="acct_ada")
    gateway.advance_to(MAR_16)
    start(gateway, catalog, account="acct_bob", plan="starter")
    mark = len(gateway.events)
    gateway.advance_to(datetime(2026, 6, 1, tzinfo=UTC))
    renewals = [
        e for e in gateway.events[mark:] if e.gateway_type == "customer.subscription.updated"
    ]
    assert [(e.account_id, e.created.date().isoformat()) for e in renewals] == [
        ("acct_ada", "2026-04-01"),
        ("acct_bob", "2026-04-16"),
        ("acct_ada", "2026-05-01"),
        ("acct_bob", "2026-05-16"),
    ]
    created = [e.created for e in gateway.events]
    assert created == sorted(created)
    assert gateway.advance(timedelta(0)) == datetime(2026, 6, 1, tzinfo=UTC)


def test_moving_the_shared_clock_directly_is_caught_up_by_the_next_call(
    gateway: FakeGateway, catalog: Catalog, clock: ControllableClock
) -> None:
    sub = start(gateway, catalog)
    clock.set(APR_1 + timedelta(days=3))
    view = gateway.get_subscription(sub.subscription_ref)
    assert view.current_period_start == APR_1
    renewal = gateway.customer_invoices(sub.customer_ref)[0]
    assert renewal.created == APR_1  # it happened at the boundary, not when noticed


def test_the_clock_never_goes_backwards(gateway: FakeGateway) -> None:
    with pytest.raises(ValueError):
        gateway.advance_to(MAR_1 - timedelta(seconds=1))


def test_a_failed_renewal_makes_the_subscription_past_due_until_a_renewal_is_paid(
    gateway: FakeGateway, catalog: Catalog
) -> None:
    sub = start(gateway, catalog)
    gateway.decline_next_payment()
    gateway.advance_to(APR_1)
    failed = gateway.customer_invoices(sub.customer_ref)[0]
    assert gateway.get_subscription(sub.subscription_ref).status is Status.PAST_DUE
    assert (failed.status, failed.amount_paid) == (InvoiceStatus.OPEN, Money(0, "USD"))
    gateway.advance_to(datetime(2026, 5, 1, 9, tzinfo=UTC))
    assert gateway.get_subscription(sub.subscription_ref).status is Status.ACTIVE


def test_a_scheduled_downgrade_applies_at_the_boundary_and_bills_the_new_price(
    gateway: FakeGateway, catalog: Catalog
) -> None:
    sub = start(gateway, catalog, plan="business")
    view = gateway.schedule_downgrade(
        subscription_ref=sub.subscription_ref,
        target=catalog.price("starter", M),
        idempotency_key="d",
    )
    assert (view.plan_id, view.pending_change) == ("business", PendingChange("starter", M, APR_1))
    gateway.advance_to(APR_1)
    after = gateway.get_subscription(sub.subscription_ref)
    assert (after.plan_id, after.pending_change) == ("starter", None)
    assert gateway.customer_invoices(sub.customer_ref)[0].amount_due == Money(1900, "USD")


def test_a_scheduled_change_to_a_shorter_interval_keeps_the_anchor(
    gateway: FakeGateway, catalog: Catalog
) -> None:
    sub = start(gateway, catalog, interval=Y)
    gateway.schedule_downgrade(
        subscription_ref=sub.subscription_ref,
        target=catalog.price("growth", M),
        idempotency_key="d",
    )
    gateway.advance_to(datetime(2027, 3, 1, 9, tzinfo=UTC))
    after = gateway.get_subscription(sub.subscription_ref)
    assert (after.interval, after.current_period_end) == (M, datetime(2027, 4, 1, 9, tzinfo=UTC))


def test_cancel_drops_the_schedule_and_ends_the_subscription_at_the_period_end(
    gateway: FakeGateway, catalog: Catalog
) -> None:
    sub = start(gateway, catalog, plan="business")
    gateway.schedule_downgrade(
        subscription_ref=sub.subscription_ref,
        target=catalog.price("starter", M),
        idempotency_key="d",
    )
    view = gateway.cancel_at_period_end(subscription_ref=sub.subscription_ref, idempotency_key="c")
    assert (view.cancel_at_period_end, view.pending_change) == (True, None)
    gateway.advance_to(APR_1)
    ended = gateway.get_subscription(sub.subscription_ref)
    assert (ended.status, ended.ended_at, ended.plan_id) == (Status.CANCELED, APR_1, "business")
    with pytest.raises(GatewayRejected):
        gateway.resume(subscription_ref=sub.subscription_ref, idempotency_key="r")


# -- proration --------------------------------------------------------------------------------------


@settings(max_examples=40, deadline=None)
@given(
    st.integers(0, 31 * 86_400),
    st.sampled_from([("starter", M), ("business", M), ("growth", Y), ("business", Y)]),
)
def test_the_upgrade_charges_exactly_what_the_preview_showed_for_the_same_instant(
    offset: int, target_key: tuple[str, Interval]
) -> None:
    catalog = default_catalog()
    clock = ControllableClock(MAR_1)
    gateway = FakeGateway(catalog, clock)
    sub = start(gateway, catalog, plan="starter" if target_key[0] != "starter" else "growth")
    at = MAR_1 + timedelta(seconds=offset)
    gateway.advance_to(at)
    target = catalog.price(*target_key)
    preview = gateway.preview_plan_change(
        subscription_ref=sub.subscription_ref, target=target, proration_at=at
    )
    gateway.upgrade(
        subscription_ref=sub.subscription_ref, target=target, proration_at=at, idempotency_key="u"
    )
    latest = gateway.customer_invoices(sub.customer_ref)[0]
    assert latest.billing_reason is BillingReason.SUBSCRIPTION_UPDATE
    assert latest.amount_paid == latest.amount_due == preview


def test_a_proration_instant_outside_the_current_period_is_rejected(
    gateway: FakeGateway, catalog: Catalog
) -> None:
    sub = start(gateway, catalog)
    with pytest.raises(GatewayRejected):
        gateway.preview_plan_change(
            subscription_ref=sub.subscription_ref,
            target=catalog.price("business", M),
            proration_at=MAR_1 - timedelta(seconds=1),
        )


def test_an_upgrade_to_a_year_resets_the_cycle_to_start_now(
    gateway: FakeGateway, catalog: Catalog
) -> None:
    sub = start(gateway, catalog)
    gateway.advance_to(MAR_16)
    view = gateway.upgrade(
        subscription_ref=sub.subscription_ref,
        target=catalog.price("growth", Y),
        proration_at=MAR_16,
        idempotency_key="u",
    )
    assert (view.current_period_start, view.current_period_end) == (
        MAR_16,
        datetime(2027, 3, 16, 9, tzinfo=UTC),
    )


def test_the_portal_applies_the_same_timing_rule(gateway: FakeGateway, catalog: Catalog) -> None:
    sub = start(gateway, catalog)
    gateway.portal_change_plan(sub.customer_ref, "starter", M)
    view = gateway.get_subscription(sub.subscription_ref)
    assert (view.plan_id, view.pending_change) == ("growth", PendingChange("starter", M, APR_1))
    gateway.portal_change_plan(sub.customer_ref, "business", M)
    view = gateway.get_subscription(sub.subscription_ref)
    assert (view.plan_id, view.pending_change) == ("business", None)
    with pytest.raises(SamePlan):
        gateway.portal_change_plan(sub.customer_ref, "business", M)
    gateway.decline_next_payment()
    with pytest.raises(PaymentDeclined):
        gateway.portal_change_plan(sub.customer_ref, "business", Y)
    assert gateway.get_subscription(sub.subscription_ref).interval is M


# -- events -----------------------------------------------------------------------------------------


def test_checkout_emits_stripes_events_in_stripes_order(
    gateway: FakeGateway, catalog: Catalog
) -> None:
    start(gateway, catalog)
    assert [e.gateway_type for e in gateway.events] == [
        "customer.created",
        "customer.subscription.created",
        "invoice.created",
        "invoice.finalized",
        "invoice.paid",
        "customer.subscription.updated",
        "checkout.session.completed",
    ]
    completed = gateway.events[-1]
    assert completed.kind is GatewayEventKind.CHECKOUT_COMPLETED
    assert (completed.account_id, completed.customer_ref) == (
        "acct_ada",
        gateway.events[0].customer_ref,
    )
    assert completed.subscription_ref is not None and completed.checkout_id is not None


def test_a_renewal_emits_invoice_events_then_the_subscription_update(
    gateway: FakeGateway, catalog: Catalog
) -> None:
    start(gateway, catalog)
    mark = len(gateway.events)
    gateway.advance_to(APR_1)
    events = gateway.events[mark:]
    assert [e.gateway_type for e in events] == [
        "invoice.created",
        "invoice.finalized",
        "invoice.paid",
        "customer.subscription.updated",
    ]
    draft, final, paid = (e.invoice for e in events[:3])
    assert draft is not None and final is not None and paid is not None
    assert (draft.status, draft.number, draft.pdf_url) == (InvoiceStatus.DRAFT, None, None)
    assert (final.status, final.number) == (InvoiceStatus.OPEN, "RIQ-0002")
    assert final.pdf_url is not None and final.pdf_url.endswith(f"/sandbox/invoices/{final.id}.pdf")
    assert paid.status is InvoiceStatus.PAID
    update = events[-1]
    assert update.subscription is not None
    assert update.subscription.as_of == update.created == APR_1
    assert all(e.id.startswith("evt_") and e.created == APR_1 for e in events)


def test_a_failed_renewal_emits_payment_failed_then_the_past_due_update(
    gateway: FakeGateway, catalog: Catalog
) -> None:
    start(gateway, catalog)
    gateway.decline_next_payment()
    mark = len(gateway.events)
    gateway.advance_to(APR_1)
    assert types_since(gateway, mark) == [
        "invoice.created",
        "invoice.finalized",
        "invoice.payment_failed",
        "customer.subscription.updated",
    ]
    last = gateway.events[-1].subscription
    assert last is not None and last.status is Status.PAST_DUE


def test_an_upgrade_over_a_schedule_releases_it_then_invoices_then_updates(
    gateway: FakeGateway, catalog: Catalog
) -> None:
    sub = start(gateway, catalog)
    mark = len(gateway.events)
    gateway.schedule_downgrade(
        subscription_ref=sub.subscription_ref,
        target=catalog.price("starter", M),
        idempotency_key="d",
    )
    assert types_since(gateway, mark) == [
        "subscription_schedule.created",
        "customer.subscription.updated",
    ]
    mark = len(gateway.events)
    gateway.upgrade(
        subscription_ref=sub.subscription_ref,
        target=catalog.price("business", M),
        proration_at=MAR_1,
        idempotency_key="u",
    )
    assert types_since(gateway, mark) == [
        "subscription_schedule.released",
        "invoice.created",
        "invoice.finalized",
        "invoice.paid",
        "customer.subscription.updated",
    ]


def test_the_end_of_a_canceled_subscription_is_announced_as_deleted(
    gateway: FakeGateway, catalog: Catalog
) -> None:
    sub = start(gateway, catalog)
    gateway.cancel_at_period_end(subscription_ref=sub.subscription_ref, idempotency_key="c")
    mark = len(gateway.events)
    gateway.advance_to(APR_1)
    assert types_since(gateway, mark) == ["customer.subscription.deleted"]


def test_a_new_default_card_is_announced_with_its_summary_only(
    gateway: FakeGateway, catalog: Catalog
) -> None:
    sub = start(gateway, catalog)
    setup = gateway.start_payment_method_setup(
        customer_ref=sub.customer_ref, success_url="s", cancel_url="c", idempotency_key="s"
    )
    gateway.complete_setup(setup.id, card="amex")
    completed = gateway.events[-1]
    assert (completed.kind, completed.checkout_id) == (GatewayEventKind.SETUP_COMPLETED, setup.id)
    summary = gateway.complete_payment_method_setup(
        setup.id, customer_ref=sub.customer_ref, idempotency_key="s-done"
    )
    changed = gateway.events[-1]
    assert changed.kind is GatewayEventKind.PAYMENT_METHOD_CHANGED
    assert changed.payment_method == summary == TEST_CARDS["amex"]


def test_subscribers_receive_every_event_in_order_and_a_failing_one_breaks_nothing(
    gateway: FakeGateway, catalog: Catalog
) -> None:
    seen: list[GatewayEvent] = []

    def broken(event: GatewayEvent) -> None:
        raise RuntimeError("webhook endpoint down")

    gateway.subscribe(broken)
    gateway.subscribe(seen.append)
    start(gateway, catalog)
    assert seen == gateway.events
    assert [e for e, _ in gateway.delivery_failures] == gateway.events


def test_a_subscriber_may_call_the_gateway_back(gateway: FakeGateway, catalog: Catalog) -> None:
    reread: list[GatewaySubscription] = []

    def handler(event: GatewayEvent) -> None:
        if event.kind is GatewayEventKind.CHECKOUT_COMPLETED and event.subscription_ref:
            reread.append(gateway.get_subscription(event.subscription_ref))

    gateway.subscribe(handler)
    sub = start(gateway, catalog)
    assert [v.subscription_ref for v in reread] == [sub.subscription_ref]
    assert gateway.delivery_failures == []


# -- failure injection and the call log ------------------------------------------------------------


def test_an_unavailable_call_is_logged_and_changes_nothing(
    gateway: FakeGateway, catalog: Catalog
) -> None:
    sub = start(gateway, catalog)
    events, invoices = len(gateway.events), gateway.customer_invoices(sub.customer_ref)
    gateway.fail_next_call()
    with pytest.raises(GatewayUnavailable):
        gateway.cancel_at_period_end(subscription_ref=sub.subscription_ref, idempotency_key="c")
    assert gateway.calls[-1].name == "cancel_at_period_end"
    assert len(gateway.events) == events
    assert gateway.customer_invoices(sub.customer_ref) == invoices
    assert not gateway.get_subscription(sub.subscription_ref).cancel_at_period_end
    # the key was never used, so the retry with it goes through
    view = gateway.cancel_at_period_end(subscription_ref=sub.subscription_ref, idempotency_key="c")
    assert view.cancel_at_period_end


def test_the_call_log_records_each_port_call_with_its_arguments(
    gateway: FakeGateway, catalog: Catalog
) -> None:
    sub = start(gateway, catalog)
    gateway.list_invoices(customer_ref=sub.customer_ref, limit=5, starting_after=None)
    assert [c.name for c in gateway.calls] == ["ensure_customer", "start_checkout", "list_invoices"]
    assert gateway.calls[0].kwargs == {
        "idempotency_key": "customer:acct_ada",
        "account_id": "acct_ada",
    }
    assert gateway.calls[-1].kwargs == {
        "customer_ref": sub.customer_ref,
        "limit": 5,
        "starting_after": None,
    }


def test_invoice_listing_pages_by_cursor_newest_first(
    gateway: FakeGateway, catalog: Catalog
) -> None:
    sub = start(gateway, catalog)
    gateway.advance_to(datetime(2026, 6, 1, 9, tzinfo=UTC))
    everything = gateway.list_invoices(
        customer_ref=sub.customer_ref, limit=100, starting_after=None
    )
    assert [i.number for i in everything.items] == ["RIQ-0004", "RIQ-0003", "RIQ-0002", "RIQ-0001"]
    page = gateway.list_invoices(
        customer_ref=sub.customer_ref, limit=3, starting_after=everything.items[0].id
    )
    assert (page.items, page.has_more) == (everything.items[1:], False)
    with pytest.raises(GatewayRejected):
        gateway.list_invoices(customer_ref=sub.customer_ref, limit=0, starting_after=None)
    other = start(gateway, catalog, account="acct_bob")
    with pytest.raises(InvoiceNotFound):
        gateway.list_invoices(
            customer_ref=other.customer_ref, limit=3, starting_after=everything.items[0].id
        )
