"""One paying subscription per account: one payable checkout, and a second subscription undone."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest

from responseiq_billing.adapters.fake.clock import ControllableClock
from responseiq_billing.adapters.fake.gateway import FakeGateway
from responseiq_billing.application import commands, use_cases
from responseiq_billing.application.ports import CheckoutStatus, GatewayEvent, UiMode
from responseiq_billing.domain.errors import AlreadySubscribed, GatewayRejected, GatewayUnavailable
from responseiq_billing.domain.invoices import BillingReason, Invoice, InvoiceStatus
from responseiq_billing.domain.money import Money
from responseiq_billing.domain.plans import Catalog
from responseiq_billing.domain.subscription import Status
from tests.streams import store_sandbox_event
from tests.unit.conftest import APR_1, Billing

OK, NO = "https://app/ok/{CHECKOUT_SESSION_ID}", "https://app/no"
GROWTH = Money(4900, "USD")


def start(billing: Billing, account: str = "acct_ada", request_id: str | None = None) -> str:
    cmd = commands.StartCheckout(account, "growth", "month", OK, NO)
    if request_id is not None:
        cmd = commands.StartCheckout(account, "growth", "month", OK, NO, request_id=request_id)
    return billing.start_checkout(cmd).id


def first_invoice(billing: Billing, subscription_ref: str) -> Invoice:
    [first] = [
        i
        for i in billing.gateway_invoices("acct_ada")
        if i.subscription_ref == subscription_ref
        and i.billing_reason is BillingReason.SUBSCRIPTION_CREATE
    ]
    return first


def refunded(billing: Billing, subscription_ref: str) -> Money | None:
    refund = billing.gateway.invoice_refund(first_invoice(billing, subscription_ref).id)
    return refund.amount if refund is not None else None


def gateway_status(billing: Billing, subscription_ref: str) -> Status:
    return billing.gateway.get_subscription(subscription_ref).status


def two_paid_checkouts(billing: Billing) -> tuple[str, str, str, str]:
    """The race the gateway lets through: a checkout paid before the next one could expire it.

    A is paid, but nobody has told us yet (its webhook is late and the customer has not come
    back), so starting B is allowed; expiring A finds it complete; B is paid too.
    """
    first = start(billing)
    billing.gateway.complete_checkout(first)
    second = start(billing)
    billing.gateway.complete_checkout(second)
    a = billing.gateway.get_checkout(first).subscription
    b = billing.gateway.get_checkout(second).subscription
    assert a is not None and b is not None
    return first, second, a.subscription_ref, b.subscription_ref


# -- one checkout that can be paid -------------------------------------------------------------


def test_a_new_checkout_expires_the_earlier_one_so_only_the_newest_can_be_paid(
    billing: Billing,
) -> None:
    first = start(billing)
    second = start(billing)

    assert billing.gateway.get_checkout(first).status is CheckoutStatus.EXPIRED
    with pytest.raises(GatewayRejected, match="expired"):
        billing.gateway.complete_checkout(first)
    billing.gateway.complete_checkout(second)
    sub = billing.complete_checkout(commands.CompleteCheckout("acct_ada", second))

    assert sub is not None and sub.status is Status.ACTIVE
    [only] = billing.gateway.customer_subscriptions(billing.customer("acct_ada"))
    assert only.subscription_ref == sub.subscription_ref
    assert ("checkout.expire", "expired") in billing.actions("acct_ada")
    with billing.uow() as uow:
        earlier, later = uow.checkouts.get(first), uow.checkouts.get(second)
        assert uow.checkouts.open_for("acct_ada") is None
    assert earlier is not None and earlier.status is CheckoutStatus.EXPIRED
    assert later is not None and later.status is CheckoutStatus.COMPLETE


def test_the_same_request_again_gets_the_same_session_and_expires_nothing(
    billing: Billing,
) -> None:
    first = start(billing, request_id="double-click")
    again = start(billing, request_id="double-click")

    assert again == first
    assert billing.gateway.get_checkout(first).status is CheckoutStatus.OPEN
    with billing.uow() as uow:
        open_one = uow.checkouts.open_for("acct_ada")
    assert open_one is not None and open_one.id == first
    assert [a for a, _ in billing.actions("acct_ada")].count("checkout.start") == 1
    billing.gateway.complete_checkout(first)
    assert billing.complete_checkout(commands.CompleteCheckout("acct_ada", first)) is not None


def test_checkouts_of_another_account_are_left_alone(billing: Billing) -> None:
    ada = start(billing, "acct_ada")
    start(billing, "acct_bob")
    assert billing.gateway.get_checkout(ada).status is CheckoutStatus.OPEN


def test_an_account_with_a_live_subscription_is_refused_and_opens_no_checkout(
    billing: Billing,
) -> None:
    billing.subscribe("acct_ada")
    with billing.uow() as uow:
        assert uow.checkouts.open_for("acct_ada") is None

    with pytest.raises(AlreadySubscribed):
        start(billing)

    with billing.uow() as uow:
        assert uow.checkouts.open_for("acct_ada") is None


def test_a_failed_expiry_is_audited_and_the_new_checkout_is_still_given(
    billing: Billing, catalog: Catalog, clock: ControllableClock
) -> None:
    class ExpiryDown(FakeGateway):
        def expire_checkout(self, checkout_id: str, *, idempotency_key: str) -> CheckoutStatus:
            raise GatewayUnavailable()

    billing.gateway = ExpiryDown(catalog, clock, public_url="https://sandbox.test")
    first = start(billing)
    second = start(billing)

    assert billing.gateway.get_checkout(second).status is CheckoutStatus.OPEN
    assert ("checkout.expire", "gateway.unavailable") in billing.actions("acct_ada")
    # Our record says the first one is closed; its page stays payable at the gateway until it
    # expires by itself, and a payment there is undone by the rule below.
    with billing.uow() as uow:
        closed = uow.checkouts.get(first)
    assert closed is not None and closed.status is CheckoutStatus.EXPIRED
    assert billing.gateway.get_checkout(first).status is CheckoutStatus.OPEN


# -- a second subscription that starts anyway -----------------------------------------------


def test_late_events_of_a_second_paid_checkout_cancel_it_now_and_refund_its_first_invoice(
    billing: Billing,
) -> None:
    _, _, a, b = two_paid_checkouts(billing)
    assert ("checkout.expire", "complete") in billing.actions("acct_ada")

    outcomes = [billing.apply_event(event) for event in list(billing.gateway.events)]

    assert use_cases.ApplyOutcome.DUPLICATE in outcomes  # applied, never a stale-version failure
    # Kept: A, the first recorded (its events came first). B ended at once and paid back.
    assert (gateway_status(billing, a), gateway_status(billing, b)) == (
        Status.ACTIVE,
        Status.CANCELED,
    )
    assert refunded(billing, b) == GROWTH
    assert refunded(billing, a) is None
    stored = billing.stored("acct_ada")
    assert (stored.subscription_ref, stored.status) == (a, Status.ACTIVE)
    with billing.uow() as uow:
        ended = uow.subscriptions.by_gateway_ref(b)
    assert ended is not None and ended.status is Status.CANCELED
    [entry] = [
        e for e in billing.audit("acct_ada") if e.action == "subscription.duplicate_canceled"
    ]
    assert entry.inputs == {
        "subscription": b,
        "kept": a,
        "invoice": first_invoice(billing, b).id,
        "refund": entry.inputs["refund"],
        "amount": str(GROWTH),
    }
    assert billing.entitlements("acct_ada").plan_id == "growth"


def test_applying_the_events_again_refunds_nothing_more_and_only_the_kept_one_renews(
    billing: Billing,
) -> None:
    _, _, a, b = two_paid_checkouts(billing)
    events = list(billing.gateway.events)
    for event in events:
        billing.apply_event(event)
    refund = billing.gateway.invoice_refund(first_invoice(billing, b).id)

    again = [billing.apply_event(event) for event in events]
    billing.gateway.advance_to(APR_1 + timedelta(hours=1))

    assert use_cases.ApplyOutcome.DUPLICATE not in again  # B is recorded now: its events just sync
    assert billing.gateway.invoice_refund(first_invoice(billing, b).id) == refund
    assert [a for a, _ in billing.actions("acct_ada")].count("subscription.duplicate_canceled") == 1
    renewals = [
        i.subscription_ref
        for i in billing.gateway_invoices("acct_ada")
        if i.billing_reason is BillingReason.SUBSCRIPTION_CYCLE
    ]
    assert renewals == [a]
    assert gateway_status(billing, b) is Status.CANCELED


def test_a_second_subscription_seen_before_it_is_paid_is_decided_when_it_is(
    billing: Billing,
) -> None:
    _, _, a, b = two_paid_checkouts(billing)
    events = list(billing.gateway.events)
    created_b = next(
        n
        for n, e in enumerate(events)
        if e.gateway_type == "customer.subscription.created" and e.subscription_ref == b
    )
    for event in events[:created_b]:
        billing.apply_event(event)

    # Stripe creates a checkout's subscription `incomplete` until its first invoice is paid.
    seen = events[created_b].subscription
    assert seen is not None and seen.status is Status.INCOMPLETE
    outcome = billing.apply_event(events[created_b])

    assert outcome is use_cases.ApplyOutcome.DUPLICATE
    with billing.uow() as uow:
        assert uow.subscriptions.by_gateway_ref(b) is None  # nothing recorded yet
    assert gateway_status(billing, b) is Status.ACTIVE  # and nothing done at the gateway yet
    for event in events[created_b + 1 :]:
        billing.apply_event(event)
    assert gateway_status(billing, b) is Status.CANCELED
    assert refunded(billing, b) == GROWTH
    assert billing.stored("acct_ada").subscription_ref == a


def test_the_return_from_checkout_keeps_the_subscription_recorded_first(
    billing: Billing,
) -> None:
    first, second, a, b = two_paid_checkouts(billing)

    shown_b = billing.complete_checkout(commands.CompleteCheckout("acct_ada", second))
    shown_a = billing.complete_checkout(commands.CompleteCheckout("acct_ada", first))

    # B came back first, so B is the one recorded first and kept; A is undone.
    assert shown_b is not None and shown_b.subscription_ref == b
    assert shown_a is not None and (shown_a.subscription_ref, shown_a.status) == (
        b,
        Status.ACTIVE,
    )
    assert (gateway_status(billing, a), gateway_status(billing, b)) == (
        Status.CANCELED,
        Status.ACTIVE,
    )
    assert refunded(billing, a) == GROWTH
    assert refunded(billing, b) is None
    assert ("checkout.complete", "duplicate") in billing.actions("acct_ada")
    # Coming back again changes nothing and refunds nothing more.
    billing.complete_checkout(commands.CompleteCheckout("acct_ada", first))
    assert [a for a, _ in billing.actions("acct_ada")].count("subscription.duplicate_canceled") == 1


def test_reconcile_settles_a_second_subscription_it_finds(billing: Billing) -> None:
    first, _, a, b = two_paid_checkouts(billing)
    billing.complete_checkout(commands.CompleteCheckout("acct_ada", first))
    reconcile = billing.reconcile

    report = reconcile("acct_ada")

    assert any(b in line and "canceled now and refunded" in line for line in report.changes)
    assert (gateway_status(billing, a), gateway_status(billing, b)) == (
        Status.ACTIVE,
        Status.CANCELED,
    )
    assert refunded(billing, b) == GROWTH
    assert billing.stored("acct_ada").subscription_ref == a


def test_a_held_subscription_that_has_ended_at_the_gateway_does_not_make_a_new_one_second(
    billing: Billing,
) -> None:
    old = billing.subscribe("acct_ada")
    # Ended in the gateway's dashboard; we have not heard of it yet (no webhooks here).
    billing.gateway.cancel_now(subscription_ref=old.subscription_ref, idempotency_key="dashboard")
    # A checkout started elsewhere (StartCheckout itself refuses while we hold a live one).
    session = billing.gateway.start_checkout(
        customer_ref=old.customer_ref,
        account_id="acct_ada",
        price=billing.catalog.price("starter", "month"),
        success_url=OK,
        cancel_url=NO,
        ui_mode=UiMode.HOSTED,
        idempotency_key="elsewhere",
    )
    billing.gateway.complete_checkout(session.id)

    sub = billing.complete_checkout(commands.CompleteCheckout("acct_ada", session.id))

    assert sub is not None and (sub.plan_id, sub.status) == ("starter", Status.ACTIVE)
    assert gateway_status(billing, sub.subscription_ref) is Status.ACTIVE
    assert refunded(billing, sub.subscription_ref) is None
    with billing.uow() as uow:
        ended = uow.subscriptions.by_gateway_ref(old.subscription_ref)
    assert ended is not None and ended.status is Status.CANCELED


@pytest.mark.parametrize("seed", range(6))
def test_through_the_inbox_in_any_order_every_event_applies_and_one_subscription_is_kept(
    billing: Billing, seed: int
) -> None:
    emitted: list[GatewayEvent] = []
    billing.gateway.subscribe(emitted.append)
    two_paid_checkouts(billing)
    receive = billing.receive_event
    worker = billing.inbox_worker("w1")
    failed = 0
    delivered: set[str] = set()
    rng = random.Random(seed)
    while len(delivered) < len(emitted):  # settling emits events too (deleted, refunded)
        batch = [e for e in emitted if e.id not in delivered]
        rng.shuffle(batch)
        for event in batch:
            delivered.add(event.id)
            store_sandbox_event(receive, event)
        while (report := worker.run_once(limit=5)).claimed:
            failed += report.failed

    assert failed == 0
    with billing.uow() as uow:
        stats = uow.inbox.stats(billing.clock.now())
    assert (stats.pending, stats.parked) == (0, 0)
    subs = billing.gateway.customer_subscriptions(billing.customer("acct_ada"))
    live = [s for s in subs if s.status.is_live]
    [ended] = [s for s in subs if not s.status.is_live]
    assert len(live) == 1
    assert billing.stored("acct_ada").subscription_ref == live[0].subscription_ref
    assert refunded(billing, ended.subscription_ref) == GROWTH
    assert refunded(billing, live[0].subscription_ref) is None
    paid_kept = [
        i
        for i in billing.gateway_invoices("acct_ada")
        if i.status is InvoiceStatus.PAID and billing.gateway.invoice_refund(i.id) is None
    ]
    assert [i.subscription_ref for i in paid_kept] == [live[0].subscription_ref]


def test_a_second_subscription_whose_end_is_recorded_meanwhile_is_still_noted_once(
    billing: Billing,
) -> None:
    # Two paths meet B at once: one settles it, and before it writes, another applies the
    # deletion event that settling emitted. The settling path retries and still says so, once.
    first, second, _, b = two_paid_checkouts(billing)
    billing.complete_checkout(commands.CompleteCheckout("acct_ada", first))
    one = use_cases.OneSubscription(uow=billing.uow, gateway=billing.gateway)
    seen = billing.gateway.get_checkout(second).subscription
    assert seen is not None

    settled = one.admit("acct_ada", seen)
    [deleted] = [
        e
        for e in billing.gateway.events
        if e.gateway_type == "customer.subscription.deleted" and e.subscription_ref == b
    ]
    assert billing.apply_event(deleted) is use_cases.ApplyOutcome.APPLIED  # B recorded, ended
    # As every path does, the retry first settles its view against what is held now.
    retried = one.admit(
        "acct_ada", use_cases.settle(billing.uow, billing.gateway, seen).view, before=settled
    )
    for admission in (retried, retried):  # the retry, and a second path with the same news
        with billing.uow() as uow:
            one.record(uow, "acct_ada", admission, billing.clock.now())
            uow.commit()

    assert settled.duplicate is not None and retried.duplicate == settled.duplicate
    assert [a for a, _ in billing.actions("acct_ada")].count("subscription.duplicate_canceled") == 1
    assert gateway_status(billing, b) is Status.CANCELED
    assert refunded(billing, b) == GROWTH
