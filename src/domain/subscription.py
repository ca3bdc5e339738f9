"""The subscription aggregate: one account's plan, period, status and what it may do now."""

from __future__ import annotations

import enum
from datetime import datetime, timedelta
from typing import Any

import attrs

from responseiq_billing.domain import events as domain_events
from responseiq_billing.domain.errors import (
    AlreadyCanceling,
    NoPendingChange,
    NotResumable,
    SubscriptionNotActive,
)
from responseiq_billing.domain.periods import require_aware
from responseiq_billing.domain.plans import Catalog, Features, Interval, PlanPrice
from responseiq_billing.domain.rules import ChangeTiming, Proration, classify_change, prorate

# How long a `past_due` subscription keeps its features after the renewal payment failed.
# Stripe's default Smart Retries try for about two weeks before the subscription turns
# `unpaid` or `canceled`; access lasts through the first week of those retries, counted from
# the start of the period whose invoice failed.
PAST_DUE_GRACE = timedelta(days=7)


class Status(enum.Enum):
    """Stripe's subscription statuses (pay-rails/pay uses the same words)."""

    INCOMPLETE = "incomplete"
    INCOMPLETE_EXPIRED = "incomplete_expired"
    TRIALING = "trialing"
    ACTIVE = "active"
    PAST_DUE = "past_due"
    CANCELED = "canceled"
    UNPAID = "unpaid"
    PAUSED = "paused"

    @property
    def is_live(self) -> bool:
        """A live subscription still belongs to the account; at most one per account."""
        return self not in (Status.CANCELED, Status.INCOMPLETE_EXPIRED)

    @property
    def is_changeable(self) -> bool:
        return self in (Status.ACTIVE, Status.TRIALING)


def _last4(_: object, __: attrs.Attribute[str], value: str) -> None:
    if len(value) != 4 or not value.isdigit():
        raise ValueError("last4 must be exactly four digits")


@attrs.frozen
class PaymentMethodSummary:
    """What we may know of a payment method: the brand and last four digits, nothing more."""

    brand: str
    last4: str = attrs.field(validator=_last4)


@attrs.frozen
class PendingChange:
    """A plan change scheduled for `effective_at` (a downgrade waiting for the period end)."""

    plan_id: str
    interval: Interval
    effective_at: datetime


def _aware(_: object, attribute: attrs.Attribute[datetime], value: datetime) -> None:
    require_aware(value)


@attrs.define(kw_only=True)
class SubscriptionShape:
    """What a subscription is, declared once: the gateway's view and our aggregate both have it.

    `cancels_at` is when a scheduled cancellation ends it: the period end, or a date set
    elsewhere (Stripe's `cancel_at`); None with none scheduled.
    """

    customer_ref: str
    subscription_ref: str
    plan_id: str
    interval: Interval
    status: Status
    current_period_start: datetime = attrs.field(validator=_aware)
    current_period_end: datetime = attrs.field(validator=_aware)
    cancel_at_period_end: bool = False
    pending_change: PendingChange | None = None
    payment_method: PaymentMethodSummary | None = None
    ended_at: datetime | None = None
    cancels_at: datetime | None = None

    def shape(self) -> dict[str, Any]:
        """The shared fields by name, to build the other kind of subscription from this one."""
        return {field.name: getattr(self, field.name) for field in attrs.fields(SubscriptionShape)}


@attrs.frozen(kw_only=True)
class GatewaySubscription(SubscriptionShape):
    """The gateway's view of a subscription: the source of truth that local state syncs to.

    `as_of` is the gateway's time for this view (an event's `created`, or the time of the
    call that returned it), so an older view never overwrites a newer one. An adapter that
    cannot say when a scheduled cancellation ends leaves `cancels_at` None and
    `scheduled_end` takes the period end.
    """

    as_of: datetime

    @property
    def scheduled_end(self) -> datetime | None:
        """When the scheduled cancellation ends a live subscription; None when none is."""
        if not (self.cancel_at_period_end and self.status.is_live):
            return None
        return require_aware(self.cancels_at or self.current_period_end)


class AccessReason(enum.StrEnum):
    """Why an account has, or lacks, access at an instant."""

    ACTIVE = "active"
    CANCELING = "canceling"  # set to cancel: full access until it ends
    GRACE_PERIOD = "grace_period"  # a renewal failed: access for the grace period
    SCHEDULED_CHANGE = "scheduled_change"  # a downgrade's time has come
    NONE = "none"


@attrs.frozen
class Access:
    """What an account may use at one instant. `access_until` is None while it keeps renewing."""

    plan_id: str | None
    features: Features
    access_until: datetime | None
    reason: AccessReason

    @property
    def has_access(self) -> bool:
        return self.plan_id is not None

    @classmethod
    def none(cls) -> Access:
        return cls(None, Features.none(), None, AccessReason.NONE)


@attrs.frozen
class PlanChangeDecision:
    """What a requested plan change will do: apply now with a proration, or wait for `effective_at`."""

    target: PlanPrice
    timing: ChangeTiming
    effective_at: datetime
    proration: Proration | None


@attrs.define(eq=False, kw_only=True)
class Subscription(SubscriptionShape):
    """One account's subscription, mirrored from the gateway and guarded by the article's rules.

    Commands check a request against the rules and say what it will do (`decide_plan_change`,
    `check_cancel`, ...); the gateway carries it out; `sync` then adopts the gateway's state
    and records the events. Changes made in the Stripe portal arrive the same way, through
    `sync`, so both paths record the same events. Its `cancels_at` is set with
    `cancel_at_period_end` (the view's `scheduled_end`).
    """

    account_id: str
    version: int = 0
    synced_at: datetime | None = None
    events: list[domain_events.DomainEvent] = attrs.field(factory=list, repr=False)

    # -- construction ---------------------------------------------------------------------
    @classmethod
    def from_gateway(cls, account_id: str, view: GatewaySubscription) -> Subscription:
        shape = view.shape() | {"cancels_at": view.scheduled_end}
        sub = cls(account_id=account_id, synced_at=view.as_of, **shape)
        sub.events.append(
            domain_events.SubscriptionStarted(account_id, view.as_of, view.plan_id, view.interval)
        )
        return sub

    def as_view(
        self, *, as_of: datetime, pending_change: PendingChange | None
    ) -> GatewaySubscription:
        """This subscription as a gateway view with `pending_change` (no gateway call)."""
        return GatewaySubscription(
            **(self.shape() | {"pending_change": pending_change}), as_of=as_of
        )

    # -- reading --------------------------------------------------------------------------
    @property
    def current_price_key(self) -> tuple[str, Interval]:
        return self.plan_id, self.interval

    def on_grace_period(self, now: datetime) -> bool:
        """Set to cancel, but the paid period has not ended yet: access continues."""
        return self.cancel_at_period_end and self.status.is_live and now < self.current_period_end

    def access_at(self, now: datetime, catalog: Catalog) -> Access:
        """The features in force at `now`.

        - active/trialing: the current plan; once a scheduled downgrade's time has come, the
          new plan (even if the gateway's confirmation has not reached us yet);
        - set to cancel: full access until it ends (the period end, or the date set), nothing after;
        - past_due: the current plan for `PAST_DUE_GRACE` after the failed renewal;
        - canceled, unpaid, incomplete, incomplete_expired, paused: nothing.
        """
        require_aware(now)
        if self.status in (Status.ACTIVE, Status.TRIALING):
            if self.cancel_at_period_end:
                end = self.cancels_at or self.current_period_end
                # A cancellation set for a date (the Dashboard's `cancel_at`) ends access then.
                if now >= end:
                    return Access.none()
                plan = catalog.plan(self.plan_id)
                return Access(plan.id, plan.features, end, AccessReason.CANCELING)
            change = self.pending_change
            if change is not None and now >= change.effective_at:
                plan = catalog.plan(change.plan_id)
                return Access(plan.id, plan.features, None, AccessReason.SCHEDULED_CHANGE)
            plan = catalog.plan(self.plan_id)
            return Access(plan.id, plan.features, None, AccessReason.ACTIVE)
        if self.status is Status.PAST_DUE:
            until = min(self.current_period_start + PAST_DUE_GRACE, self.current_period_end)
            if now < until:
                plan = catalog.plan(self.plan_id)
                return Access(plan.id, plan.features, until, AccessReason.GRACE_PERIOD)
        return Access.none()

    # -- commands: check a request against the rules --------------------------------------
    def decide_plan_change(
        self, target: PlanPrice, *, at: datetime, catalog: Catalog
    ) -> PlanChangeDecision:
        """Upgrade now with a proration, or schedule a downgrade for the period end."""
        require_aware(at)
        if not self.status.is_changeable:
            raise SubscriptionNotActive()
        if self.cancel_at_period_end:
            raise SubscriptionNotActive(
                "The subscription is set to cancel; resume it before changing the plan."
            )
        current = catalog.price(self.plan_id, self.interval)
        timing = classify_change(current, target)
        if timing is ChangeTiming.END_OF_PERIOD:
            return PlanChangeDecision(target, timing, self.current_period_end, None)
        proration = prorate(
            current,
            target,
            period_start=self.current_period_start,
            period_end_at=self.current_period_end,
            at=min(max(at, self.current_period_start), self.current_period_end),
        )
        return PlanChangeDecision(target, timing, at, proration)

    def check_withdraw_pending_change(self) -> PendingChange:
        if self.pending_change is None:
            raise NoPendingChange()
        return self.pending_change

    def check_cancel(self, at: datetime) -> None:
        """Cancel at period end: allowed while live and not already set to cancel."""
        require_aware(at)
        if not self.status.is_live or self.status is Status.INCOMPLETE:
            raise SubscriptionNotActive()
        if self.cancel_at_period_end:
            raise AlreadyCanceling()

    def check_resume(self, at: datetime) -> None:
        """Resume is possible only before the period ends; after it, only a new checkout helps."""
        require_aware(at)
        if (
            not self.cancel_at_period_end
            or not self.status.is_live
            or at >= self.current_period_end
        ):
            raise NotResumable()

    # -- syncing with the gateway's truth ---------------------------------------------------
    def sync(self, view: GatewaySubscription) -> bool:
        """Adopt the gateway's view and record what changed; ignore a view older than ours.

        Returns whether anything changed, i.e. whether there is something to save. A view as
        old as ours is applied (it is idempotent), so the caller decides how to break ties
        between events of one second; a view identical to what we hold, stamp included (the
        webhook echo of an answer we recorded), changes nothing and returns False. A newer
        stamp with the same state still counts: the stamp is what breaks later ties.
        """
        if view.subscription_ref != self.subscription_ref:
            raise ValueError("a view of another subscription cannot be synced into this one")
        if self.synced_at is not None and view.as_of < self.synced_at:
            return False
        held = self._mirrored()
        at, acct = view.as_of, self.account_id
        recorded: list[domain_events.DomainEvent] = []
        if (view.plan_id, view.interval) != (self.plan_id, self.interval):
            recorded.append(
                domain_events.PlanChanged(
                    acct, at, self.plan_id, self.interval, view.plan_id, view.interval
                )
            )
        if view.current_period_start > self.current_period_start and (
            view.plan_id,
            view.interval,
        ) == (self.plan_id, self.interval):
            recorded.append(
                domain_events.SubscriptionRenewed(
                    acct, at, view.current_period_start, view.current_period_end
                )
            )
        if view.pending_change != self.pending_change:
            old, new = self.pending_change, view.pending_change
            if old is not None and (
                new is None or (new.plan_id, new.interval) != (old.plan_id, old.interval)
            ):
                applied = (view.plan_id, view.interval) == (old.plan_id, old.interval)
                if not applied:
                    recorded.append(
                        domain_events.ScheduledChangeWithdrawn(acct, at, old.plan_id, old.interval)
                    )
            if new is not None:
                recorded.append(
                    domain_events.PlanChangeScheduled(
                        acct, at, new.plan_id, new.interval, new.effective_at
                    )
                )
        if view.cancel_at_period_end and not self.cancel_at_period_end:
            recorded.append(
                domain_events.CancellationScheduled(
                    acct, at, view.scheduled_end or view.current_period_end
                )
            )
        if not view.cancel_at_period_end and self.cancel_at_period_end and view.status.is_live:
            recorded.append(domain_events.SubscriptionResumed(acct, at))
        if view.status is not self.status:
            recorded.append(
                domain_events.StatusChanged(acct, at, self.status.value, view.status.value)
            )
            if not view.status.is_live and self.status.is_live:
                recorded.append(domain_events.SubscriptionEnded(acct, at))
        if view.payment_method is not None and view.payment_method != self.payment_method:
            recorded.append(
                domain_events.PaymentMethodUpdated(
                    acct, at, view.payment_method.brand, view.payment_method.last4
                )
            )

        self.customer_ref = view.customer_ref
        self.plan_id, self.interval = view.plan_id, view.interval
        self.status = view.status
        self.current_period_start = view.current_period_start
        self.current_period_end = view.current_period_end
        self.cancel_at_period_end = view.cancel_at_period_end
        self.cancels_at = view.scheduled_end
        self.pending_change = view.pending_change
        if view.payment_method is not None:
            self.payment_method = view.payment_method
        if view.ended_at is not None or not view.status.is_live:
            self.ended_at = view.ended_at or self.ended_at or at
        self.synced_at = at
        self.events.extend(recorded)
        return self._mirrored() != held

    def _mirrored(self) -> tuple[object, ...]:
        """Everything `sync` may set: equal before and after means nothing to write."""
        return tuple(getattr(self, name) for name in _MIRRORED)

    def update_payment_method(self, summary: PaymentMethodSummary, at: datetime) -> None:
        """The customer's default payment method changed: the next charge uses it."""
        if summary != self.payment_method:
            self.payment_method = summary
            self.events.append(
                domain_events.PaymentMethodUpdated(
                    self.account_id, at, summary.brand, summary.last4
                )
            )

    def collect_events(self) -> list[domain_events.DomainEvent]:
        out, self.events = self.events, []
        return out


# What `sync` adopts from a view: every field but the row version and the pending events.
_MIRRORED = tuple(f.name for f in attrs.fields(Subscription) if f.name not in ("version", "events"))
