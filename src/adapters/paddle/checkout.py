"""Starting a subscription on Paddle: the customer, the checkout transaction and the portal."""

from __future__ import annotations

import hashlib

from paddle_billing.Entities.Shared import CustomData, TransactionStatus
from paddle_billing.Entities.Transaction import Transaction
from paddle_billing.Resources.CustomerPortalSessions.Operations import CreateCustomerPortalSession
from paddle_billing.Resources.Customers.Operations import CreateCustomer, ListCustomers
from paddle_billing.Resources.Shared.Operations import Pager
from paddle_billing.Resources.Shared.Operations.List.OrderBy import OrderBy
from paddle_billing.Resources.Transactions.Operations import (
    CreateTransaction,
    ListTransactions,
    UpdateTransaction,
)
from paddle_billing.Resources.Transactions.Operations.Create import TransactionCreateItem

from responseiq_billing.adapters.paddle import translate
from responseiq_billing.adapters.paddle.base import PaddleBase
from responseiq_billing.adapters.paddle.prices import MAX_PAGE
from responseiq_billing.application.ports import (
    CheckoutOutcome,
    CheckoutSession,
    CheckoutStatus,
    PortalFlow,
    PortalSession,
    UiMode,
)
from responseiq_billing.domain.errors import CheckoutNotFound
from responseiq_billing.domain.plans import PlanPrice

_OPEN = ("draft", "ready")  # a checkout transaction still to be paid


class CheckoutAndPortal(PaddleBase):
    """Customers, checkout transactions and customer portal sessions."""

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

    def _email(self, account_id: str) -> str:
        digest = hashlib.sha256(account_id.encode()).hexdigest()[:24]
        return f"acct-{digest}@{self._options.customer_email_domain}"

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
        self._pricing.price_id(price)
        since = self._pricing.generation
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

            txn = self._pricing.priced((price.plan_id, price.interval), create, since)
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


def _checkout_status(txn: Transaction) -> CheckoutStatus:
    status = translate.value(txn.status)
    if status in _OPEN:
        return CheckoutStatus.OPEN
    if status == "canceled":
        return CheckoutStatus.EXPIRED
    return CheckoutStatus.COMPLETE
