"""Reading: the plan catalog, the subscription and what the account may use now."""

from __future__ import annotations

import attrs

from responseiq_billing.application.ports import (
    Clock,
    UnitOfWorkFactory,
)
from responseiq_billing.application.use_cases.recording import now_from
from responseiq_billing.domain.errors import (
    SubscriptionNotFound,
)
from responseiq_billing.domain.plans import Catalog, Plan
from responseiq_billing.domain.subscription import (
    Access,
    Subscription,
)

# -- catalog & reading ------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class ListPlans:
    catalog: Catalog

    def __call__(self) -> tuple[Plan, ...]:
        return self.catalog.plans


@attrs.frozen
class SubscriptionView:
    subscription: Subscription
    access: Access


@attrs.frozen(kw_only=True)
class GetSubscription:
    uow: UnitOfWorkFactory
    clock: Clock
    catalog: Catalog

    def __call__(self, account_id: str) -> SubscriptionView:
        with self.uow() as uow:
            sub = uow.subscriptions.for_account(account_id)
        return self.view(sub)

    def view(self, sub: Subscription | None) -> SubscriptionView:
        """The view of a subscription already read (by a caller that caches reads)."""
        if sub is None:
            raise SubscriptionNotFound()
        return SubscriptionView(sub, sub.access_at(now_from(self.clock), self.catalog))


@attrs.frozen(kw_only=True)
class GetEntitlements:
    uow: UnitOfWorkFactory
    clock: Clock
    catalog: Catalog

    def __call__(self, account_id: str) -> Access:
        with self.uow() as uow:
            sub = uow.subscriptions.for_account(account_id)
        return self.access(sub)

    def access(self, sub: Subscription | None) -> Access:
        """The access of a subscription already read (by a caller that caches reads)."""
        return Access.none() if sub is None else sub.access_at(now_from(self.clock), self.catalog)
