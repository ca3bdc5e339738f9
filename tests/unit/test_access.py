"""What an account may use at one instant: Subscription.access_at over every status."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from responseiq_billing.domain.plans import Catalog, Features, Interval
from responseiq_billing.domain.subscription import (
    PAST_DUE_GRACE,
    AccessReason,
    PendingChange,
    Status,
    Subscription,
)

MAR_1 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
APR_1 = datetime(2026, 4, 1, 9, 0, tzinfo=UTC)
MID = datetime(2026, 3, 16, 9, 0, tzinfo=UTC)
SECOND = timedelta(seconds=1)


def subscription(status: Status = Status.ACTIVE, **changes: object) -> Subscription:
    fields: dict[str, object] = {
        "account_id": "acct_ada",
        "customer_ref": "cus_ada",
        "subscription_ref": "sub_ada",
        "plan_id": "growth",
        "interval": Interval.MONTH,
        "status": status,
        "current_period_start": MAR_1,
        "current_period_end": APR_1,
    }
    fields.update(changes)
    return Subscription(**fields)  # type: ignore[arg-type]


@pytest.mark.parametrize("status", [Status.ACTIVE, Status.TRIALING])
def test_an_active_or_trialing_subscription_grants_its_plan_with_no_end(
    catalog: Catalog, status: Status
) -> None:
    access = subscription(status).access_at(MID, catalog)
    assert access.plan_id == "growth"
    assert access.features == catalog.plan("growth").features
    assert (access.access_until, access.reason, access.has_access) == (None, "active", True)


@pytest.mark.parametrize(
    "status",
    [Status.CANCELED, Status.UNPAID, Status.INCOMPLETE, Status.INCOMPLETE_EXPIRED, Status.PAUSED],
)
def test_subscriptions_that_are_not_paid_up_grant_nothing(catalog: Catalog, status: Status) -> None:
    access = subscription(status).access_at(MID, catalog)
    assert access.plan_id is None and not access.has_access
    assert access.features == Features.none()
    assert access.reason == "none"


def test_a_scheduled_downgrade_keeps_the_current_features_until_it_takes_effect(
    catalog: Catalog,
) -> None:
    sub = subscription(pending_change=PendingChange("starter", Interval.MONTH, APR_1))
    before = sub.access_at(APR_1 - SECOND, catalog)
    assert (before.plan_id, before.reason) == ("growth", "active")
    after = sub.access_at(APR_1, catalog)
    assert (after.plan_id, after.reason) == ("starter", "scheduled_change")
    assert after.features == catalog.plan("starter").features


def test_a_cancellation_set_for_a_date_ends_access_on_that_date_not_the_period_end(
    catalog: Catalog,
) -> None:
    sub = subscription(cancel_at_period_end=True, cancels_at=MID)
    during = sub.access_at(MID - SECOND, catalog)
    assert (during.plan_id, during.access_until, during.reason) == (
        "growth",
        MID,
        AccessReason.CANCELING,
    )
    assert not sub.access_at(MID, catalog).has_access


def test_a_canceling_subscription_keeps_full_access_until_the_period_end_then_none(
    catalog: Catalog,
) -> None:
    sub = subscription(cancel_at_period_end=True)
    during = sub.access_at(APR_1 - SECOND, catalog)
    assert (during.plan_id, during.access_until, during.reason) == ("growth", APR_1, "canceling")
    assert during.features == catalog.plan("growth").features
    assert not sub.access_at(APR_1, catalog).has_access
    assert sub.on_grace_period(MID) and not sub.on_grace_period(APR_1)


def test_cancel_wins_over_a_scheduled_downgrade_for_access(catalog: Catalog) -> None:
    sub = subscription(
        cancel_at_period_end=True, pending_change=PendingChange("starter", Interval.MONTH, APR_1)
    )
    assert sub.access_at(MID, catalog).plan_id == "growth"
    assert not sub.access_at(APR_1, catalog).has_access


def test_a_past_due_subscription_keeps_its_plan_for_the_grace_period_after_the_failed_renewal(
    catalog: Catalog,
) -> None:
    sub = subscription(
        Status.PAST_DUE,
        current_period_start=APR_1,
        current_period_end=datetime(2026, 5, 1, 9, tzinfo=UTC),
    )
    until = APR_1 + PAST_DUE_GRACE
    during = sub.access_at(until - SECOND, catalog)
    assert (during.plan_id, during.access_until, during.reason) == ("growth", until, "grace_period")
    assert not sub.access_at(until, catalog).has_access


def test_the_past_due_grace_never_outlasts_the_period(catalog: Catalog) -> None:
    short_end = MAR_1 + timedelta(days=3)
    sub = subscription(Status.PAST_DUE, current_period_end=short_end)
    assert sub.access_at(MAR_1, catalog).access_until == short_end
    assert not sub.access_at(short_end, catalog).has_access


def test_access_refuses_a_naive_instant(catalog: Catalog) -> None:
    with pytest.raises(ValueError):
        subscription().access_at(datetime(2026, 3, 16), catalog)
