"""The card a subscription charges: Paddle's payment-method-change transaction."""

from __future__ import annotations

from responseiq_billing.adapters.paddle import translate
from responseiq_billing.adapters.paddle.base import PaddleBase
from responseiq_billing.application.ports import SetupSession
from responseiq_billing.domain.errors import CheckoutNotFound, GatewayRejected
from responseiq_billing.domain.subscription import PaymentMethodSummary

_LIVE_SUBSCRIPTION = ("active", "trialing", "past_due", "paused")


class PaymentMethods(PaddleBase):
    """Changing the card of a subscription (Paddle has no customer default to follow)."""

    def start_payment_method_setup(
        self, *, customer_ref: str, success_url: str, cancel_url: str, idempotency_key: str
    ) -> SetupSession:
        # Paddle changes a card per subscription: a zero-amount transaction, completed on
        # Paddle's checkout, after which the subscription charges the new card.
        del success_url, cancel_url, idempotency_key
        live = [
            s
            for s in self._subscriptions(customer_ref)
            if translate.value(s.status) in _LIVE_SUBSCRIPTION
        ]
        if not live:
            raise GatewayRejected(
                "Paddle changes a card per subscription; there is none to change."
            )
        with translate.translated():
            txn = self._client.subscriptions.get_payment_method_change_transaction(live[0].id)
        return SetupSession(
            id=txn.id, url=txn.checkout.url if txn.checkout else None, client_secret=None
        )

    def complete_payment_method_setup(
        self, setup_id: str, *, customer_ref: str, idempotency_key: str
    ) -> PaymentMethodSummary | None:
        # Nothing to write: Paddle makes the card the subscription's own as the transaction
        # completes. This only reads and checks.
        del idempotency_key
        with translate.translated(not_found=CheckoutNotFound):
            txn = self._client.transactions.get(setup_id)
        if txn.customer_id != customer_ref:
            raise CheckoutNotFound()  # another customer's transaction does not exist for this one
        if translate.value(txn.origin) != "subscription_payment_method_change":
            raise GatewayRejected("That transaction did not collect a payment method.")
        if translate.value(txn.status) != "completed":
            return None
        return translate.card_summary(txn)
