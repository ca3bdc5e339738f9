"""What every part of the Stripe gateway shares: the client, the prices and a subscription's
reads and writes. `gateway.StripeGateway` is composed of the parts built on `StripeBase`, one
module per row of the help article (checkout, payment methods, plan changes, cancellation,
invoices)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs
import stripe
from stripe.params import SubscriptionUpdateParams

from responseiq_billing.adapters.stripe import translate
from responseiq_billing.adapters.stripe.prices import StripePrices
from responseiq_billing.application.ports import Clock
from responseiq_billing.domain.errors import SubscriptionNotFound
from responseiq_billing.domain.plans import Catalog
from responseiq_billing.domain.subscription import GatewaySubscription

# What a subscription read expands so one request yields the whole view: the schedule (for
# the pending change) and the payment method the next charge uses (the subscription's own
# default wins over the customer's, so both are needed).
SUBSCRIPTION_EXPAND = [
    "schedule",
    "default_payment_method",
    "customer.invoice_settings.default_payment_method",
]
# Stripe's list endpoints return at most 100 objects per page.
MAX_PAGE = 100


@attrs.frozen
class StripeOptions:
    """Settings of the adapter that are not the client's (which holds key, base and retries)."""

    portal_configuration: str | None = None


class StripeBase:
    """The gateway's state and the helpers its parts share; no port method lives here."""

    def __init__(
        self,
        client: stripe.StripeClient,
        catalog: Catalog,
        clock: Clock,
        options: StripeOptions | None = None,
    ) -> None:
        self._client = client
        self._catalog = catalog
        self._clock = clock
        self._options = options or StripeOptions()
        self._pricing = StripePrices(client, catalog, clock)
        self._prices = self._pricing.map  # one map, refreshed in place by `_pricing`

    @property
    def prices(self) -> translate.PriceMap:
        """The price map, loaded on first use (webhook translation reads it too)."""
        self._load_prices()
        return self._prices

    def _load_prices(self, *, force: bool = False) -> None:
        """Lists the current prices when they are due (`StripePrices.load`)."""
        self._pricing.load(force=force)

    def _view(self, sub: Mapping[str, Any], schedule: object = None) -> GatewaySubscription:
        # No price listing here: an item's price object names its plan itself (`price_entry`).
        # Stripe stamps events in whole seconds: a read stamped 12:00:00.7 would make a change
        # at 12:00:00 (really later) look older and be skipped. Whole seconds make it a tie,
        # and a tie that differs is re-read from Stripe (`ApplyGatewayEvent`).
        as_of = self._clock.now().replace(microsecond=0)
        return translate.subscription_view(sub, self._prices, as_of=as_of, schedule=schedule)

    def _read_subscription(self, subscription_ref: str) -> dict[str, Any]:
        with translate.translated(not_found=SubscriptionNotFound):
            sub = self._client.v1.subscriptions.retrieve(
                subscription_ref, {"expand": SUBSCRIPTION_EXPAND}
            )
        return sub.to_dict()

    def _update_subscription(
        self, subscription_ref: str, params: SubscriptionUpdateParams, key: str
    ) -> dict[str, Any]:
        params["expand"] = [*SUBSCRIPTION_EXPAND, *params.get("expand", [])]
        with translate.translated(not_found=SubscriptionNotFound):
            sub = self._client.v1.subscriptions.update(
                subscription_ref, params, {"idempotency_key": key}
            )
        return sub.to_dict()

    def _release_schedule(self, sub: Mapping[str, Any], key: str) -> None:
        schedule = translate.ref(sub.get("schedule"))
        if schedule is None:
            return
        with translate.translated():
            self._client.v1.subscription_schedules.release(
                schedule, options={"idempotency_key": f"{key}:release"}
            )
