"""The card the next charge uses: a setup session and who follows the new default."""

from __future__ import annotations

from stripe.params import CustomerUpdateParams

from responseiq_billing.adapters.stripe import translate
from responseiq_billing.adapters.stripe.base import StripeBase
from responseiq_billing.application.ports import SetupSession
from responseiq_billing.domain.errors import CheckoutNotFound, GatewayRejected
from responseiq_billing.domain.subscription import GatewaySubscription, PaymentMethodSummary


class PaymentMethods(StripeBase):
    """Collecting a new payment method and making it the one charged."""

    def start_payment_method_setup(
        self, *, customer_ref: str, success_url: str, cancel_url: str, idempotency_key: str
    ) -> SetupSession:
        with translate.translated():
            session = self._client.v1.checkout.sessions.create(
                {
                    "mode": "setup",
                    "customer": customer_ref,
                    "currency": self._currency(),
                    "ui_mode": "hosted_page",
                    "success_url": success_url,
                    "cancel_url": cancel_url,
                },
                {"idempotency_key": idempotency_key},
            )
        return SetupSession(id=session.id, url=session.url, client_secret=None)

    def _currency(self) -> str:
        return next(iter(self._catalog.all_prices())).amount.currency.lower()

    def complete_payment_method_setup(
        self, setup_id: str, *, customer_ref: str, idempotency_key: str
    ) -> PaymentMethodSummary | None:
        with translate.translated(not_found=CheckoutNotFound):
            session = self._client.v1.checkout.sessions.retrieve(
                setup_id, {"expand": ["setup_intent.payment_method"]}
            ).to_dict()
        if translate.ref(session.get("customer")) != customer_ref:
            raise CheckoutNotFound()  # another customer's session does not exist for this one
        if session.get("mode") != "setup":
            raise GatewayRejected("That checkout session did not collect a payment method.")
        intent = translate.expanded(session.get("setup_intent"))
        if session.get("status") != "complete" or intent is None:
            return None
        method = translate.expanded(intent.get("payment_method"))
        summary = translate.card_summary(method)
        if method is None or summary is None:
            return None
        customer = customer_ref
        params: CustomerUpdateParams = {
            "invoice_settings": {"default_payment_method": str(method["id"])},
            "expand": ["subscriptions"],
        }
        with translate.translated():
            updated = self._client.v1.customers.update(
                customer, params, {"idempotency_key": f"{idempotency_key}:customer"}
            ).to_dict()
        # Checkout sets the subscription's own default, which wins over the customer's:
        # move every live subscription that has one to the new method as well.
        subs = (translate.expanded(updated.get("subscriptions")) or {}).get("data") or []
        for sub in subs:
            own = translate.ref(sub.get("default_payment_method"))
            if own is not None and own != method["id"]:
                with translate.translated():
                    self._client.v1.subscriptions.update(
                        str(sub["id"]),
                        {"default_payment_method": str(method["id"])},
                        {"idempotency_key": f"{idempotency_key}:subscription:{sub['id']}"},
                    )
        return summary

    def use_customer_payment_method(
        self, *, subscription_ref: str, idempotency_key: str
    ) -> GatewaySubscription:
        # The portal's card update sets only the customer's `invoice_settings` default, while
        # Checkout gave the subscription a default of its own, which wins: without this the
        # next renewal would still charge the old card. Clearing the subscription's own (not
        # copying the new one into it) lets later portal updates apply by themselves.
        sub = self._read_subscription(subscription_ref)
        customer = translate.expanded(sub.get("customer")) or {}
        wanted = translate.ref(
            (translate.expanded(customer.get("invoice_settings")) or {}).get(
                "default_payment_method"
            )
        )
        own = translate.ref(sub.get("default_payment_method"))
        if (
            wanted is None
            or own is None
            or own == wanted
            or not translate.subscription_is_live(sub)
        ):
            return self._view(sub)
        updated = self._update_subscription(
            subscription_ref, {"default_payment_method": ""}, f"{idempotency_key}:follow"
        )
        return self._view(updated)
