"""Upgrades now with a prorated charge, downgrades at period end, through the use cases."""

from __future__ import annotations

from datetime import timedelta

import pytest

from responseiq_billing.application import commands
from responseiq_billing.domain.errors import (
    GatewayUnavailable,
    NoPendingChange,
    PaymentActionRequired,
    PaymentDeclined,
    QuoteExpired,
    QuoteMismatch,
    QuoteNotFound,
    SamePlan,
)
from responseiq_billing.domain.invoices import BillingReason, InvoiceStatus
from responseiq_billing.domain.money import Money
from responseiq_billing.domain.plans import Interval
from responseiq_billing.domain.rules import ChangeTiming
from responseiq_billing.domain.subscription import PendingChange
from tests.unit.conftest import APR_1, MAR_16, MAY_1, Billing


def test_an_upgrade_mid_cycle_charges_what_the_preview_quoted_and_switches_now(
    billing: Billing,
) -> None:
    billing.subscribe("acct_ada")
    billing.gateway.advance_to(MAR_16)
    quote = billing.preview(commands.PreviewPlanChange("acct_ada", "business", "month"))
    assert quote.timing is ChangeTiming.IMMEDIATE
    assert quote.amount_due_now == Money(2581, "USD")  # 99.00*16/31 - 49.00*16/31, per line

    sub = billing.change_plan(
        commands.ChangePlan("acct_ada", "business", "month", quote_id=quote.id)
    )

    assert (sub.plan_id, billing.stored("acct_ada").plan_id) == ("business", "business")
    assert billing.entitlements("acct_ada").plan_id == "business"
    latest = billing.gateway_invoices("acct_ada")[0]
    assert latest.billing_reason is BillingReason.SUBSCRIPTION_UPDATE
    assert latest.status is InvoiceStatus.PAID
    assert latest.amount_paid == quote.amount_due_now
    with billing.uow() as uow:
        redeemed = uow.quotes.get(quote.id)
    assert redeemed is not None and redeemed.redeemed_at == MAR_16


def test_a_redeemed_quote_pins_the_proration_instant_so_a_later_charge_still_equals_it(
    billing: Billing,
) -> None:
    billing.subscribe("acct_ada")
    billing.gateway.advance_to(MAR_16)
    quote = billing.preview(commands.PreviewPlanChange("acct_ada", "business", "month"))
    billing.gateway.advance(timedelta(minutes=20))
    later = billing.preview(commands.PreviewPlanChange("acct_ada", "business", "month"))
    assert later.amount_due_now < quote.amount_due_now  # less of the period is left

    billing.change_plan(commands.ChangePlan("acct_ada", "business", "month", quote_id=quote.id))

    assert billing.gateway_invoices("acct_ada")[0].amount_paid == quote.amount_due_now


def test_an_upgrade_without_a_quote_charges_the_preview_of_the_same_instant(
    billing: Billing,
) -> None:
    billing.subscribe("acct_ada", "starter")
    billing.gateway.advance_to(MAR_16)
    quote = billing.preview(commands.PreviewPlanChange("acct_ada", "growth", "month"))
    billing.change_plan(commands.ChangePlan("acct_ada", "growth", "month"))
    assert billing.gateway_invoices("acct_ada")[0].amount_paid == quote.amount_due_now


def test_a_quote_cannot_be_redeemed_twice_after_expiry_or_by_another_account(
    billing: Billing,
) -> None:
    billing.subscribe("acct_ada")
    billing.subscribe("acct_bob")
    quote = billing.preview(commands.PreviewPlanChange("acct_ada", "business", "month"))
    with pytest.raises(QuoteNotFound):
        billing.change_plan(commands.ChangePlan("acct_bob", "business", "month", quote_id=quote.id))
    with pytest.raises(QuoteMismatch):
        billing.change_plan(commands.ChangePlan("acct_ada", "business", "year", quote_id=quote.id))
    billing.gateway.advance(timedelta(minutes=30))
    with pytest.raises(QuoteExpired):
        billing.change_plan(commands.ChangePlan("acct_ada", "business", "month", quote_id=quote.id))
    assert billing.stored("acct_ada").plan_id == "growth"


def test_a_declined_upgrade_leaves_the_plan_unchanged_and_is_audited(billing: Billing) -> None:
    billing.subscribe("acct_ada")
    billing.gateway.advance_to(MAR_16)
    invoices_before = billing.gateway_invoices("acct_ada")
    billing.gateway.decline_next_payment()

    with pytest.raises(PaymentDeclined):
        billing.change_plan(commands.ChangePlan("acct_ada", "business", "month"))

    assert billing.stored("acct_ada").plan_id == "growth"
    assert billing.gateway_view("acct_ada").plan_id == "growth"
    assert billing.entitlements("acct_ada").plan_id == "growth"
    assert billing.gateway_invoices("acct_ada") == invoices_before
    assert billing.actions("acct_ada")[-1] == ("plan.change", "payment.declined")


def test_an_upgrade_needing_bank_authentication_changes_nothing_yet(billing: Billing) -> None:
    billing.subscribe("acct_ada")
    billing.gateway.require_action_next_payment()
    with pytest.raises(PaymentActionRequired):
        billing.change_plan(commands.ChangePlan("acct_ada", "business", "month"))
    assert billing.stored("acct_ada").plan_id == "growth"
    assert billing.actions("acct_ada")[-1] == ("plan.change", "payment.action_required")


def test_moving_to_a_yearly_interval_starts_a_new_yearly_period_now(billing: Billing) -> None:
    billing.subscribe("acct_ada")
    billing.gateway.advance_to(MAR_16)
    quote = billing.preview(commands.PreviewPlanChange("acct_ada", "growth", "year"))
    assert quote.amount_due_now == Money(49000 - 2529, "USD")
    sub = billing.change_plan(commands.ChangePlan("acct_ada", "growth", "year", quote_id=quote.id))
    assert (sub.interval, sub.current_period_start) == (Interval.YEAR, MAR_16)
    assert sub.current_period_end == MAR_16.replace(year=2027)
    assert billing.gateway_invoices("acct_ada")[0].amount_paid == quote.amount_due_now


def test_a_downgrade_is_scheduled_and_keeps_current_features_until_the_period_end(
    billing: Billing,
) -> None:
    billing.deliver_webhooks()
    billing.subscribe("acct_ada", "business")
    billing.gateway.advance_to(MAR_16)
    quote = billing.preview(commands.PreviewPlanChange("acct_ada", "starter", "month"))
    assert (quote.timing, quote.amount_due_now, quote.effective_at) == (
        ChangeTiming.END_OF_PERIOD,
        Money(0, "USD"),
        APR_1,
    )
    invoices_before = len(billing.gateway_invoices("acct_ada"))

    sub = billing.change_plan(commands.ChangePlan("acct_ada", "starter", "month"))

    assert sub.plan_id == "business"
    assert sub.pending_change == PendingChange("starter", Interval.MONTH, APR_1)
    assert len(billing.gateway_invoices("acct_ada")) == invoices_before  # nothing charged now
    assert billing.entitlements("acct_ada").plan_id == "business"

    billing.gateway.advance_to(APR_1)

    after = billing.stored("acct_ada")
    assert (after.plan_id, after.pending_change, after.current_period_end) == (
        "starter",
        None,
        MAY_1,
    )
    assert billing.entitlements("acct_ada").plan_id == "starter"
    renewal = billing.gateway_invoices("acct_ada")[0]
    assert renewal.billing_reason is BillingReason.SUBSCRIPTION_CYCLE
    assert renewal.amount_paid == Money(1900, "USD")


def test_a_downgrade_takes_effect_for_access_at_its_time_even_before_the_gateway_says_so(
    billing: Billing,
) -> None:
    billing.subscribe("acct_ada", "business")
    billing.change_plan(commands.ChangePlan("acct_ada", "starter", "month"))
    billing.clock.set(APR_1)  # no webhook delivery: the local state still shows the schedule
    assert billing.stored("acct_ada").plan_id == "business"
    assert billing.entitlements("acct_ada").plan_id == "starter"


def test_a_new_downgrade_replaces_the_scheduled_one(billing: Billing) -> None:
    billing.subscribe("acct_ada", "business")
    billing.change_plan(commands.ChangePlan("acct_ada", "starter", "month"))
    sub = billing.change_plan(commands.ChangePlan("acct_ada", "growth", "month"))
    assert sub.pending_change == PendingChange("growth", Interval.MONTH, APR_1)
    actions = [a for a, _ in billing.actions("acct_ada")]
    assert actions[-2:] == ["event.ScheduledChangeWithdrawn", "event.PlanChangeScheduled"]


def test_withdrawing_a_scheduled_downgrade_keeps_the_plan_at_renewal(billing: Billing) -> None:
    billing.deliver_webhooks()
    billing.subscribe("acct_ada", "business")
    billing.change_plan(commands.ChangePlan("acct_ada", "starter", "month"))

    sub = billing.cancel_pending_change(commands.CancelPendingChange("acct_ada"))

    assert sub.pending_change is None
    assert ("event.ScheduledChangeWithdrawn", "recorded") in billing.actions("acct_ada")
    billing.gateway.advance_to(APR_1)
    assert billing.stored("acct_ada").plan_id == "business"
    assert billing.gateway_invoices("acct_ada")[0].amount_paid == Money(9900, "USD")


def test_withdrawing_when_nothing_is_scheduled_is_refused(billing: Billing) -> None:
    billing.subscribe("acct_ada")
    with pytest.raises(NoPendingChange):
        billing.cancel_pending_change(commands.CancelPendingChange("acct_ada"))


def test_an_upgrade_drops_a_scheduled_downgrade(billing: Billing) -> None:
    billing.subscribe("acct_ada", "growth")
    billing.change_plan(commands.ChangePlan("acct_ada", "starter", "month"))
    sub = billing.change_plan(commands.ChangePlan("acct_ada", "business", "month"))
    assert (sub.plan_id, sub.pending_change) == ("business", None)


def test_changing_to_the_same_plan_is_refused_without_calling_the_gateway(
    billing: Billing,
) -> None:
    billing.subscribe("acct_ada")
    calls = len(billing.gateway.calls)
    with pytest.raises(SamePlan):
        billing.change_plan(commands.ChangePlan("acct_ada", "growth", "month"))
    assert len(billing.gateway.calls) == calls
    assert billing.actions("acct_ada")[-1] == ("plan.change", "plan_change.same_plan")


def test_an_unavailable_gateway_changes_nothing(billing: Billing) -> None:
    billing.subscribe("acct_ada")
    before = billing.stored("acct_ada")
    invoices = billing.gateway_invoices("acct_ada")
    billing.gateway.fail_next_call()

    with pytest.raises(GatewayUnavailable):
        billing.change_plan(commands.ChangePlan("acct_ada", "business", "month"))

    after = billing.stored("acct_ada")
    assert (after.plan_id, after.version) == (before.plan_id, before.version)
    assert billing.gateway_view("acct_ada").plan_id == "growth"
    assert billing.gateway_invoices("acct_ada") == invoices
    assert billing.actions("acct_ada")[-1] == ("plan.change", "gateway.unavailable")
    # the retry goes through
    billing.change_plan(commands.ChangePlan("acct_ada", "business", "month"))
    assert billing.stored("acct_ada").plan_id == "business"
