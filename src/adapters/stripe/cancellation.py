"""Cancelling at the period end, resuming before it, and cancelling at once."""

from __future__ import annotations

from responseiq_billing.adapters.stripe import translate
from responseiq_billing.adapters.stripe.base import SUBSCRIPTION_EXPAND, StripeBase
from responseiq_billing.domain.errors import SubscriptionNotFound
from responseiq_billing.domain.subscription import GatewaySubscription


class Cancellation(StripeBase):
    """Cancellation and resumption."""

    def cancel_at_period_end(
        self, *, subscription_ref: str, idempotency_key: str
    ) -> GatewaySubscription:
        sub = self._read_subscription(subscription_ref)
        self._release_schedule(sub, idempotency_key)
        updated = self._update_subscription(
            subscription_ref, {"cancel_at_period_end": True}, f"{idempotency_key}:update"
        )
        return self._view(updated)

    def resume(self, *, subscription_ref: str, idempotency_key: str) -> GatewaySubscription:
        # `cancel_at: ""` unsets a cancellation set by date too (the Dashboard's).
        updated = self._update_subscription(
            subscription_ref, {"cancel_at_period_end": False, "cancel_at": ""}, idempotency_key
        )
        return self._view(updated)

    def cancel_now(self, *, subscription_ref: str, idempotency_key: str) -> GatewaySubscription:
        # A DELETE takes no idempotency key at Stripe (it has no effect there); repeating it is
        # safe by itself, and Stripe answers a second cancel with 404 (`resource_missing`), as
        # if the canceled subscription were gone, so that case is read instead.
        del idempotency_key
        try:
            with translate.translated(not_found=SubscriptionNotFound):
                sub = self._client.v1.subscriptions.cancel(
                    subscription_ref,
                    {"expand": SUBSCRIPTION_EXPAND, "invoice_now": False, "prorate": False},
                ).to_dict()
        except SubscriptionNotFound:
            sub = self._read_subscription(subscription_ref)  # SubscriptionNotFound if unknown
            if translate.subscription_is_live(sub):
                raise
        return self._view(sub)
