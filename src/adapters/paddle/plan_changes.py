"""Changing plans on Paddle: the preview, the upgrade charged now, and the downgrade the core
applies itself before the renewal (Paddle cannot schedule one)."""

from __future__ import annotations

from datetime import datetime

from paddle_billing.Entities.Subscription import Subscription as PaddleSubscription
from paddle_billing.Entities.SubscriptionPreview import SubscriptionPreview
from paddle_billing.Entities.Subscriptions import (
    SubscriptionOnPaymentFailure,
    SubscriptionProrationBillingMode,
)
from paddle_billing.Resources.Subscriptions.Operations import (
    PreviewUpdateSubscription,
    UpdateSubscription,
)
from paddle_billing.Resources.Subscriptions.Operations.Update import SubscriptionUpdateItem

from responseiq_billing.adapters.paddle import translate
from responseiq_billing.adapters.paddle.base import PaddleBase
from responseiq_billing.domain.errors import GatewayRejected, SubscriptionNotFound
from responseiq_billing.domain.money import Money
from responseiq_billing.domain.plans import PlanPrice
from responseiq_billing.domain.subscription import GatewaySubscription


class PlanChanges(PaddleBase):
    """Previews, upgrades and the core's downgrades."""

    def preview_plan_change(
        self, *, subscription_ref: str, target: PlanPrice, proration_at: datetime
    ) -> Money:
        # Paddle prorates at the moment of the request; it takes no proration date.
        del proration_at
        self._pricing.price_id(target)
        since = self._pricing.generation

        def preview_update(price_id: str) -> SubscriptionPreview:
            with translate.translated(not_found=SubscriptionNotFound):
                return self._client.subscriptions.preview_update(
                    subscription_ref,
                    PreviewUpdateSubscription(
                        items=[SubscriptionUpdateItem(price_id=price_id, quantity=1)],
                        proration_billing_mode=SubscriptionProrationBillingMode.ProratedImmediately,
                    ),
                )

        preview = self._pricing.priced((target.plan_id, target.interval), preview_update, since)
        immediate = preview.immediate_transaction
        if immediate is None:
            return Money.zero(target.amount.currency)
        totals = immediate.details.totals
        return translate.money(totals.grand_total or totals.total, preview.currency_code)

    def upgrade(
        self,
        *,
        subscription_ref: str,
        target: PlanPrice,
        proration_at: datetime,
        idempotency_key: str,
    ) -> GatewaySubscription:
        del idempotency_key
        entry = (target.plan_id, target.interval)
        price_id = self._pricing.price_id(target)
        since = self._pricing.generation
        sub = self._read(subscription_ref)
        # Read-compare-write: a retry finds the plan in place (at any of its prices, one
        # retired since included) and charges nothing.
        if self._current_entry(sub) != entry:
            self._pricing.check_quote(price_id, proration_at)

            def update(price_id: str) -> PaddleSubscription:
                self._pricing.check_quote(price_id, proration_at)  # the retry's price may be newer
                return self._update(
                    subscription_ref,
                    UpdateSubscription(
                        items=[SubscriptionUpdateItem(price_id=price_id, quantity=1)],
                        proration_billing_mode=SubscriptionProrationBillingMode.ProratedImmediately,
                        on_payment_failure=SubscriptionOnPaymentFailure.PreventChange,
                    ),
                )

            sub = self._pricing.priced(entry, update, since)
        return self._view(sub)

    def schedule_downgrade(
        self, *, subscription_ref: str, target: PlanPrice, idempotency_key: str
    ) -> GatewaySubscription:
        raise GatewayRejected("Paddle cannot schedule a plan change; the core keeps it.")

    def withdraw_scheduled_change(
        self, *, subscription_ref: str, idempotency_key: str
    ) -> GatewaySubscription:
        raise GatewayRejected("Paddle cannot schedule a plan change; the core keeps it.")

    def apply_plan_for_renewal(
        self, *, subscription_ref: str, target: PlanPrice, idempotency_key: str
    ) -> GatewaySubscription:
        del idempotency_key
        entry = (target.plan_id, target.interval)
        self._pricing.price_id(target)
        since = self._pricing.generation
        sub = self._read(subscription_ref)
        if self._current_entry(sub) != entry:

            def update(price_id: str) -> PaddleSubscription:
                return self._update(
                    subscription_ref,
                    UpdateSubscription(
                        items=[SubscriptionUpdateItem(price_id=price_id, quantity=1)],
                        proration_billing_mode=SubscriptionProrationBillingMode.DoNotBill,
                    ),
                )

            sub = self._pricing.priced(entry, update, since)
        return self._view(sub)
