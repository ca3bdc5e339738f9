"""Cancelling at the period end, resuming before it, and cancelling at once, on Paddle."""

from __future__ import annotations

from paddle_billing.Entities.Subscriptions import SubscriptionEffectiveFrom
from paddle_billing.Resources.Subscriptions.Operations import CancelSubscription, UpdateSubscription

from responseiq_billing.adapters.paddle import translate
from responseiq_billing.adapters.paddle.base import PaddleBase
from responseiq_billing.domain.errors import SubscriptionNotFound
from responseiq_billing.domain.subscription import GatewaySubscription


class Cancellation(PaddleBase):
    """Cancellation and resumption, each read-compare-write."""

    def cancel_at_period_end(
        self, *, subscription_ref: str, idempotency_key: str
    ) -> GatewaySubscription:
        del idempotency_key
        sub = self._read(subscription_ref)
        change = sub.scheduled_change
        if change is None or translate.value(change.action) != "cancel":
            with translate.translated(not_found=SubscriptionNotFound):
                sub = self._client.subscriptions.cancel(
                    subscription_ref,
                    CancelSubscription(effective_from=SubscriptionEffectiveFrom.NextBillingPeriod),
                )
        return self._view(sub)

    def resume(self, *, subscription_ref: str, idempotency_key: str) -> GatewaySubscription:
        # Removing the scheduled cancellation; Paddle's own `resume` is for paused ones.
        del idempotency_key
        sub = self._read(subscription_ref)
        if sub.scheduled_change is not None:
            sub = self._update(subscription_ref, UpdateSubscription(scheduled_change=None))
        return self._view(sub)

    def cancel_now(self, *, subscription_ref: str, idempotency_key: str) -> GatewaySubscription:
        del idempotency_key
        sub = self._read(subscription_ref)
        if translate.value(sub.status) != "canceled":
            with translate.translated(not_found=SubscriptionNotFound):
                sub = self._client.subscriptions.cancel(
                    subscription_ref,
                    CancelSubscription(effective_from=SubscriptionEffectiveFrom.Immediately),
                )
        return self._view(sub)
