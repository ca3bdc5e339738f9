"""A plan-change quote: a preview that can be redeemed so the charge equals what was shown."""

from __future__ import annotations

from datetime import datetime, timedelta

import attrs

from responseiq_billing.domain.errors import QuoteExpired, QuoteMismatch, QuoteNotFound
from responseiq_billing.domain.money import Money
from responseiq_billing.domain.plans import Interval
from responseiq_billing.domain.rules import ChangeTiming

# A quote pins the proration instant; Stripe's proration_date must not be far in the past
# for the charge to stay fair, and the customer decides within minutes.
QUOTE_TTL = timedelta(minutes=30)


@attrs.frozen
class Quote:
    id: str
    account_id: str
    subscription_ref: str
    from_plan: str
    from_interval: Interval
    to_plan: str
    to_interval: Interval
    timing: ChangeTiming
    amount_due_now: Money
    effective_at: datetime
    proration_at: datetime
    created_at: datetime
    expires_at: datetime
    redeemed_at: datetime | None = None

    def check_redeemable(
        self,
        *,
        account_id: str,
        subscription_ref: str,
        current: tuple[str, Interval],
        target: tuple[str, Interval],
        at: datetime,
    ) -> None:
        """A quote redeems once, for its own account, change and subscription state, in time."""
        if self.account_id != account_id:
            raise QuoteNotFound()  # another account's quote does not exist for this one
        if self.redeemed_at is not None:
            raise QuoteMismatch("This quote has already been used.")
        if at >= self.expires_at:
            raise QuoteExpired()
        if (
            self.subscription_ref != subscription_ref
            or (self.from_plan, self.from_interval) != current
            or (self.to_plan, self.to_interval) != target
        ):
            raise QuoteMismatch()

    def redeemed(self, at: datetime) -> Quote:
        return attrs.evolve(self, redeemed_at=at)
