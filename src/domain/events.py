"""Domain events: facts the subscription aggregate records when its state changes."""

from __future__ import annotations

from datetime import datetime

import attrs

from responseiq_billing.domain.plans import Interval


@attrs.frozen
class DomainEvent:
    account_id: str
    at: datetime

    @property
    def name(self) -> str:
        return type(self).__name__


@attrs.frozen
class SubscriptionStarted(DomainEvent):
    plan_id: str
    interval: Interval


@attrs.frozen
class PlanChanged(DomainEvent):
    """The plan in force changed: an upgrade now, or a scheduled downgrade taking effect."""

    from_plan: str
    from_interval: Interval
    to_plan: str
    to_interval: Interval


@attrs.frozen
class PlanChangeScheduled(DomainEvent):
    to_plan: str
    to_interval: Interval
    effective_at: datetime


@attrs.frozen
class ScheduledChangeWithdrawn(DomainEvent):
    to_plan: str
    to_interval: Interval


@attrs.frozen
class CancellationScheduled(DomainEvent):
    access_until: datetime


@attrs.frozen
class SubscriptionResumed(DomainEvent):
    pass


@attrs.frozen
class SubscriptionRenewed(DomainEvent):
    period_start: datetime
    period_end: datetime


@attrs.frozen
class StatusChanged(DomainEvent):
    from_status: str
    to_status: str


@attrs.frozen
class SubscriptionEnded(DomainEvent):
    pass


@attrs.frozen
class PaymentMethodUpdated(DomainEvent):
    brand: str
    last4: str
