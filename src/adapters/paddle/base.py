"""What every part of the Paddle gateway shares: the client, the prices and a subscription's
reads and writes. `gateway.PaddleGateway` is composed of the parts built on `PaddleBase`, one
module per row of the help article (checkout, payment methods, plan changes, cancellation,
invoices)."""

from __future__ import annotations

from datetime import datetime

import attrs
from paddle_billing import Client
from paddle_billing.Entities.Shared import TransactionStatus
from paddle_billing.Entities.Subscription import Subscription as PaddleSubscription
from paddle_billing.Resources.Shared.Operations import Pager
from paddle_billing.Resources.Shared.Operations.List.OrderBy import OrderBy
from paddle_billing.Resources.Subscriptions.Operations import ListSubscriptions, UpdateSubscription
from paddle_billing.Resources.Transactions.Operations import ListTransactions

from responseiq_billing.adapters.paddle import translate
from responseiq_billing.adapters.paddle.prices import MAX_PAGE, PaddlePrices
from responseiq_billing.application.ports import Clock
from responseiq_billing.domain.errors import SubscriptionNotFound
from responseiq_billing.domain.plans import Catalog, Interval
from responseiq_billing.domain.subscription import GatewaySubscription, PaymentMethodSummary


@attrs.frozen
class PaddleOptions:
    """Settings of the adapter that are not the client's (which holds key, base and retries).

    `customer_email_domain`: Paddle requires an e-mail per customer and, as merchant of
    record, sends receipts to it. The port gives only an account id, so the adapter files
    each customer under `acct-<hash>@<domain>` until the host passes a real address.
    """

    customer_email_domain: str = "customers.responseiq.app"


class PaddleBase:
    """The gateway's state and the helpers its parts share; no port method lives here."""

    def __init__(
        self,
        client: Client,
        catalog: Catalog,
        clock: Clock,
        options: PaddleOptions | None = None,
    ) -> None:
        self._client = client
        self._catalog = catalog
        self._clock = clock
        self._options = options or PaddleOptions()
        self._pricing = PaddlePrices(client)

    def _as_of(self) -> datetime:
        return self._clock.now().replace(microsecond=0)

    def _read(self, subscription_ref: str) -> PaddleSubscription:
        with translate.translated(not_found=SubscriptionNotFound):
            return self._client.subscriptions.get(subscription_ref)

    def _card(self, subscription_ref: str) -> PaymentMethodSummary | None:
        """The card of the subscription's newest captured payment: the one Paddle charges next
        (a completed payment-method-change transaction replaces it at once)."""
        with translate.translated():
            page = self._client.transactions.list(
                ListTransactions(
                    pager=Pager(order_by=OrderBy("created_at", "desc"), per_page=5),
                    subscription_ids=[subscription_ref],
                    statuses=[TransactionStatus.Completed],
                )
            )
        for txn in page.items:
            found = translate.card_summary(txn)
            if found is not None:
                return found
        return None

    def _view(self, sub: PaddleSubscription) -> GatewaySubscription:
        return translate.subscription_view(
            sub, payment_method=self._card(sub.id), as_of=self._as_of()
        )

    def _update(self, subscription_ref: str, operation: UpdateSubscription) -> PaddleSubscription:
        with translate.translated(not_found=SubscriptionNotFound):
            return self._client.subscriptions.update(subscription_ref, operation)

    def _current_entry(self, sub: PaddleSubscription) -> tuple[str, Interval] | None:
        """The plan and interval the subscription pays for now, at whichever of its prices."""
        return translate.price_entry(sub.items[0].price) if sub.items else None

    def _subscriptions(self, customer_ref: str) -> list[PaddleSubscription]:
        with translate.translated():
            page = self._client.subscriptions.list(
                ListSubscriptions(
                    pager=Pager(order_by=OrderBy.id_descending(), per_page=MAX_PAGE),
                    customer_ids=[customer_ref],
                )
            )
        return list(page.items)
