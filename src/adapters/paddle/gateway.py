"""The Paddle payment gateway: `application.ports.PaymentGateway` on one injected SDK client.

Paddle takes no idempotency key, so every write is made safe to retry from our side:
- creations first look for what an earlier attempt of the same command made (a customer by
  its email, a checkout transaction by the command key in its `custom_data`, a refund by the
  command key in its reason) and create only when there is none;
- changes read the subscription first and write only if it is not already as asked
  (read-compare-write): a retried upgrade finds the new price in place and charges nothing.

`PaddleGateway` is put together from one part per row of the help article, each in its own
module on the shared `base.PaddleBase`:

- `checkout.CheckoutAndPortal`: the customer, the checkout transaction and the portal;
- `payment_methods.PaymentMethods`: the card a subscription charges;
- `plan_changes.PlanChanges`: the preview, the upgrade and the core's downgrade;
- `cancellation.Cancellation`: cancelling at the period end, resuming, cancelling now;
- `invoices.Invoices`: the invoice list, one invoice and a refund.

The catalog's active price ids, and the retry when Paddle refuses an archived one, are
`prices.PaddlePrices`. The subscription reads are here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from responseiq_billing.adapters.paddle.base import PaddleOptions
from responseiq_billing.adapters.paddle.cancellation import Cancellation
from responseiq_billing.adapters.paddle.checkout import CheckoutAndPortal
from responseiq_billing.adapters.paddle.invoices import Invoices
from responseiq_billing.adapters.paddle.payment_methods import PaymentMethods
from responseiq_billing.adapters.paddle.plan_changes import PlanChanges
from responseiq_billing.adapters.paddle.prices import MAX_PAGE
from responseiq_billing.application.ports import PaymentGateway, ScheduledChanges
from responseiq_billing.domain.plans import Interval
from responseiq_billing.domain.subscription import GatewaySubscription

__all__ = ["MAX_PAGE", "PaddleGateway", "PaddleOptions"]


class PaddleGateway(CheckoutAndPortal, PaymentMethods, PlanChanges, Cancellation, Invoices):
    """Implements `application.ports.PaymentGateway` against Paddle Billing's API.

    Built as `PaddleGateway(client, catalog, clock, options=None)` (`base.PaddleBase`).
    """

    # Paddle cannot schedule an item change: the core keeps a downgrade and applies it with
    # `apply_plan_for_renewal` (do_not_bill) shortly before the renewal.
    scheduled_changes = ScheduledChanges.CORE
    # `GET /transactions/{id}/invoice` signs a link that expires within the hour.
    invoice_links_expire = True

    @property
    def price_entries(self) -> Mapping[str, tuple[str, Interval]]:
        """Paddle price id -> (plan, interval) for the catalog prices loaded so far.

        Never a request: webhook decoding (`adapters.paddle.webhooks`) is pure. A price in an
        event maps by its own `custom_data` first; this is what the gateway already knows.
        """
        return self._pricing.entries()

    # -- reading -----------------------------------------------------------------------------

    def use_customer_payment_method(
        self, *, subscription_ref: str, idempotency_key: str
    ) -> GatewaySubscription:
        # Paddle keeps the payment method on the subscription, and its update page changes it
        # there: there is no customer default to follow.
        del idempotency_key
        return self.get_subscription(subscription_ref)

    def get_subscription(self, subscription_ref: str) -> GatewaySubscription:
        return self._view(self._read(subscription_ref))

    def list_subscriptions(self, customer_ref: str) -> Sequence[GatewaySubscription]:
        return [self._view(sub) for sub in self._subscriptions(customer_ref)]


def _implements_port(gateway: PaddleGateway) -> PaymentGateway:
    """Never called: mypy checks here that PaddleGateway keeps every signature of the port."""
    return gateway
