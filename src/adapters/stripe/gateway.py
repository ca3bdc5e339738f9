"""The Stripe payment gateway: `application.ports.PaymentGateway` on one injected StripeClient.

`StripeGateway` is put together from one part per row of the help article, each in its own
module on the shared `base.StripeBase`:

- `checkout.CheckoutAndPortal`: the customer, Checkout and the Billing Portal;
- `payment_methods.PaymentMethods`: a new card and the default that the next charge uses;
- `plan_changes.PlanChanges`: the preview, the upgrade and the scheduled downgrade;
- `cancellation.Cancellation`: cancelling at the period end, resuming, cancelling now;
- `invoices.Invoices`: the invoice list, one invoice and a refund.

The catalog's current price ids, and the retry when Stripe refuses a retired one, are
`prices.StripePrices`. The subscription reads are here.
"""

from __future__ import annotations

from collections.abc import Sequence

from responseiq_billing.adapters.stripe import translate
from responseiq_billing.adapters.stripe.base import MAX_PAGE, SUBSCRIPTION_EXPAND, StripeOptions
from responseiq_billing.adapters.stripe.cancellation import Cancellation
from responseiq_billing.adapters.stripe.checkout import CheckoutAndPortal
from responseiq_billing.adapters.stripe.invoices import Invoices
from responseiq_billing.adapters.stripe.payment_methods import PaymentMethods
from responseiq_billing.adapters.stripe.plan_changes import PlanChanges
from responseiq_billing.adapters.stripe.prices import PRICE_MAP_MAX_AGE
from responseiq_billing.application.ports import PaymentGateway, ScheduledChanges
from responseiq_billing.domain.subscription import GatewaySubscription

__all__ = [
    "MAX_PAGE",
    "PRICE_MAP_MAX_AGE",
    "SUBSCRIPTION_EXPAND",
    "StripeGateway",
    "StripeOptions",
]


class StripeGateway(CheckoutAndPortal, PaymentMethods, PlanChanges, Cancellation, Invoices):
    """Implements `application.ports.PaymentGateway` against Stripe's API.

    Built as `StripeGateway(client, catalog, clock, options=None)` (`base.StripeBase`).
    Request counts per action are pinned by `tests/stripe/test_request_log.py` and listed in
    `docs/adr/0005-stripe-adapter.md`.
    """

    # Stripe schedules a downgrade itself (a subscription schedule's second phase).
    scheduled_changes = ScheduledChanges.GATEWAY
    invoice_links_expire = False  # an invoice's `invoice_pdf` lasts

    # -- reading -----------------------------------------------------------------------------

    def get_subscription(self, subscription_ref: str) -> GatewaySubscription:
        return self._view(self._read_subscription(subscription_ref))

    def list_subscriptions(self, customer_ref: str) -> Sequence[GatewaySubscription]:
        with translate.translated():
            page = self._client.v1.subscriptions.list(
                {
                    "customer": customer_ref,
                    "status": "all",
                    "limit": MAX_PAGE,
                    "expand": [f"data.{field}" for field in SUBSCRIPTION_EXPAND],
                }
            )
            subs = [sub.to_dict() for sub in page.auto_paging_iter()]
        return [self._view(sub) for sub in subs]


def _implements_port(gateway: StripeGateway) -> PaymentGateway:
    """Never called: mypy checks here that StripeGateway keeps every signature of the port."""
    return gateway
