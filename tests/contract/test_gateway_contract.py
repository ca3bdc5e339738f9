"""The PaymentGateway port's promises, written once and kept by every gateway adapter."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import urlsplit

import attrs
import pytest

from responseiq_billing.application.ports import (
    CheckoutStatus,
    PortalFlow,
    ScheduledChanges,
    UiMode,
)
from responseiq_billing.domain.errors import (
    CheckoutNotFound,
    GatewayRejected,
    InvoiceNotFound,
    PaymentActionRequired,
    PaymentDeclined,
    SubscriptionNotFound,
)
from responseiq_billing.domain.invoices import BillingReason, Invoice, InvoiceStatus
from responseiq_billing.domain.periods import add_months
from responseiq_billing.domain.plans import Interval
from responseiq_billing.domain.subscription import (
    GatewaySubscription,
    PaymentMethodSummary,
    PendingChange,
    Status,
)
from tests.contract.conftest import Driver, new_account

HOUR = timedelta(hours=1)
OK_URL = "https://app.example/done?session={CHECKOUT_SESSION_ID}"


def requires_gateway_scheduling(driver: Driver) -> None:
    """Scheduled downgrades are a promise of GATEWAY-scheduling adapters only; for CORE ones
    the core keeps them (tests/unit/test_core_scheduled_changes.py, and the Gherkin)."""
    if driver.gateway.scheduled_changes is not ScheduledChanges.GATEWAY:
        pytest.skip("this gateway does not schedule changes; the core keeps its downgrades")


def is_absolute_url(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def test_a_customer_is_created_once_per_account_and_key(driver: Driver) -> None:
    account = new_account()
    first = driver.gateway.ensure_customer(account, idempotency_key=f"customer:{account}")
    again = driver.gateway.ensure_customer(account, idempotency_key=f"customer:{account}")
    other = new_account()
    second = driver.gateway.ensure_customer(other, idempotency_key=f"customer:{other}")
    assert first == again
    assert second != first


def test_a_hosted_checkout_gives_a_url_and_no_client_secret(driver: Driver) -> None:
    account = new_account()
    session = driver.gateway.start_checkout(
        customer_ref=driver.customer(account),
        account_id=account,
        price=driver.catalog.price("starter", "month"),
        success_url="https://app.example/done?session={CHECKOUT_SESSION_ID}",
        cancel_url="https://app.example/billing",
        ui_mode=UiMode.HOSTED,
        idempotency_key=f"checkout:{account}:1",
    )
    assert session.url is not None and is_absolute_url(session.url)
    assert session.client_secret is None
    outcome = driver.gateway.get_checkout(session.id)
    assert outcome.status is CheckoutStatus.OPEN
    assert outcome.subscription is None
    assert outcome.account_id == account


def test_an_embedded_checkout_gives_a_client_secret_and_no_url(driver: Driver) -> None:
    account = new_account()
    session = driver.gateway.start_checkout(
        customer_ref=driver.customer(account),
        account_id=account,
        price=driver.catalog.price("growth", "year"),
        success_url="https://app.example/done?session={CHECKOUT_SESSION_ID}",
        cancel_url="https://app.example/billing",
        ui_mode=UiMode.EMBEDDED,
        idempotency_key=f"checkout:{account}:1",
    )
    assert session.client_secret
    assert session.url is None


def test_a_paid_checkout_becomes_an_active_subscription_for_the_account(driver: Driver) -> None:
    account = new_account()
    customer = driver.customer(account)
    session = driver.gateway.start_checkout(
        customer_ref=customer,
        account_id=account,
        price=driver.catalog.price("growth", "month"),
        success_url="https://app.example/done?session={CHECKOUT_SESSION_ID}",
        cancel_url="https://app.example/billing",
        ui_mode=UiMode.HOSTED,
        idempotency_key=f"checkout:{account}:1",
    )
    started = driver.now()
    driver.pay_checkout(session.id, card="visa")

    outcome = driver.gateway.get_checkout(session.id)

    assert outcome.status is CheckoutStatus.COMPLETE
    assert (outcome.account_id, outcome.customer_ref) == (account, customer)
    view = outcome.subscription
    assert view is not None
    assert (view.plan_id, view.interval, view.status) == ("growth", Interval.MONTH, Status.ACTIVE)
    assert view.customer_ref == customer
    assert view.current_period_start == started
    assert view.current_period_end == add_months(started, 1)
    assert view.payment_method == PaymentMethodSummary("visa", "4242")
    assert not view.cancel_at_period_end and view.pending_change is None
    assert driver.gateway.get_subscription(view.subscription_ref) == view
    listed = driver.gateway.list_subscriptions(customer)
    assert [s.subscription_ref for s in listed] == [view.subscription_ref]


def test_an_upgrade_charges_what_the_preview_showed_and_switches_the_plan_now(
    driver: Driver,
) -> None:
    sub = driver.subscribe(new_account(), "starter")
    driver.advance_to(sub.current_period_start + timedelta(days=10))
    at = driver.now()
    target = driver.catalog.price("growth", "month")

    quoted = driver.gateway.preview_plan_change(
        subscription_ref=sub.subscription_ref, target=target, proration_at=at
    )
    view = driver.gateway.upgrade(
        subscription_ref=sub.subscription_ref,
        target=target,
        proration_at=at,
        idempotency_key="plan-change:1",
    )

    assert 0 < quoted.amount < target.amount.amount
    assert (view.plan_id, view.interval, view.status) == ("growth", Interval.MONTH, Status.ACTIVE)
    assert view.current_period_end == sub.current_period_end
    newest = driver.gateway.list_invoices(
        customer_ref=sub.customer_ref, limit=1, starting_after=None
    )
    charge = newest.items[0]
    assert charge.billing_reason is BillingReason.SUBSCRIPTION_UPDATE
    assert charge.status is InvoiceStatus.PAID
    assert charge.amount_paid == quoted
    assert driver.gateway.get_subscription(sub.subscription_ref).plan_id == "growth"


def test_a_declined_upgrade_raises_payment_declined_and_keeps_the_plan(driver: Driver) -> None:
    sub = driver.subscribe(new_account(), "starter")
    driver.advance_to(sub.current_period_start + timedelta(days=3))
    driver.decline_next_payment()

    with pytest.raises(PaymentDeclined):
        driver.gateway.upgrade(
            subscription_ref=sub.subscription_ref,
            target=driver.catalog.price("business", "month"),
            proration_at=driver.now(),
            idempotency_key="plan-change:declined",
        )

    after = driver.gateway.get_subscription(sub.subscription_ref)
    assert (after.plan_id, after.interval) == ("starter", Interval.MONTH)
    assert after.status is Status.ACTIVE


def test_a_downgrade_waits_for_the_period_end_and_then_applies(driver: Driver) -> None:
    requires_gateway_scheduling(driver)
    sub = driver.subscribe(new_account(), "business")
    driver.advance_to(sub.current_period_start + timedelta(days=5))
    invoices_before = driver.gateway.list_invoices(
        customer_ref=sub.customer_ref, limit=10, starting_after=None
    ).items

    view = driver.gateway.schedule_downgrade(
        subscription_ref=sub.subscription_ref,
        target=driver.catalog.price("starter", "month"),
        idempotency_key="plan-change:down",
    )

    assert view.plan_id == "business"
    assert view.pending_change == PendingChange("starter", Interval.MONTH, sub.current_period_end)
    assert (
        driver.gateway.get_subscription(sub.subscription_ref).pending_change == view.pending_change
    )
    invoices_now = driver.gateway.list_invoices(
        customer_ref=sub.customer_ref, limit=10, starting_after=None
    ).items
    assert invoices_now == invoices_before  # nothing is charged now

    driver.advance_to(sub.current_period_end + HOUR)
    renewed = driver.gateway.get_subscription(sub.subscription_ref)
    assert (renewed.plan_id, renewed.pending_change) == ("starter", None)
    assert renewed.current_period_start == sub.current_period_end
    newest = driver.gateway.list_invoices(
        customer_ref=sub.customer_ref, limit=1, starting_after=None
    )
    assert newest.items[0].billing_reason is BillingReason.SUBSCRIPTION_CYCLE
    assert newest.items[0].amount_paid == driver.catalog.price("starter", "month").amount


def test_a_second_downgrade_replaces_the_first(driver: Driver) -> None:
    requires_gateway_scheduling(driver)
    sub = driver.subscribe(new_account(), "business")
    driver.gateway.schedule_downgrade(
        subscription_ref=sub.subscription_ref,
        target=driver.catalog.price("growth", "month"),
        idempotency_key="plan-change:down-1",
    )
    view = driver.gateway.schedule_downgrade(
        subscription_ref=sub.subscription_ref,
        target=driver.catalog.price("starter", "month"),
        idempotency_key="plan-change:down-2",
    )
    assert view.pending_change == PendingChange("starter", Interval.MONTH, sub.current_period_end)


def test_a_withdrawn_downgrade_renews_on_the_current_plan(driver: Driver) -> None:
    requires_gateway_scheduling(driver)
    sub = driver.subscribe(new_account(), "growth")
    driver.gateway.schedule_downgrade(
        subscription_ref=sub.subscription_ref,
        target=driver.catalog.price("starter", "month"),
        idempotency_key="plan-change:down",
    )

    view = driver.gateway.withdraw_scheduled_change(
        subscription_ref=sub.subscription_ref, idempotency_key="withdraw:1"
    )

    assert (view.plan_id, view.pending_change) == ("growth", None)
    driver.advance_to(sub.current_period_end + HOUR)
    renewed = driver.gateway.get_subscription(sub.subscription_ref)
    assert (renewed.plan_id, renewed.status) == ("growth", Status.ACTIVE)
    assert renewed.current_period_start == sub.current_period_end


def test_an_upgrade_drops_a_scheduled_downgrade_first(driver: Driver) -> None:
    requires_gateway_scheduling(driver)
    sub = driver.subscribe(new_account(), "growth")
    driver.gateway.schedule_downgrade(
        subscription_ref=sub.subscription_ref,
        target=driver.catalog.price("starter", "month"),
        idempotency_key="plan-change:down",
    )
    view = driver.gateway.upgrade(
        subscription_ref=sub.subscription_ref,
        target=driver.catalog.price("business", "month"),
        proration_at=driver.now(),
        idempotency_key="plan-change:up",
    )
    assert (view.plan_id, view.pending_change) == ("business", None)
    driver.advance_to(sub.current_period_end + HOUR)
    assert driver.gateway.get_subscription(sub.subscription_ref).plan_id == "business"


def test_a_price_applied_for_renewal_bills_nothing_now_and_the_renewal_bills_it(
    driver: Driver,
) -> None:
    if driver.gateway.scheduled_changes is not ScheduledChanges.CORE:
        pytest.skip("only a CORE-scheduling gateway is asked to apply a downgrade itself")
    sub = driver.subscribe(new_account(), "business")
    driver.advance_to(sub.current_period_end - timedelta(hours=2))
    before = driver.gateway.list_invoices(
        customer_ref=sub.customer_ref, limit=10, starting_after=None
    ).items
    target = driver.catalog.price("starter", "month")

    view = driver.gateway.apply_plan_for_renewal(
        subscription_ref=sub.subscription_ref, target=target, idempotency_key="renewal-plan:1"
    )
    again = driver.gateway.apply_plan_for_renewal(
        subscription_ref=sub.subscription_ref, target=target, idempotency_key="renewal-plan:2"
    )

    assert (view.plan_id, again.plan_id) == ("starter", "starter")
    assert view.current_period_end == sub.current_period_end
    after = driver.gateway.list_invoices(
        customer_ref=sub.customer_ref, limit=10, starting_after=None
    ).items
    assert after == before  # nothing billed or credited now, not even on the retry
    driver.advance_to(sub.current_period_end + HOUR)
    newest = driver.gateway.list_invoices(
        customer_ref=sub.customer_ref, limit=1, starting_after=None
    ).items[0]
    assert newest.billing_reason is BillingReason.SUBSCRIPTION_CYCLE
    assert newest.amount_paid == target.amount


def test_a_core_scheduling_gateway_refuses_to_schedule_and_changes_nothing(
    driver: Driver,
) -> None:
    if driver.gateway.scheduled_changes is not ScheduledChanges.CORE:
        pytest.skip("this gateway schedules changes itself")
    sub = driver.subscribe(new_account(), "business")

    with pytest.raises(GatewayRejected):
        driver.gateway.schedule_downgrade(
            subscription_ref=sub.subscription_ref,
            target=driver.catalog.price("starter", "month"),
            idempotency_key="plan-change:down",
        )

    after = driver.gateway.get_subscription(sub.subscription_ref)
    assert (after.plan_id, after.pending_change) == ("business", None)


def test_cancel_at_period_end_keeps_the_subscription_until_the_end_then_ends_it(
    driver: Driver,
) -> None:
    sub = driver.subscribe(new_account(), "growth")
    if driver.gateway.scheduled_changes is ScheduledChanges.GATEWAY:
        driver.gateway.schedule_downgrade(
            subscription_ref=sub.subscription_ref,
            target=driver.catalog.price("starter", "month"),
            idempotency_key="plan-change:down",
        )

    view = driver.gateway.cancel_at_period_end(
        subscription_ref=sub.subscription_ref, idempotency_key="cancel:1"
    )

    assert view.cancel_at_period_end
    assert view.pending_change is None  # the cancellation supersedes the scheduled downgrade
    assert (view.status, view.plan_id) == (Status.ACTIVE, "growth")
    driver.advance_to(sub.current_period_end + HOUR)
    ended = driver.gateway.get_subscription(sub.subscription_ref)
    assert ended.status is Status.CANCELED
    assert ended.ended_at == sub.current_period_end


def test_a_scheduled_cancellation_says_when_it_ends_and_resume_clears_it(driver: Driver) -> None:
    sub = driver.subscribe(new_account(), "starter")
    ref = sub.subscription_ref
    canceling = driver.gateway.cancel_at_period_end(subscription_ref=ref, idempotency_key="c:1")
    assert canceling.scheduled_end == sub.current_period_end
    driver.gateway.resume(subscription_ref=ref, idempotency_key="r:1")
    on = sub.current_period_end + timedelta(days=40)  # a date in a later period

    driver.dashboard_cancel_at(sub, on)
    dated = driver.gateway.get_subscription(ref)
    resumed = driver.gateway.resume(subscription_ref=ref, idempotency_key="r:2")

    assert dated.cancel_at_period_end and dated.scheduled_end == on
    assert (resumed.cancel_at_period_end, resumed.scheduled_end) == (False, None)
    assert driver.gateway.get_subscription(ref).scheduled_end is None
    driver.advance_to(on + HOUR)
    assert driver.gateway.get_subscription(ref).status is Status.ACTIVE


def time_share(amount: int, part: timedelta, whole: timedelta) -> int:
    """`amount * part / whole` to the second, rounded half up: one classic proration line."""
    seconds, total = int(part.total_seconds()), int(whole.total_seconds())
    return (2 * amount * seconds + total) // (2 * total)


def test_a_cancellation_date_inside_the_period_ends_it_then_and_credits_the_unused_time(
    driver: Driver,
) -> None:
    """Stripe's `cancel_at` inside the current period (the Dashboard's custom date, default
    `proration_behavior=create_prorations`): the subscription keeps running until that moment,
    ends then and not at the period end, and the unused time is credited to the customer's
    balance; no invoice charges anything for it."""
    sub = driver.subscribe(new_account(), "growth")
    ref, price = sub.subscription_ref, driver.catalog.price("growth", "month").amount.amount
    driver.advance_to(sub.current_period_start + timedelta(days=10))
    on = sub.current_period_start + timedelta(days=20)

    driver.dashboard_cancel_at(sub, on)
    dated = driver.gateway.get_subscription(ref)
    driver.advance_to(on - HOUR)
    before = driver.gateway.get_subscription(ref)
    driver.advance_to(on + HOUR)
    ended = driver.gateway.get_subscription(ref)
    invoices = driver.gateway.list_invoices(
        customer_ref=sub.customer_ref, limit=10, starting_after=None
    ).items

    assert (dated.status, dated.plan_id) == (Status.ACTIVE, "growth")
    assert dated.cancel_at_period_end and dated.scheduled_end == on
    assert (before.status, before.scheduled_end) == (Status.ACTIVE, on)
    assert ended.status is Status.CANCELED
    assert ended.ended_at == on  # at the date set, not at the period end
    unused = time_share(
        price, sub.current_period_end - on, sub.current_period_end - sub.current_period_start
    )
    assert 0 < unused < price
    assert driver.customer_balance(sub.customer_ref) == -unused
    first, *later = sorted(invoices, key=lambda i: i.created)
    assert first.amount_paid.amount == price  # the only payment: the credit is not refunded
    assert all((i.amount_due.amount, i.amount_paid.amount) == (0, 0) for i in later)


def test_a_cancellation_date_in_a_later_period_bills_that_period_until_the_date_and_ends_then(
    driver: Driver,
) -> None:
    """A `cancel_at` in a later period: the renewal into that period bills only the time until
    the date ("If set during a future period, this will always cause a proration for that
    period"), and the subscription ends at the date, with nothing left to credit."""
    sub = driver.subscribe(new_account(), "starter")
    ref, price = sub.subscription_ref, driver.catalog.price("starter", "month").amount.amount
    renews_at = sub.current_period_end
    on = renews_at + timedelta(days=10)

    driver.dashboard_cancel_at(sub, on)
    driver.advance_to(renews_at + HOUR)
    renewed = driver.gateway.get_subscription(ref)
    renewal = driver.gateway.list_invoices(
        customer_ref=sub.customer_ref, limit=1, starting_after=None
    ).items[0]
    driver.advance_to(on + HOUR)
    ended = driver.gateway.get_subscription(ref)

    assert (renewed.status, renewed.current_period_start) == (Status.ACTIVE, renews_at)
    assert renewed.cancel_at_period_end and renewed.scheduled_end == on
    assert renewal.billing_reason is BillingReason.SUBSCRIPTION_CYCLE
    billed = time_share(price, on - renews_at, add_months(renews_at, 1) - renews_at)
    assert renewal.amount_paid.amount == billed < price
    assert (ended.status, ended.ended_at) == (Status.CANCELED, on)
    assert driver.customer_balance(sub.customer_ref) == 0


def test_resuming_a_cancellation_date_inside_the_period_takes_its_credit_back(
    driver: Driver,
) -> None:
    """Resume clears a `cancel_at` inside the period (`cancel_at: ""`): the time it credited is
    charged back, so the renewal bills the full price and the balance is untouched."""
    sub = driver.subscribe(new_account(), "growth")
    ref, price = sub.subscription_ref, driver.catalog.price("growth", "month").amount.amount
    driver.advance_to(sub.current_period_start + timedelta(days=5))
    driver.dashboard_cancel_at(sub, sub.current_period_start + timedelta(days=20))

    resumed = driver.gateway.resume(subscription_ref=ref, idempotency_key="r:1")
    driver.advance_to(sub.current_period_end + HOUR)
    renewed = driver.gateway.get_subscription(ref)
    renewal = driver.gateway.list_invoices(
        customer_ref=sub.customer_ref, limit=1, starting_after=None
    ).items[0]

    assert (resumed.cancel_at_period_end, resumed.scheduled_end) == (False, None)
    assert (renewed.status, renewed.current_period_start) == (Status.ACTIVE, sub.current_period_end)
    assert renewal.billing_reason is BillingReason.SUBSCRIPTION_CYCLE
    assert renewal.amount_paid.amount == price
    assert driver.customer_balance(sub.customer_ref) == 0


def test_resume_before_the_period_end_undoes_the_cancellation(driver: Driver) -> None:
    sub = driver.subscribe(new_account(), "starter")
    driver.gateway.cancel_at_period_end(
        subscription_ref=sub.subscription_ref, idempotency_key="c:1"
    )

    view = driver.gateway.resume(subscription_ref=sub.subscription_ref, idempotency_key="r:1")

    assert not view.cancel_at_period_end
    driver.advance_to(sub.current_period_end + HOUR)
    renewed = driver.gateway.get_subscription(sub.subscription_ref)
    assert renewed.status is Status.ACTIVE
    assert renewed.current_period_start == sub.current_period_end


def test_a_completed_payment_method_setup_becomes_the_default_for_the_next_charge(
    driver: Driver,
) -> None:
    sub = driver.subscribe(new_account(), "starter")
    setup = driver.gateway.start_payment_method_setup(
        customer_ref=sub.customer_ref,
        success_url="https://app.example/billing/card?setup={CHECKOUT_SESSION_ID}",
        cancel_url="https://app.example/billing",
        idempotency_key="setup:1",
    )
    assert setup.url or setup.client_secret
    customer = sub.customer_ref
    assert (
        driver.gateway.complete_payment_method_setup(
            setup.id, customer_ref=customer, idempotency_key="sc:0"
        )
        is None
    )

    driver.complete_setup(setup.id, card="mastercard")
    summary = driver.gateway.complete_payment_method_setup(
        setup.id, customer_ref=customer, idempotency_key="sc:1"
    )

    assert summary == PaymentMethodSummary("mastercard", "4444")
    assert driver.gateway.get_subscription(sub.subscription_ref).payment_method == summary
    driver.advance_to(sub.current_period_end + HOUR)
    assert driver.gateway.get_subscription(sub.subscription_ref).status is Status.ACTIVE


def test_a_card_saved_through_setup_pays_the_next_renewal(driver: Driver) -> None:
    """Issue 10, finding 4: the card a setup flow saves is the one the next invoice charges
    (on Stripe Checkout gives the subscription a default of its own, which must move too)."""
    sub = driver.subscribe(new_account(), "starter")
    setup = driver.gateway.start_payment_method_setup(
        customer_ref=sub.customer_ref,
        success_url="https://app.example/billing/card?setup={CHECKOUT_SESSION_ID}",
        cancel_url="https://app.example/billing",
        idempotency_key="setup:renewal",
    )
    driver.complete_setup(setup.id, card="amex")
    driver.gateway.complete_payment_method_setup(
        setup.id, customer_ref=sub.customer_ref, idempotency_key="sc:renewal"
    )

    driver.advance_to(sub.current_period_end + HOUR)
    renewal = next(
        invoice
        for invoice in driver.gateway.list_invoices(
            customer_ref=sub.customer_ref, limit=10, starting_after=None
        ).items
        if invoice.billing_reason is BillingReason.SUBSCRIPTION_CYCLE
    )

    assert renewal.status is InvoiceStatus.PAID
    assert driver.paid_with(renewal.id) == PaymentMethodSummary("amex", "8431")


def test_a_card_changed_in_the_portal_pays_the_next_renewal(driver: Driver) -> None:
    sub = driver.subscribe(new_account(), "starter")
    driver.portal_update_payment_method(sub, "mastercard")

    # What the core does on the customer's `customer.updated` (a new default).
    view = driver.gateway.use_customer_payment_method(
        subscription_ref=sub.subscription_ref, idempotency_key="follow:1"
    )
    again = driver.gateway.use_customer_payment_method(
        subscription_ref=sub.subscription_ref, idempotency_key="follow:2"
    )
    driver.advance_to(sub.current_period_end + HOUR)

    new_card = PaymentMethodSummary("mastercard", "4444")
    assert view.payment_method == again.payment_method == new_card
    renewal = next(
        invoice
        for invoice in driver.gateway.list_invoices(
            customer_ref=sub.customer_ref, limit=10, starting_after=None
        ).items
        if invoice.billing_reason is BillingReason.SUBSCRIPTION_CYCLE
    )
    assert renewal.status is InvoiceStatus.PAID
    assert driver.paid_with(renewal.id) == new_card


def test_another_customers_payment_method_setup_cannot_be_completed(driver: Driver) -> None:
    owner = driver.subscribe(new_account(), "starter")
    intruder = driver.subscribe(new_account(), "starter")
    setup = driver.gateway.start_payment_method_setup(
        customer_ref=owner.customer_ref,
        success_url="https://app.example/billing/card?setup={CHECKOUT_SESSION_ID}",
        cancel_url="https://app.example/billing",
        idempotency_key="setup:owner",
    )
    driver.complete_setup(setup.id, card="mastercard")

    with pytest.raises(CheckoutNotFound):
        driver.gateway.complete_payment_method_setup(
            setup.id, customer_ref=intruder.customer_ref, idempotency_key="sc:intruder"
        )
    assert driver.gateway.get_subscription(intruder.subscription_ref).payment_method == (
        intruder.payment_method
    )
    # The owner's card is the owner's business: unchanged where the gateway waits for
    # `complete_payment_method_setup` (Stripe), the new one where completing the gateway's
    # page already made it the subscription's (Paddle's payment-method-change transaction).
    assert driver.gateway.get_subscription(owner.subscription_ref).payment_method in (
        owner.payment_method,
        PaymentMethodSummary("mastercard", "4444"),
    )


def test_invoices_are_listed_newest_first_in_pages_and_each_can_be_fetched(
    driver: Driver,
) -> None:
    sub = driver.subscribe(new_account(), "starter")
    driver.advance_to(sub.current_period_start + timedelta(days=2))
    driver.gateway.upgrade(
        subscription_ref=sub.subscription_ref,
        target=driver.catalog.price("growth", "month"),
        proration_at=driver.now(),
        idempotency_key="plan-change:up",
    )
    driver.advance_to(sub.current_period_end + HOUR)

    first = driver.gateway.list_invoices(
        customer_ref=sub.customer_ref, limit=2, starting_after=None
    )
    rest = driver.gateway.list_invoices(
        customer_ref=sub.customer_ref, limit=2, starting_after=first.items[-1].id
    )

    assert first.has_more and not rest.has_more
    reasons = [i.billing_reason for i in (*first.items, *rest.items)]
    assert reasons == [
        BillingReason.SUBSCRIPTION_CYCLE,
        BillingReason.SUBSCRIPTION_UPDATE,
        BillingReason.SUBSCRIPTION_CREATE,
    ]
    created = [i.created for i in (*first.items, *rest.items)]
    assert created == sorted(created, reverse=True)
    for invoice in (*first.items, *rest.items):
        assert invoice.subscription_ref == sub.subscription_ref
        assert invoice.pdf_url and invoice.hosted_url
        assert driver.gateway.get_invoice(invoice.id) == invoice


def test_unknown_ids_raise_the_domain_not_found_errors(driver: Driver) -> None:
    with pytest.raises(SubscriptionNotFound):
        driver.gateway.get_subscription("sub_doesnotexist0000")
    with pytest.raises(InvoiceNotFound):
        driver.gateway.get_invoice("in_doesnotexist0000")
    with pytest.raises(CheckoutNotFound):
        driver.gateway.get_checkout("cs_test_doesnotexist0000")


def test_retrying_a_change_with_the_same_key_changes_nothing_twice(driver: Driver) -> None:
    sub = driver.subscribe(new_account(), "starter")
    driver.advance_to(sub.current_period_start + timedelta(days=4))
    at = driver.now()
    target = driver.catalog.price("growth", "month")

    first = driver.gateway.upgrade(
        subscription_ref=sub.subscription_ref, target=target, proration_at=at, idempotency_key="k:1"
    )
    again = driver.gateway.upgrade(
        subscription_ref=sub.subscription_ref, target=target, proration_at=at, idempotency_key="k:1"
    )

    assert (again.plan_id, again.interval) == (first.plan_id, first.interval)
    invoices = driver.gateway.list_invoices(
        customer_ref=sub.customer_ref, limit=10, starting_after=None
    )
    updates = [i for i in invoices.items if i.billing_reason is BillingReason.SUBSCRIPTION_UPDATE]
    assert len(updates) == 1  # charged once
    cancel = driver.gateway.cancel_at_period_end(
        subscription_ref=sub.subscription_ref, idempotency_key="k:2"
    )
    assert (
        driver.gateway.cancel_at_period_end(
            subscription_ref=sub.subscription_ref, idempotency_key="k:2"
        ).cancel_at_period_end
        == cancel.cancel_at_period_end
    )


def test_a_portal_session_is_opened_for_each_deep_link(driver: Driver) -> None:
    sub = driver.subscribe(new_account(), "starter")
    for n, flow in enumerate([None, *PortalFlow]):
        session = driver.gateway.open_portal(
            customer_ref=sub.customer_ref,
            return_url="https://app.example/billing",
            flow=flow,
            subscription_ref=sub.subscription_ref,
            idempotency_key=f"portal:{n}",
        )
        assert session.id and is_absolute_url(session.url)


# -- one paying subscription per account: expire, cancel now, refund ----------------------


def start_growth_checkout(driver: Driver, account: str, key: str) -> str:
    session = driver.gateway.start_checkout(
        customer_ref=driver.customer(account),
        account_id=account,
        price=driver.catalog.price("growth", "month"),
        success_url=OK_URL,
        cancel_url="https://app.example/billing",
        ui_mode=UiMode.HOSTED,
        idempotency_key=key,
    )
    return session.id


def test_an_expired_checkout_can_no_longer_be_paid(driver: Driver) -> None:
    account = new_account()
    checkout_id = start_growth_checkout(driver, account, f"checkout:{account}:1")

    status = driver.gateway.expire_checkout(checkout_id, idempotency_key=f"expire:{checkout_id}")

    assert status is CheckoutStatus.EXPIRED
    assert driver.gateway.get_checkout(checkout_id).status is CheckoutStatus.EXPIRED
    with pytest.raises(GatewayRejected):
        driver.pay_checkout(checkout_id)
    outcome = driver.gateway.get_checkout(checkout_id)
    assert (outcome.status, outcome.subscription) == (CheckoutStatus.EXPIRED, None)
    assert driver.gateway.list_subscriptions(driver.customer(account)) == []
    # Expiring again, with the same key or another, is no error and changes nothing.
    for key in (f"expire:{checkout_id}", f"expire:{checkout_id}:again"):
        assert driver.gateway.expire_checkout(checkout_id, idempotency_key=key) is (
            CheckoutStatus.EXPIRED
        )


def test_expiring_a_checkout_that_was_paid_leaves_it_and_its_subscription_alone(
    driver: Driver,
) -> None:
    account = new_account()
    checkout_id = start_growth_checkout(driver, account, f"checkout:{account}:1")
    driver.pay_checkout(checkout_id)

    status = driver.gateway.expire_checkout(checkout_id, idempotency_key=f"expire:{checkout_id}")

    assert status is CheckoutStatus.COMPLETE
    outcome = driver.gateway.get_checkout(checkout_id)
    assert outcome.status is CheckoutStatus.COMPLETE and outcome.subscription is not None
    live = driver.gateway.get_subscription(outcome.subscription.subscription_ref)
    assert live.status is Status.ACTIVE
    with pytest.raises(CheckoutNotFound):
        driver.gateway.expire_checkout("cs_test_doesnotexist0000", idempotency_key="expire:x")


def test_cancel_now_ends_the_subscription_at_once_and_it_never_renews(driver: Driver) -> None:
    sub = driver.subscribe(new_account(), "growth")
    driver.advance_to(sub.current_period_start + timedelta(days=3))
    at = driver.now()
    before = billed(driver, sub.customer_ref)

    view = driver.gateway.cancel_now(
        subscription_ref=sub.subscription_ref, idempotency_key="cancel-now:1"
    )

    assert view.status is Status.CANCELED
    assert view.ended_at == at
    assert driver.gateway.get_subscription(sub.subscription_ref).status is Status.CANCELED
    # Nothing is credited, prorated or invoiced for the unused time.
    after = billed(driver, sub.customer_ref)
    assert after == before
    # Ending it again, with the same key or another, changes nothing.
    for key in ("cancel-now:1", "cancel-now:2"):
        again = driver.gateway.cancel_now(
            subscription_ref=sub.subscription_ref, idempotency_key=key
        )
        assert (again.status, again.ended_at) == (Status.CANCELED, at)
    driver.advance_to(sub.current_period_end + HOUR)
    assert driver.gateway.get_subscription(sub.subscription_ref).status is Status.CANCELED
    renewed = billed(driver, sub.customer_ref)
    assert after == renewed  # no renewal invoice, no charge
    with pytest.raises(SubscriptionNotFound):
        driver.gateway.cancel_now(subscription_ref="sub_doesnotexist0000", idempotency_key="c:x")


def billed(driver: Driver, customer_ref: str) -> list[Invoice]:
    """The customer's invoices as facts to compare over time: a gateway whose PDF links
    expire (Paddle) signs a new one on every read, so only whether there is one counts."""
    items = driver.gateway.list_invoices(
        customer_ref=customer_ref, limit=10, starting_after=None
    ).items
    if not driver.gateway.invoice_links_expire:
        return list(items)
    signed = "(a signed link)"
    return [
        attrs.evolve(i, pdf_url=i.pdf_url and signed, hosted_url=i.hosted_url and signed)
        for i in items
    ]


def first_invoice(driver: Driver, customer_ref: str) -> Invoice:
    page = driver.gateway.list_invoices(customer_ref=customer_ref, limit=10, starting_after=None)
    [first] = [i for i in page.items if i.billing_reason is BillingReason.SUBSCRIPTION_CREATE]
    return first


def test_refunding_an_invoice_gives_its_payment_back_once(driver: Driver) -> None:
    sub = driver.subscribe(new_account(), "growth")
    invoice = first_invoice(driver, sub.customer_ref)
    assert invoice.status is InvoiceStatus.PAID

    refund = driver.gateway.refund_invoice(invoice_id=invoice.id, idempotency_key="refund:1")

    assert refund.id and refund.invoice_id == invoice.id
    assert refund.amount == invoice.amount_paid == driver.catalog.price("growth", "month").amount
    assert driver.refunded(invoice.id) == invoice.amount_paid.amount
    # The same key gives the same refund back; another key finds nothing left to refund.
    assert driver.gateway.refund_invoice(invoice_id=invoice.id, idempotency_key="refund:1") == (
        refund
    )
    with pytest.raises(GatewayRejected):
        driver.gateway.refund_invoice(invoice_id=invoice.id, idempotency_key="refund:2")
    assert driver.refunded(invoice.id) == invoice.amount_paid.amount
    # As at Stripe, the invoice itself stays paid: the refund is its own record.
    assert driver.gateway.get_invoice(invoice.id).status is InvoiceStatus.PAID


def test_an_invoice_with_nothing_paid_cannot_be_refunded(driver: Driver) -> None:
    sub = driver.subscribe(new_account(), "starter")
    driver.decline_next_payment()
    driver.advance_to(sub.current_period_end + HOUR)
    newest = driver.gateway.list_invoices(
        customer_ref=sub.customer_ref, limit=1, starting_after=None
    ).items[0]
    assert newest.billing_reason is BillingReason.SUBSCRIPTION_CYCLE
    assert newest.status is not InvoiceStatus.PAID

    with pytest.raises(GatewayRejected):
        driver.gateway.refund_invoice(invoice_id=newest.id, idempotency_key="refund:unpaid")
    assert driver.refunded(newest.id) == 0


# -- issue 10: what a real account does that the first double hid -------------------------


def test_a_subscriber_on_a_retired_price_reads_changes_cancels_and_sees_invoices(
    driver: Driver,
) -> None:
    sub = driver.subscribe(new_account(), "growth")
    driver.retire_price("growth", "month", 5900)

    view = driver.gateway.get_subscription(sub.subscription_ref)
    assert (view.plan_id, view.interval, view.status) == ("growth", Interval.MONTH, Status.ACTIVE)
    assert [s.plan_id for s in driver.gateway.list_subscriptions(sub.customer_ref)] == ["growth"]
    invoices = driver.gateway.list_invoices(
        customer_ref=sub.customer_ref, limit=10, starting_after=None
    ).items
    assert [i.amount_paid.amount for i in invoices] == [4900]
    if driver.gateway.scheduled_changes is ScheduledChanges.GATEWAY:
        down = driver.gateway.schedule_downgrade(
            subscription_ref=sub.subscription_ref,
            target=driver.catalog.price("starter", "month"),
            idempotency_key="retired:down",
        )
        assert down.plan_id == "growth"
        assert down.pending_change == PendingChange(
            "starter", Interval.MONTH, sub.current_period_end
        )
        withdrawn = driver.gateway.withdraw_scheduled_change(
            subscription_ref=sub.subscription_ref, idempotency_key="retired:withdraw"
        )
        assert withdrawn.pending_change is None
    canceling = driver.gateway.cancel_at_period_end(
        subscription_ref=sub.subscription_ref, idempotency_key="retired:cancel"
    )
    assert canceling.cancel_at_period_end and canceling.plan_id == "growth"
    resumed = driver.gateway.resume(subscription_ref=sub.subscription_ref, idempotency_key="r:1")
    assert not resumed.cancel_at_period_end

    driver.advance_to(sub.current_period_end + HOUR)
    renewed = driver.gateway.get_subscription(sub.subscription_ref)
    assert (renewed.plan_id, renewed.status) == ("growth", Status.ACTIVE)
    newest = driver.gateway.list_invoices(
        customer_ref=sub.customer_ref, limit=1, starting_after=None
    ).items[0]
    # A renewal stays on the price the subscriber bought until they change plan.
    assert newest.amount_paid.amount == 4900

    upgraded = driver.gateway.upgrade(
        subscription_ref=sub.subscription_ref,
        target=driver.catalog.price("business", "month"),
        proration_at=driver.now(),
        idempotency_key="retired:up",
    )
    assert (upgraded.plan_id, upgraded.interval) == ("business", Interval.MONTH)


def test_a_plan_repriced_while_the_gateway_runs_is_changed_to_at_its_new_price_at_once(
    driver: Driver,
) -> None:
    """`billing stripe setup` / `billing paddle setup` reprices Growth while the service runs:
    the same gateway, its prices read before, upgrades to Growth and moves a downgrade to it at
    once, and the renewal after the downgrade bills the new amount (the sandbox, which has no
    price objects, keeps its catalog's)."""
    low = driver.subscribe(new_account(), "starter")
    high = driver.subscribe(new_account(), "business")
    amount = 5900 if driver.retire_price("growth", "month", 5900) else 4900
    growth = driver.catalog.price("growth", "month")

    up = driver.gateway.upgrade(
        subscription_ref=low.subscription_ref,
        target=growth,
        proration_at=driver.now(),
        idempotency_key=f"repriced:up:{low.subscription_ref}",
    )
    charged = billed(driver, low.customer_ref)
    again = driver.gateway.upgrade(  # the same command, retried: nothing more is charged
        subscription_ref=low.subscription_ref,
        target=growth,
        proration_at=driver.now(),
        idempotency_key=f"repriced:up:{low.subscription_ref}",
    )
    assert (up.plan_id, up.interval, up.status) == ("growth", Interval.MONTH, Status.ACTIVE)
    assert again.plan_id == "growth"
    assert len(charged) == 2
    assert billed(driver, low.customer_ref) == charged

    if driver.gateway.scheduled_changes is ScheduledChanges.GATEWAY:
        down = driver.gateway.schedule_downgrade(
            subscription_ref=high.subscription_ref,
            target=growth,
            idempotency_key="repriced:down",
        )
        assert down.pending_change == PendingChange(
            "growth", Interval.MONTH, high.current_period_end
        )
    else:  # the core keeps the downgrade and has it applied shortly before the renewal
        driver.advance_to(high.current_period_end - timedelta(hours=2))
        applied = driver.gateway.apply_plan_for_renewal(
            subscription_ref=high.subscription_ref, target=growth, idempotency_key="repriced:apply"
        )
        assert applied.plan_id == "growth"
    driver.advance_to(high.current_period_end + HOUR)

    renewed = driver.gateway.get_subscription(high.subscription_ref)
    assert (renewed.plan_id, renewed.status) == ("growth", Status.ACTIVE)
    newest = driver.gateway.list_invoices(
        customer_ref=high.customer_ref, limit=1, starting_after=None
    ).items[0]
    assert newest.billing_reason is BillingReason.SUBSCRIPTION_CYCLE
    assert newest.amount_paid.amount == amount


def test_a_plan_repriced_while_the_gateway_runs_is_sold_at_its_new_price_at_once(
    driver: Driver,
) -> None:
    driver.subscribe(new_account(), "starter")  # the gateway has read its prices
    amount = 5900 if driver.retire_price("growth", "month", 5900) else 4900
    account = new_account()

    def start() -> str:
        return driver.gateway.start_checkout(
            customer_ref=driver.customer(account),
            account_id=account,
            price=driver.catalog.price("growth", "month"),
            success_url=OK_URL,
            cancel_url="https://app.example/billing",
            ui_mode=UiMode.HOSTED,
            idempotency_key=f"checkout:{account}:repriced",
        ).id

    session = start()
    assert start() == session  # the same command again: the same checkout, not a second one
    driver.pay_checkout(session)
    outcome = driver.gateway.get_checkout(session)

    assert outcome.subscription is not None
    assert (outcome.subscription.plan_id, outcome.subscription.status) == (
        "growth",
        Status.ACTIVE,
    )
    invoices = driver.gateway.list_invoices(
        customer_ref=outcome.subscription.customer_ref, limit=10, starting_after=None
    ).items
    assert [i.amount_paid.amount for i in invoices] == [amount]


def test_a_declined_upgrade_keeps_the_scheduled_downgrade(driver: Driver) -> None:
    requires_gateway_scheduling(driver)
    sub = driver.subscribe(new_account(), "growth")
    driver.gateway.schedule_downgrade(
        subscription_ref=sub.subscription_ref,
        target=driver.catalog.price("starter", "month"),
        idempotency_key="kept:down",
    )
    driver.advance_to(sub.current_period_start + timedelta(days=3))
    driver.decline_next_payment()

    with pytest.raises(PaymentDeclined):
        driver.gateway.upgrade(
            subscription_ref=sub.subscription_ref,
            target=driver.catalog.price("business", "month"),
            proration_at=driver.now(),
            idempotency_key="kept:up",
        )

    after = driver.gateway.get_subscription(sub.subscription_ref)
    assert after.plan_id == "growth"
    assert after.pending_change == PendingChange("starter", Interval.MONTH, sub.current_period_end)
    driver.advance_to(sub.current_period_end + HOUR)
    assert driver.gateway.get_subscription(sub.subscription_ref).plan_id == "starter"


def _upgrade_needing_the_bank(driver: Driver) -> tuple[GatewaySubscription, PaymentActionRequired]:
    sub = driver.subscribe(new_account(), "starter")
    driver.advance_to(sub.current_period_start + timedelta(days=3))
    driver.require_action_next_payment()
    with pytest.raises(PaymentActionRequired) as caught:
        driver.gateway.upgrade(
            subscription_ref=sub.subscription_ref,
            target=driver.catalog.price("business", "month"),
            proration_at=driver.now(),
            idempotency_key="sca:up",
        )
    return sub, caught.value


def test_an_upgrade_the_bank_must_confirm_names_a_page_that_finishes_it(driver: Driver) -> None:
    sub, error = _upgrade_needing_the_bank(driver)

    assert error.hosted_invoice_url is not None and is_absolute_url(error.hosted_invoice_url)
    assert driver.gateway.get_subscription(sub.subscription_ref).plan_id == "starter"
    driver.confirm_payment(error.hosted_invoice_url)

    after = driver.gateway.get_subscription(sub.subscription_ref)
    assert (after.plan_id, after.status) == ("business", Status.ACTIVE)


def test_an_upgrade_left_unconfirmed_expires_and_the_plan_stays(driver: Driver) -> None:
    sub, error = _upgrade_needing_the_bank(driver)
    assert error.hosted_invoice_url is not None

    driver.advance_to(driver.now() + timedelta(hours=24))

    after = driver.gateway.get_subscription(sub.subscription_ref)
    assert (after.plan_id, after.status) == ("starter", Status.ACTIVE)
    driver.advance_to(sub.current_period_end + HOUR)
    renewed = driver.gateway.get_subscription(sub.subscription_ref)
    assert (renewed.plan_id, renewed.status) == ("starter", Status.ACTIVE)
