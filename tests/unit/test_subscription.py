"""The subscription aggregate: its checks, and syncing to the gateway's view with events."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import attrs
import pytest

from responseiq_billing.domain import events as domain_events
from responseiq_billing.domain.errors import (
    AlreadyCanceling,
    NoPendingChange,
    NotResumable,
    SamePlan,
    SubscriptionNotActive,
)
from responseiq_billing.domain.money import Money
from responseiq_billing.domain.plans import Catalog, Interval
from responseiq_billing.domain.rules import ChangeTiming
from responseiq_billing.domain.subscription import (
    GatewaySubscription,
    PaymentMethodSummary,
    PendingChange,
    Status,
    Subscription,
)

MAR_1 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
APR_1 = datetime(2026, 4, 1, 9, 0, tzinfo=UTC)
MAY_1 = datetime(2026, 5, 1, 9, 0, tzinfo=UTC)
MID = datetime(2026, 3, 16, 9, 0, tzinfo=UTC)
VISA = PaymentMethodSummary("visa", "4242")


def view(**changes: Any) -> GatewaySubscription:
    base = GatewaySubscription(
        customer_ref="cus_ada",
        subscription_ref="sub_ada",
        plan_id="growth",
        interval=Interval.MONTH,
        status=Status.ACTIVE,
        current_period_start=MAR_1,
        current_period_end=APR_1,
        cancel_at_period_end=False,
        pending_change=None,
        payment_method=VISA,
        as_of=MAR_1,
    )
    return attrs.evolve(base, **changes)


def started() -> Subscription:
    sub = Subscription.from_gateway("acct_ada", view())
    sub.collect_events()
    return sub


def names(sub: Subscription) -> list[str]:
    return [e.name for e in sub.collect_events()]


def test_a_subscription_from_the_gateway_records_that_it_started() -> None:
    sub = Subscription.from_gateway("acct_ada", view())
    assert sub.synced_at == MAR_1 and sub.payment_method == VISA
    assert sub.collect_events() == [
        domain_events.SubscriptionStarted("acct_ada", MAR_1, "growth", Interval.MONTH)
    ]
    assert sub.collect_events() == []


def test_sync_records_a_plan_change() -> None:
    sub = started()
    assert sub.sync(view(plan_id="business", as_of=MID))
    assert sub.collect_events() == [
        domain_events.PlanChanged(
            "acct_ada", MID, "growth", Interval.MONTH, "business", Interval.MONTH
        )
    ]
    assert (sub.plan_id, sub.synced_at) == ("business", MID)


def test_sync_records_a_renewal_on_the_same_plan() -> None:
    sub = started()
    sub.sync(view(current_period_start=APR_1, current_period_end=MAY_1, as_of=APR_1))
    assert sub.collect_events() == [
        domain_events.SubscriptionRenewed("acct_ada", APR_1, APR_1, MAY_1)
    ]


def test_sync_records_a_scheduled_change_then_its_withdrawal() -> None:
    sub = started()
    change = PendingChange("starter", Interval.MONTH, APR_1)
    sub.sync(view(pending_change=change, as_of=MID))
    assert sub.collect_events() == [
        domain_events.PlanChangeScheduled("acct_ada", MID, "starter", Interval.MONTH, APR_1)
    ]
    sub.sync(view(as_of=MID + timedelta(hours=1)))
    assert names(sub) == ["ScheduledChangeWithdrawn"]


def test_a_scheduled_change_taking_effect_is_a_plan_change_not_a_withdrawal() -> None:
    sub = started()
    sub.sync(view(pending_change=PendingChange("starter", Interval.MONTH, APR_1), as_of=MID))
    sub.collect_events()
    sub.sync(
        view(plan_id="starter", current_period_start=APR_1, current_period_end=MAY_1, as_of=APR_1)
    )
    assert names(sub) == ["PlanChanged"]


def test_sync_records_cancel_resume_and_the_end() -> None:
    sub = started()
    sub.sync(view(cancel_at_period_end=True, as_of=MID))
    assert sub.collect_events() == [domain_events.CancellationScheduled("acct_ada", MID, APR_1)]
    sub.sync(view(as_of=MID + timedelta(hours=1)))
    assert names(sub) == ["SubscriptionResumed"]
    sub.sync(view(cancel_at_period_end=True, as_of=MID + timedelta(hours=2)))
    sub.collect_events()
    sub.sync(view(cancel_at_period_end=True, status=Status.CANCELED, ended_at=APR_1, as_of=APR_1))
    assert names(sub) == ["StatusChanged", "SubscriptionEnded"]
    assert sub.ended_at == APR_1


def test_sync_records_a_new_payment_method_but_a_missing_one_never_clears_it() -> None:
    sub = started()
    master = PaymentMethodSummary("mastercard", "4444")
    sub.sync(view(payment_method=master, as_of=MID))
    assert sub.collect_events() == [
        domain_events.PaymentMethodUpdated("acct_ada", MID, "mastercard", "4444")
    ]
    sub.sync(view(payment_method=None, as_of=MID + timedelta(hours=1)))
    assert sub.payment_method == master and sub.collect_events() == []


def test_sync_ignores_a_view_older_than_the_state_it_holds() -> None:
    sub = started()
    sub.sync(view(plan_id="business", as_of=MID))
    sub.collect_events()
    assert not sub.sync(view(plan_id="starter", as_of=MID - timedelta(seconds=1)))
    assert sub.plan_id == "business" and sub.synced_at == MID
    assert sub.collect_events() == []


def test_sync_reports_no_change_for_a_view_identical_to_the_one_it_holds() -> None:
    sub = started()
    assert not sub.sync(view(as_of=MAR_1))
    assert sub.collect_events() == []


def test_sync_applies_a_differing_view_as_old_as_ours() -> None:
    sub = started()
    assert sub.sync(view(plan_id="business", as_of=MAR_1))
    assert sub.plan_id == "business" and names(sub) == ["PlanChanged"]


def test_sync_counts_a_newer_stamp_of_the_same_state_as_a_change_without_events() -> None:
    # The stamp breaks later same-second ties (`Settled`), so it is worth a write.
    sub = started()
    assert sub.sync(view(as_of=MID))
    assert sub.synced_at == MID and names(sub) == []


def test_sync_refuses_a_view_of_another_subscription() -> None:
    with pytest.raises(ValueError):
        started().sync(view(subscription_ref="sub_other", as_of=MID))


def test_an_upgrade_decision_applies_now_with_a_proration(catalog: Catalog) -> None:
    decision = started().decide_plan_change(
        catalog.price("business", "month"), at=MID, catalog=catalog
    )
    assert decision.timing is ChangeTiming.IMMEDIATE and decision.effective_at == MID
    assert decision.proration is not None
    assert decision.proration.amount_due == Money(2581, "USD")


def test_a_downgrade_decision_waits_for_the_period_end(catalog: Catalog) -> None:
    decision = started().decide_plan_change(
        catalog.price("starter", "month"), at=MID, catalog=catalog
    )
    assert (decision.timing, decision.effective_at, decision.proration) == (
        ChangeTiming.END_OF_PERIOD,
        APR_1,
        None,
    )


def test_plan_changes_are_refused_on_the_same_plan_and_on_inactive_or_canceling_subscriptions(
    catalog: Catalog,
) -> None:
    target = catalog.price("business", "month")
    with pytest.raises(SamePlan):
        started().decide_plan_change(catalog.price("growth", "month"), at=MID, catalog=catalog)
    past_due = started()
    past_due.status = Status.PAST_DUE
    with pytest.raises(SubscriptionNotActive):
        past_due.decide_plan_change(target, at=MID, catalog=catalog)
    canceling = started()
    canceling.cancel_at_period_end = True
    with pytest.raises(SubscriptionNotActive):
        canceling.decide_plan_change(target, at=MID, catalog=catalog)


def test_cancel_and_resume_checks_follow_the_article() -> None:
    sub = started()
    with pytest.raises(NotResumable):
        sub.check_resume(MID)
    sub.check_cancel(MID)
    sub.cancel_at_period_end = True
    with pytest.raises(AlreadyCanceling):
        sub.check_cancel(MID)
    sub.check_resume(APR_1 - timedelta(seconds=1))
    with pytest.raises(NotResumable):
        sub.check_resume(APR_1)
    with pytest.raises(NoPendingChange):
        sub.check_withdraw_pending_change()


def test_a_payment_method_update_is_recorded_once() -> None:
    sub = started()
    master = PaymentMethodSummary("mastercard", "4444")
    sub.update_payment_method(master, MID)
    sub.update_payment_method(master, MID)
    assert names(sub) == ["PaymentMethodUpdated"]


def test_a_payment_method_summary_holds_exactly_four_digits() -> None:
    with pytest.raises(ValueError):
        PaymentMethodSummary("visa", "424")
    with pytest.raises(ValueError):
        PaymentMethodSummary("visa", "42a2")


FIELDS = [f.name for f in attrs.fields(GatewaySubscription) if f.name != "as_of"]
CHANGED = view(
    customer_ref="cus_moved",
    plan_id="business",
    interval=Interval.YEAR,
    status=Status.CANCELED,
    current_period_start=APR_1,
    current_period_end=MAY_1,
    cancel_at_period_end=True,
    pending_change=PendingChange("starter", Interval.YEAR, MAY_1),
    payment_method=PaymentMethodSummary("mastercard", "4444"),
    as_of=MID,
    ended_at=MID,
)


def test_a_subscription_made_from_a_view_holds_every_field_of_it() -> None:
    sub = Subscription.from_gateway("acct_ada", CHANGED)
    for name in FIELDS:
        assert getattr(sub, name) == getattr(CHANGED, name), name
    assert (sub.account_id, sub.synced_at) == ("acct_ada", MID)


def test_syncing_adopts_every_field_of_a_newer_view_and_names_the_account_in_each_event() -> None:
    sub = started()
    assert sub.sync(CHANGED)
    for name in FIELDS:
        assert getattr(sub, name) == getattr(CHANGED, name), name
    events = sub.collect_events()
    assert events and all(event.account_id == "acct_ada" for event in events)
    assert {type(e) for e in events} >= {domain_events.PlanChanged, domain_events.SubscriptionEnded}


def test_an_ended_subscription_keeps_the_first_end_it_was_told_of() -> None:
    sub = started()
    sub.sync(view(status=Status.CANCELED, ended_at=MID, as_of=MID))
    sub.sync(view(status=Status.CANCELED, ended_at=None, as_of=APR_1))
    assert sub.ended_at == MID


def test_a_live_view_without_an_end_leaves_the_subscription_open() -> None:
    sub = started()
    sub.sync(view(as_of=MID))
    assert sub.ended_at is None
