"""The Paddle payment gateway: `application.ports.PaymentGateway` on one injected SDK client.

Paddle takes no idempotency key, so every write is made safe to retry from our side:
- creations first look for what an earlier attempt of the same command made (a customer by
  its email, a checkout transaction by the command key in its `custom_data`, a refund by the
  command key in its reason) and create only when there is none;
- changes read the subscription first and write only if it is not already as asked
  (read-compare-write): a retried upgrade finds the new price in place and charges nothing.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import TypeVar

import attrs
from paddle_billing import Client
from paddle_billing.Entities.Shared import CustomData, TransactionStatus
from paddle_billing.Entities.Subscription import Subscription as PaddleSubscription
from paddle_billing.Entities.SubscriptionPreview import SubscriptionPreview
from paddle_billing.Entities.Subscriptions import (
    SubscriptionEffectiveFrom,
    SubscriptionOnPaymentFailure,
    SubscriptionProrationBillingMode,
)
from paddle_billing.Entities.Transaction import Transaction
from paddle_billing.Resources.Adjustments.Operations import CreateAdjustment, ListAdjustments
from paddle_billing.Resources.CustomerPortalSessions.Operations import (
    CreateCustomerPortalSession,
)
from paddle_billing.Resources.Customers.Operations import CreateCustomer, ListCustomers
from paddle_billing.Resources.Prices.Operations import ListPrices
from paddle_billing.Resources.Shared.Operations import Pager
from paddle_billing.Resources.Shared.Operations.List.OrderBy import OrderBy
from paddle_billing.Resources.Subscriptions.Operations import (
    CancelSubscription,
    ListSubscriptions,
    PreviewUpdateSubscription,
    UpdateSubscription,
)
from paddle_billing.Resources.Subscriptions.Operations.Update import SubscriptionUpdateItem
from paddle_billing.Resources.Transactions.Operations import (
    CreateTransaction,
    ListTransactions,
    UpdateTransaction,
)
from paddle_billing.Resources.Transactions.Operations.Create import TransactionCreateItem
from paddle_billing.Resources.Transactions.Operations.List.Origin import Origin

from responseiq_billing.adapters.paddle import translate
from responseiq_billing.application.ports import (
    CheckoutOutcome,
    CheckoutSession,
    CheckoutStatus,
    Clock,
    PaymentGateway,
    PortalFlow,
    PortalSession,
    Refund,
    ScheduledChanges,
    SetupSession,
    UiMode,
)
from responseiq_billing.domain.errors import (
    CheckoutNotFound,
    GatewayRejected,
    InvoiceNotFound,
    QuoteMismatch,
    SubscriptionNotFound,
)
from responseiq_billing.domain.invoices import Invoice, InvoicePage
from responseiq_billing.domain.money import Money
from responseiq_billing.domain.plans import Catalog, Interval, PlanPrice
from responseiq_billing.domain.subscription import GatewaySubscription, PaymentMethodSummary

MAX_PAGE = 200  # Paddle's largest per_page for transactions and subscriptions
_OPEN = ("draft", "ready")
_DONE = ("paid", "completed", "billed")
_LIVE_SUBSCRIPTION = ("active", "trialing", "past_due", "paused")

T = TypeVar("T")


@attrs.frozen
class PaddleOptions:
    """Settings of the adapter that are not the client's (which holds key, base and retries).

    `customer_email_domain`: Paddle requires an e-mail per customer and, as merchant of
    record, sends receipts to it. The port gives only an account id, so the adapter files
    each customer under `acct-<hash>@<domain>` until the host passes a real address.
    """

    customer_email_domain: str = "customers.responseiq.app"


class PaddleGateway:
    """Implements `application.ports.PaymentGateway` against Paddle Billing's API."""

    # Paddle cannot schedule an item change: the core keeps a downgrade and applies it with
    # `apply_plan_for_renewal` (do_not_bill) shortly before the renewal.
    scheduled_changes = ScheduledChanges.CORE
    # `GET /transactions/{id}/invoice` signs a link that expires within the hour.
    invoice_links_expire = True

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
        self._prices: dict[tuple[str, Interval], str] = {}
        self._created: dict[str, datetime] = {}  # Paddle's `created_at` of each current price
        self._generation = 0  # how many times the current prices have been listed
        self._lock = threading.Lock()

    # -- prices ----------------------------------------------------------------------------

    def _load_prices(self) -> None:
        """The catalog's active prices, by the plan and interval setup wrote in custom_data.
        Called with the lock held."""
        with translate.translated():
            page = self._client.prices.list(
                ListPrices(pager=Pager(per_page=MAX_PAGE), statuses=[_active()])
            )
        prices: dict[tuple[str, Interval], str] = {}
        created: dict[str, datetime] = {}
        for entity in page.items:
            entry = translate.price_entry(entity)
            if entry is not None:
                prices[entry] = entity.id
                created[entity.id] = translate.utc(entity.created_at)
        self._prices, self._created = prices, created
        self._generation += 1

    def _price_id(self, price: PlanPrice) -> str:
        """The catalog entry's active price: listed on first use and again on a miss (setup
        may have made it since). A price archived since it was listed is found out when Paddle
        refuses it (`_priced`)."""
        entry = (price.plan_id, price.interval)
        with self._lock:
            if entry not in self._prices:
                self._load_prices()
            found = self._prices.get(entry)
        if found is None:
            raise GatewayRejected(
                f"Paddle has no active price for {price.plan_id}/{price.interval.value}; "
                "run `billing paddle setup`."
            )
        return found

    def _priced(self, entry: tuple[str, Interval], send: Callable[[str], T], since: int) -> T:
        """`send(price_id)` with the entry's price as listed. When Paddle refuses that price as
        not found (`billing paddle setup` archived it since and made another), the map is a
        miss: the active prices are listed again, at most once per call (not when they have
        been listed since `since`, the call's starting `_generation`), and `send` runs once
        more with the new id. Paddle takes no idempotency key; each `send` is safe to repeat
        by itself (a checkout is looked up by its command key, a change is read-compare-write)."""
        first = self._prices[entry]
        try:
            return send(first)
        except GatewayRejected as error:
            if not translate.refused_price(error):
                raise
            with self._lock:
                if self._generation == since:
                    self._load_prices()
                fresh = self._prices.get(entry)
            if fresh is None or fresh == first:
                raise
        return send(fresh)

    def _check_quote(self, price_id: str, proration_at: datetime) -> None:
        """A preview made before the target's current price existed was for another price:
        refused, not charged at another amount (Stripe's adapter does the same)."""
        created = self._created.get(price_id)
        if created is not None and created > translate.utc(proration_at):
            raise QuoteMismatch(
                "The price of this plan changed after the preview; preview the change again."
            )

    @property
    def price_entries(self) -> Mapping[str, tuple[str, Interval]]:
        """Paddle price id -> (plan, interval) for the catalog prices loaded so far.

        Never a request: webhook decoding (`adapters.paddle.webhooks`) is pure. A price in an
        event maps by its own `custom_data` first; this is what the gateway already knows.
        """
        with self._lock:
            return {price_id: entry for entry, price_id in self._prices.items()}

    # -- helpers ---------------------------------------------------------------------------

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

    def _email(self, account_id: str) -> str:
        digest = hashlib.sha256(account_id.encode()).hexdigest()[:24]
        return f"acct-{digest}@{self._options.customer_email_domain}"

    # -- customers and checkout ------------------------------------------------------------

    def ensure_customer(self, account_id: str, *, idempotency_key: str) -> str:
        email = self._email(account_id)
        with translate.translated():
            found = self._client.customers.list(ListCustomers(emails=[email]))
            for customer in found.items:
                return str(customer.id)
            created = self._client.customers.create(
                CreateCustomer(
                    email=email,
                    custom_data=CustomData(
                        {translate.ACCOUNT_KEY: account_id, translate.COMMAND_KEY: idempotency_key}
                    ),
                )
            )
        return str(created.id)

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
        # The return pages are Paddle.js settings of the payment-link page (`successUrl`), not
        # fields of the transaction; the transaction's checkout.url opens that page.
        del success_url, cancel_url
        self._price_id(price)
        since = self._generation
        txn = self._find_open_checkout(customer_ref, idempotency_key)
        if txn is None:

            def create(price_id: str) -> Transaction:
                with translate.translated():
                    return self._client.transactions.create(
                        CreateTransaction(
                            items=[TransactionCreateItem(price_id=price_id, quantity=1)],
                            customer_id=customer_ref,
                            custom_data=CustomData(
                                {
                                    translate.ACCOUNT_KEY: account_id,
                                    translate.COMMAND_KEY: idempotency_key,
                                }
                            ),
                        )
                    )

            txn = self._priced((price.plan_id, price.interval), create, since)
        url = txn.checkout.url if txn.checkout else None
        return CheckoutSession(
            id=txn.id,
            url=url if ui_mode is UiMode.HOSTED else None,
            # Paddle.js opens an inline checkout from the transaction id.
            client_secret=txn.id if ui_mode is UiMode.EMBEDDED else None,
            expires_at=None,  # Paddle's transactions do not expire by themselves
        )

    def _find_open_checkout(self, customer_ref: str, key: str) -> Transaction | None:
        with translate.translated():
            page = self._client.transactions.list(
                ListTransactions(
                    pager=Pager(order_by=OrderBy("created_at", "desc"), per_page=MAX_PAGE),
                    customer_ids=[customer_ref],
                    statuses=[TransactionStatus.Draft, TransactionStatus.Ready],
                )
            )
        for txn in page.items:
            if translate.custom(txn).get(translate.COMMAND_KEY) == key:
                return txn
        return None

    def _checkout_txn(self, checkout_id: str) -> Transaction:
        with translate.translated(not_found=CheckoutNotFound):
            txn = self._client.transactions.get(checkout_id)
        if translate.value(txn.origin) not in ("web", "api"):
            raise CheckoutNotFound()
        return txn

    def get_checkout(self, checkout_id: str) -> CheckoutOutcome:
        txn = self._checkout_txn(checkout_id)
        status = _checkout_status(txn)
        view = None
        if status is CheckoutStatus.COMPLETE and txn.subscription_id:
            view = self._view(self._read(txn.subscription_id))
        account = translate.custom(txn).get(translate.ACCOUNT_KEY)
        return CheckoutOutcome(
            id=txn.id,
            status=status,
            account_id=account if isinstance(account, str) else None,
            customer_ref=txn.customer_id,
            subscription=view,
        )

    def expire_checkout(self, checkout_id: str, *, idempotency_key: str) -> CheckoutStatus:
        txn = self._checkout_txn(checkout_id)
        if _checkout_status(txn) is not CheckoutStatus.OPEN:
            return _checkout_status(txn)
        with translate.translated(not_found=CheckoutNotFound):
            txn = self._client.transactions.update(
                checkout_id, UpdateTransaction(status=TransactionStatus.Canceled)
            )
        return _checkout_status(txn)

    def open_portal(
        self,
        *,
        customer_ref: str,
        return_url: str,
        flow: PortalFlow | None,
        subscription_ref: str | None,
        idempotency_key: str,
    ) -> PortalSession:
        # A portal session only hands out links; creating another on a retry is harmless.
        # Paddle's portal has no return URL and no plan-change flow: SUBSCRIPTION_UPDATE opens
        # the overview, where the customer sees the subscription.
        del return_url, idempotency_key
        ids = [subscription_ref] if subscription_ref else []
        with translate.translated():
            session = self._client.customer_portal_sessions.create(
                customer_ref, CreateCustomerPortalSession(subscription_ids=ids)
            )
        url = session.urls.general.overview
        deep = next((u for u in session.urls.subscriptions if u.id == subscription_ref), None)
        if deep is not None and flow is PortalFlow.PAYMENT_METHOD_UPDATE:
            url = deep.update_subscription_payment_method
        elif deep is not None and flow is PortalFlow.SUBSCRIPTION_CANCEL:
            url = deep.cancel_subscription
        return PortalSession(id=session.id, url=url)

    # -- payment methods ---------------------------------------------------------------------

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

    # -- plan changes ------------------------------------------------------------------------

    def preview_plan_change(
        self, *, subscription_ref: str, target: PlanPrice, proration_at: datetime
    ) -> Money:
        # Paddle prorates at the moment of the request; it takes no proration date.
        del proration_at
        self._price_id(target)
        since = self._generation

        def preview_update(price_id: str) -> SubscriptionPreview:
            with translate.translated(not_found=SubscriptionNotFound):
                return self._client.subscriptions.preview_update(
                    subscription_ref,
                    PreviewUpdateSubscription(
                        items=[SubscriptionUpdateItem(price_id=price_id, quantity=1)],
                        proration_billing_mode=SubscriptionProrationBillingMode.ProratedImmediately,
                    ),
                )

        preview = self._priced((target.plan_id, target.interval), preview_update, since)
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
        price_id = self._price_id(target)
        since = self._generation
        sub = self._read(subscription_ref)
        # Read-compare-write: a retry finds the plan in place (at any of its prices, one
        # retired since included) and charges nothing.
        if self._current_entry(sub) != entry:
            self._check_quote(price_id, proration_at)

            def update(price_id: str) -> PaddleSubscription:
                self._check_quote(price_id, proration_at)  # the retry's price may be newer
                return self._update(
                    subscription_ref,
                    UpdateSubscription(
                        items=[SubscriptionUpdateItem(price_id=price_id, quantity=1)],
                        proration_billing_mode=SubscriptionProrationBillingMode.ProratedImmediately,
                        on_payment_failure=SubscriptionOnPaymentFailure.PreventChange,
                    ),
                )

            sub = self._priced(entry, update, since)
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
        self._price_id(target)
        since = self._generation
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

            sub = self._priced(entry, update, since)
        return self._view(sub)

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

    def refund_invoice(self, *, invoice_id: str, idempotency_key: str) -> Refund:
        # A full refund is an adjustment; our key rides in its reason, so a retry finds it.
        reason = f"Refund requested by the billing service ({idempotency_key})"
        with translate.translated():
            existing = self._client.adjustments.list(
                ListAdjustments(transaction_ids=[invoice_id], action=_refund_action())
            )
        for adjustment in existing.items:
            if translate.value(adjustment.status) in ("rejected", "reversed"):
                continue
            if adjustment.reason == reason:
                return _refund(adjustment, invoice_id)
            raise GatewayRejected("That invoice has been refunded already.")
        with translate.translated():
            adjustment = self._client.adjustments.create(
                CreateAdjustment.full(
                    action=_refund_action(), reason=reason, transaction_id=invoice_id
                )
            )
        return _refund(adjustment, invoice_id)

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

    def _subscriptions(self, customer_ref: str) -> list[PaddleSubscription]:
        with translate.translated():
            page = self._client.subscriptions.list(
                ListSubscriptions(
                    pager=Pager(order_by=OrderBy.id_descending(), per_page=MAX_PAGE),
                    customer_ids=[customer_ref],
                )
            )
        return list(page.items)

    def list_subscriptions(self, customer_ref: str) -> Sequence[GatewaySubscription]:
        return [self._view(sub) for sub in self._subscriptions(customer_ref)]

    def _pdf_url(self, txn: Transaction) -> str | None:
        # A short-lived signed link; fetched per invoice since Paddle keeps no lasting one.
        with translate.translated():
            url = self._client.transactions.get_invoice_pdf(txn.id).url
        return str(url) if url else None

    def list_invoices(
        self, *, customer_ref: str, limit: int, starting_after: str | None
    ) -> InvoicePage:
        with translate.translated(not_found=InvoiceNotFound):
            page = self._client.transactions.list(
                ListTransactions(
                    pager=Pager(
                        after=starting_after,
                        order_by=OrderBy("created_at", "desc"),
                        per_page=min(limit, MAX_PAGE),
                    ),
                    customer_ids=[customer_ref],
                    statuses=[TransactionStatus(s) for s in translate.INVOICE_STATUSES],
                    origins=[Origin(o) for o in translate.INVOICE_ORIGINS],
                )
            )
        items = tuple(
            translate.invoice(txn, self._pdf_url(txn))
            for txn in page.items
            if translate.is_invoice(txn)
        )
        return InvoicePage(items=items, has_more=bool(page.paginator and page.paginator.has_more))

    def get_invoice(self, invoice_id: str) -> Invoice:
        with translate.translated(not_found=InvoiceNotFound):
            txn = self._client.transactions.get(invoice_id)
        if not translate.is_invoice(txn):
            raise InvoiceNotFound()
        return translate.invoice(txn, self._pdf_url(txn))


def _checkout_status(txn: Transaction) -> CheckoutStatus:
    status = translate.value(txn.status)
    if status in _OPEN:
        return CheckoutStatus.OPEN
    if status == "canceled":
        return CheckoutStatus.EXPIRED
    return CheckoutStatus.COMPLETE


def _active() -> object:
    from paddle_billing.Entities.Shared import Status

    return Status.Active


def _refund_action() -> object:
    from paddle_billing.Entities.Shared import Action

    return Action.Refund


def _refund(adjustment: object, invoice_id: str) -> Refund:
    totals = adjustment.totals  # type: ignore[attr-defined]
    return Refund(
        id=adjustment.id,  # type: ignore[attr-defined]
        invoice_id=invoice_id,
        amount=translate.money(totals.total, adjustment.currency_code),  # type: ignore[attr-defined]
    )


def _implements_port(gateway: PaddleGateway) -> PaymentGateway:
    """Never called: mypy checks here that PaddleGateway keeps every signature of the port."""
    return gateway
