"""Starting a subscription: the Stripe customer, the Checkout session and the portal."""

from __future__ import annotations

import stripe
from stripe.params.billing_portal import SessionCreateParams as PortalSessionCreateParams
from stripe.params.checkout import SessionCreateParams as CheckoutSessionCreateParams

from responseiq_billing.adapters.stripe import translate
from responseiq_billing.adapters.stripe.base import SUBSCRIPTION_EXPAND, StripeBase
from responseiq_billing.application.ports import (
    CheckoutOutcome,
    CheckoutSession,
    CheckoutStatus,
    PortalFlow,
    PortalSession,
    UiMode,
)
from responseiq_billing.domain.errors import CheckoutNotFound, GatewayRejected
from responseiq_billing.domain.plans import PlanPrice


class CheckoutAndPortal(StripeBase):
    """Customers, Checkout sessions and Billing Portal sessions."""

    def ensure_customer(self, account_id: str, *, idempotency_key: str) -> str:
        with translate.translated():
            customer = self._client.v1.customers.create(
                {"metadata": {"account_id": account_id}},
                {"idempotency_key": idempotency_key},
            )
        return customer.id

    def start_checkout(
        self,
        *,
        customer_ref: str,
        account_id: str,
        price: PlanPrice,
        success_url: str,
        cancel_url: str,
        ui_mode: UiMode,
        idempotency_key: str,
    ) -> CheckoutSession:
        price_id = self._pricing.price_id(price)
        since = self._pricing.generation

        def create(price_id: str) -> stripe.checkout.Session:
            params: CheckoutSessionCreateParams = {
                "mode": "subscription",
                "customer": customer_ref,
                "client_reference_id": account_id,
                "line_items": [{"price": price_id, "quantity": 1}],
                "subscription_data": {
                    "metadata": {"account_id": account_id},
                    # At the pinned API version a new subscription defaults to `flexible`
                    # billing; our preview and the domain's proration (ADR 0002) are `classic`
                    # arithmetic, so the mode is chosen here, not left to the default (ADR 0005).
                    "billing_mode": {"type": "classic"},
                },
            }
            if ui_mode is UiMode.HOSTED:
                params["ui_mode"] = "hosted_page"
                params["success_url"] = success_url
                params["cancel_url"] = cancel_url
            else:
                # An embedded page has no cancel button of ours; Stripe returns to `return_url`.
                params["ui_mode"] = "embedded_page"
                params["return_url"] = success_url
            with translate.translated():
                return self._client.v1.checkout.sessions.create(
                    params, {"idempotency_key": f"{idempotency_key}:{price_id}"}
                )

        session = self._pricing.priced(price_id, create, since=since, where="line_items")
        return CheckoutSession(
            id=session.id,
            url=session.url if ui_mode is UiMode.HOSTED else None,
            client_secret=session.client_secret if ui_mode is UiMode.EMBEDDED else None,
            expires_at=translate.ts(session.expires_at) if session.expires_at else None,
        )

    def get_checkout(self, checkout_id: str) -> CheckoutOutcome:
        with translate.translated(not_found=CheckoutNotFound):
            session = self._client.v1.checkout.sessions.retrieve(
                checkout_id,
                {"expand": [f"subscription.{field}" for field in SUBSCRIPTION_EXPAND]},
            ).to_dict()
        sub = translate.expanded(session.get("subscription"))
        return CheckoutOutcome(
            id=str(session["id"]),
            status=CheckoutStatus(session.get("status") or "open"),
            account_id=session.get("client_reference_id"),
            customer_ref=translate.ref(session.get("customer")),
            subscription=self._view(sub) if sub is not None else None,
        )

    def expire_checkout(self, checkout_id: str, *, idempotency_key: str) -> CheckoutStatus:
        try:
            with translate.translated(not_found=CheckoutNotFound):
                session = self._client.v1.checkout.sessions.expire(
                    checkout_id, options={"idempotency_key": idempotency_key}
                )
            return CheckoutStatus(session.status or "expired")
        except GatewayRejected:
            # Stripe expires only open sessions: one completed or expired already is read, and
            # left as it is.
            with translate.translated(not_found=CheckoutNotFound):
                status = self._client.v1.checkout.sessions.retrieve(checkout_id).status
            if status is None or status == "open":
                raise
            return CheckoutStatus(status)

    def open_portal(
        self,
        *,
        customer_ref: str,
        return_url: str,
        flow: PortalFlow | None,
        subscription_ref: str | None,
        idempotency_key: str,
    ) -> PortalSession:
        params: PortalSessionCreateParams = {"customer": customer_ref, "return_url": return_url}
        if self._options.portal_configuration:
            params["configuration"] = self._options.portal_configuration
        if flow is PortalFlow.PAYMENT_METHOD_UPDATE:
            params["flow_data"] = {"type": "payment_method_update"}
        elif flow is PortalFlow.SUBSCRIPTION_UPDATE and subscription_ref:
            params["flow_data"] = {
                "type": "subscription_update",
                "subscription_update": {"subscription": subscription_ref},
            }
        elif flow is PortalFlow.SUBSCRIPTION_CANCEL and subscription_ref:
            params["flow_data"] = {
                "type": "subscription_cancel",
                "subscription_cancel": {"subscription": subscription_ref},
            }
        # A subscription deep link without a subscription opens the portal's home page.
        with translate.translated():
            session = self._client.v1.billing_portal.sessions.create(
                params, {"idempotency_key": idempotency_key}
            )
        return PortalSession(id=session.id, url=session.url)
