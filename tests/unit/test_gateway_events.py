"""ApplyGatewayEvent: how changes made in the portal (or anywhere) reach our state."""

from __future__ import annotations

from datetime import timedelta

import attrs

from responseiq_billing.adapters.fake.repositories import InMemoryStore
from responseiq_billing.application import commands
from responseiq_billing.application.ports import GatewayEvent, GatewayEventKind
from responseiq_billing.application.use_cases import ApplyOutcome
from responseiq_billing.domain.invoices import InvoiceStatus
from responseiq_billing.domain.plans import Interval
from responseiq_billing.domain.subscription import (
    PAST_DUE_GRACE,
    PaymentMethodSummary,
    PendingChange,
    Status,
)
from tests.unit.conftest import APR_1, MAR_16, Billing


def subscription_events(billing: Billing) -> list[GatewayEvent]:
    return [e for e in billing.gateway.events if e.kind is GatewayEventKind.SUBSCRIPTION_CHANGED]


def snapshot(billing: Billing, account: str) -> tuple[object, ...]:
    sub = billing.stored(account)
    return (
        sub.plan_id,
        sub.interval,
        sub.status,
        sub.current_period_start,
        sub.current_period_end,
        sub.cancel_at_period_end,
        sub.pending_change,
        sub.payment_method,
        sub.synced_at,
    )


def recorded(billing: Billing, account: str) -> list[str]:
    return [e.action for e in billing.audit(account) if e.action.startswith("event.")]


def test_an_upgrade_made_in_the_portal_reaches_our_state(billing: Billing) -> None:
    billing.deliver_webhooks()
    billing.subscribe("acct_ada")
    billing.gateway.advance_to(MAR_16)

    billing.gateway.portal_change_plan(billing.customer("acct_ada"), "business", Interval.MONTH)

    assert billing.stored("acct_ada").plan_id == "business"
    assert billing.entitlements("acct_ada").plan_id == "business"
    assert "event.PlanChanged" in recorded(billing, "acct_ada")


def test_a_downgrade_made_in_the_portal_is_scheduled_like_ours(billing: Billing) -> None:
    billing.deliver_webhooks()
    billing.subscribe("acct_ada", "business")
    billing.gateway.portal_change_plan(billing.customer("acct_ada"), "growth", Interval.MONTH)
    stored = billing.stored("acct_ada")
    assert (stored.plan_id, stored.pending_change) == (
        "business",
        PendingChange("growth", Interval.MONTH, APR_1),
    )


def test_cancel_resume_and_a_new_card_in_the_portal_reach_our_state(billing: Billing) -> None:
    billing.deliver_webhooks()
    billing.subscribe("acct_ada")
    customer = billing.customer("acct_ada")
    billing.gateway.portal_cancel(customer)
    assert billing.stored("acct_ada").cancel_at_period_end
    billing.gateway.portal_resume(customer)
    assert not billing.stored("acct_ada").cancel_at_period_end
    billing.gateway.portal_update_payment_method(customer, "amex")
    assert billing.stored("acct_ada").payment_method == PaymentMethodSummary("amex", "8431")


def test_a_completed_setup_event_makes_the_new_card_the_default(billing: Billing) -> None:
    billing.deliver_webhooks()
    billing.subscribe("acct_ada")
    session = billing.start_payment_method_update(
        commands.StartPaymentMethodUpdate("acct_ada", "https://app/ok", "https://app/no")
    )
    billing.gateway.complete_setup(session.id, card="mastercard")
    assert billing.stored("acct_ada").payment_method == PaymentMethodSummary("mastercard", "4444")
    assert billing.gateway.customer_payment_method(billing.customer("acct_ada")) == (
        PaymentMethodSummary("mastercard", "4444")
    )


def test_the_webhook_may_beat_the_return_from_checkout(billing: Billing) -> None:
    billing.deliver_webhooks()
    session = billing.start_checkout(
        commands.StartCheckout("acct_ada", "growth", "month", "https://app/ok", "https://app/no")
    )
    billing.gateway.complete_checkout(session.id)
    assert billing.stored("acct_ada").status is Status.ACTIVE  # recorded by the webhook alone

    sub = billing.complete_checkout(commands.CompleteCheckout("acct_ada", session.id))

    assert sub is not None and sub.status is Status.ACTIVE
    assert recorded(billing, "acct_ada").count("event.SubscriptionStarted") == 1


def test_applying_every_event_twice_leaves_the_same_state_and_events_as_once(
    billing: Billing,
) -> None:
    billing.subscribe("acct_ada")
    billing.gateway.advance_to(MAR_16)
    billing.change_plan(commands.ChangePlan("acct_ada", "business", "month"))
    billing.change_plan(commands.ChangePlan("acct_ada", "growth", "month"))
    billing.gateway.advance_to(APR_1 + timedelta(days=1))
    events = list(billing.gateway.events)

    once = attrs.evolve(billing, store=InMemoryStore(), applied=[])
    twice = attrs.evolve(billing, store=InMemoryStore(), applied=[])
    for event in events:
        once.apply_event(event)
    for event in events:
        twice.apply_event(event)
        twice.apply_event(event)

    assert snapshot(once, "acct_ada") == snapshot(twice, "acct_ada")
    assert recorded(once, "acct_ada") == recorded(twice, "acct_ada")
    assert billing.gateway_view("acct_ada").plan_id == once.stored("acct_ada").plan_id == "growth"
    with once.uow() as a, twice.uow() as b:
        assert a.invoices.list_for_account("acct_ada", limit=10, starting_after=None) == (
            b.invoices.list_for_account("acct_ada", limit=10, starting_after=None)
        )


def test_an_event_older_than_the_state_held_is_skipped(billing: Billing) -> None:
    billing.subscribe("acct_ada")
    billing.gateway.advance_to(MAR_16)
    billing.change_plan(commands.ChangePlan("acct_ada", "business", "month"))
    before = snapshot(billing, "acct_ada")
    oldest = subscription_events(billing)[0]  # the subscription as created, on March 1

    assert billing.apply_event(oldest) is ApplyOutcome.STALE

    assert snapshot(billing, "acct_ada") == before
    assert billing.audit("acct_ada")[-1].outcome == "stale"


def test_an_event_of_the_same_second_that_disagrees_is_resolved_by_re_reading(
    billing: Billing,
) -> None:
    billing.subscribe("acct_ada")
    created = subscription_events(billing)[0]  # `incomplete`, same second as our `active` state
    assert created.subscription is not None and created.subscription.status is Status.INCOMPLETE
    reads = len(billing.gateway.calls)

    billing.apply_event(created)

    assert billing.stored("acct_ada").status is Status.ACTIVE
    assert [call.name for call in billing.gateway.calls[reads:]] == ["get_subscription"]


def test_a_failed_renewal_arrives_as_past_due_with_an_open_invoice_and_a_grace_period(
    billing: Billing,
) -> None:
    billing.deliver_webhooks()
    billing.subscribe("acct_ada")
    billing.gateway.decline_next_payment()

    billing.gateway.advance_to(APR_1)

    assert billing.stored("acct_ada").status is Status.PAST_DUE
    access = billing.entitlements("acct_ada")
    assert (access.plan_id, access.reason, access.access_until) == (
        "growth",
        "grace_period",
        APR_1 + PAST_DUE_GRACE,
    )
    with billing.uow() as uow:
        latest = uow.invoices.list_for_account("acct_ada", limit=1, starting_after=None).items[0]
    assert latest.status is InvoiceStatus.OPEN
    assert "invoice.payment_failed" in [e.gateway_type for e in billing.gateway.events]


def test_events_about_customers_we_never_created_are_acknowledged_and_ignored(
    billing: Billing,
) -> None:
    billing.subscribe("acct_ada")
    stranger = attrs.evolve(
        subscription_events(billing)[-1],
        customer_ref="cus_stranger",
        account_id=None,
        subscription_ref="sub_stranger",
        subscription=None,
    )
    assert billing.apply_event(stranger) is ApplyOutcome.UNKNOWN_ACCOUNT
    ignored = [e for e in billing.gateway.events if e.kind is GatewayEventKind.IGNORED]
    assert ignored and billing.apply_event(ignored[0]) is ApplyOutcome.IGNORED


def test_a_late_draft_event_does_not_overwrite_a_paid_invoice(billing: Billing) -> None:
    billing.subscribe("acct_ada")
    created, finalized, paid = (
        e for e in billing.gateway.events if e.kind is GatewayEventKind.INVOICE_CHANGED
    )
    # webhooks arrive in no guaranteed order: the paid invoice first, its draft last
    for event in (paid, finalized, created):
        billing.apply_event(event)

    with billing.uow() as uow:
        cached = uow.invoices.get(paid.invoice.id if paid.invoice else "")
    assert cached is not None and cached[1].status is InvoiceStatus.PAID
    assert billing.invoice_pdf(commands.GetInvoicePdf("acct_ada", cached[1].id)).pdf_url is not None
