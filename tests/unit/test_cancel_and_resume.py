"""Cancel at period end keeps access until then; resume before the end, refused after."""

from __future__ import annotations

from datetime import timedelta

import pytest

from responseiq_billing.application import commands
from responseiq_billing.domain.errors import (
    AlreadyCanceling,
    GatewayUnavailable,
    NotResumable,
    SubscriptionNotFound,
)
from responseiq_billing.domain.subscription import Status
from tests.unit.conftest import APR_1, MAR_16, Billing


def test_cancel_keeps_access_until_the_period_end_then_the_subscription_ends(
    billing: Billing,
) -> None:
    billing.deliver_webhooks()
    billing.subscribe("acct_ada")
    billing.gateway.advance_to(MAR_16)

    sub = billing.cancel(commands.CancelSubscription("acct_ada"))

    assert sub.cancel_at_period_end and sub.status is Status.ACTIVE
    access = billing.entitlements("acct_ada")
    assert (access.plan_id, access.access_until, access.reason) == ("growth", APR_1, "canceling")
    invoices = len(billing.gateway_invoices("acct_ada"))

    billing.gateway.advance_to(APR_1)

    ended = billing.stored("acct_ada")
    assert (ended.status, ended.ended_at) == (Status.CANCELED, APR_1)
    assert not billing.entitlements("acct_ada").has_access
    assert len(billing.gateway_invoices("acct_ada")) == invoices  # no renewal invoice
    assert ("event.SubscriptionEnded", "recorded") in billing.actions("acct_ada")


def test_cancel_supersedes_a_scheduled_downgrade(billing: Billing) -> None:
    billing.deliver_webhooks()
    billing.subscribe("acct_ada", "business")
    billing.change_plan(commands.ChangePlan("acct_ada", "starter", "month"))

    sub = billing.cancel(commands.CancelSubscription("acct_ada"))

    assert (sub.pending_change, sub.cancel_at_period_end) == (None, True)
    assert billing.gateway_view("acct_ada").pending_change is None
    events = [a for a, _ in billing.actions("acct_ada") if a.startswith("event.")]
    assert "event.ScheduledChangeWithdrawn" in events
    assert events.index("event.ScheduledChangeWithdrawn") < events.index(
        "event.CancellationScheduled"
    )
    assert billing.entitlements("acct_ada").plan_id == "business"  # not starter, ever
    billing.gateway.advance_to(APR_1)
    assert billing.stored("acct_ada").status is Status.CANCELED


def test_cancelling_twice_is_refused(billing: Billing) -> None:
    billing.subscribe("acct_ada")
    billing.cancel(commands.CancelSubscription("acct_ada"))
    with pytest.raises(AlreadyCanceling):
        billing.cancel(commands.CancelSubscription("acct_ada"))


def test_resume_before_the_period_end_keeps_the_subscription_renewing(billing: Billing) -> None:
    billing.deliver_webhooks()
    billing.subscribe("acct_ada")
    billing.cancel(commands.CancelSubscription("acct_ada"))
    billing.gateway.advance_to(APR_1 - timedelta(seconds=1))

    sub = billing.resume(commands.ResumeSubscription("acct_ada"))

    assert not sub.cancel_at_period_end
    assert ("event.SubscriptionResumed", "recorded") in billing.actions("acct_ada")
    billing.gateway.advance_to(APR_1)
    renewed = billing.stored("acct_ada")
    assert (renewed.status, renewed.current_period_start) == (Status.ACTIVE, APR_1)


def test_resume_after_the_period_end_is_refused(billing: Billing) -> None:
    billing.deliver_webhooks()
    billing.subscribe("acct_ada")
    billing.cancel(commands.CancelSubscription("acct_ada"))
    billing.gateway.advance_to(APR_1)
    calls = len(billing.gateway.calls)

    with pytest.raises(NotResumable):
        billing.resume(commands.ResumeSubscription("acct_ada"))

    assert len(billing.gateway.calls) == calls
    assert billing.stored("acct_ada").status is Status.CANCELED


def test_resume_is_refused_after_the_end_even_before_the_gateway_event_arrives(
    billing: Billing,
) -> None:
    billing.subscribe("acct_ada")
    billing.cancel(commands.CancelSubscription("acct_ada"))
    billing.clock.set(APR_1)
    with pytest.raises(NotResumable):
        billing.resume(commands.ResumeSubscription("acct_ada"))


def test_resume_of_a_subscription_that_is_not_canceling_is_refused(billing: Billing) -> None:
    billing.subscribe("acct_ada")
    with pytest.raises(NotResumable):
        billing.resume(commands.ResumeSubscription("acct_ada"))
    with pytest.raises(SubscriptionNotFound):
        billing.resume(commands.ResumeSubscription("acct_nobody"))


def test_an_ended_subscription_cannot_be_cancelled_again(billing: Billing) -> None:
    billing.deliver_webhooks()
    billing.subscribe("acct_ada")
    billing.cancel(commands.CancelSubscription("acct_ada"))
    billing.gateway.advance_to(APR_1)
    with pytest.raises(SubscriptionNotFound):
        billing.cancel(commands.CancelSubscription("acct_ada"))


def test_a_cancel_that_cannot_reach_the_gateway_changes_nothing(billing: Billing) -> None:
    billing.subscribe("acct_ada")
    version = billing.stored("acct_ada").version
    billing.gateway.fail_next_call()
    with pytest.raises(GatewayUnavailable):
        billing.cancel(commands.CancelSubscription("acct_ada"))
    stored = billing.stored("acct_ada")
    assert (stored.cancel_at_period_end, stored.version) == (False, version)
    assert not billing.gateway_view("acct_ada").cancel_at_period_end
