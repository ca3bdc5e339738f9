"""Invoices on Paddle: completed transactions, their short-lived PDF links, and refunds."""

from __future__ import annotations

from paddle_billing.Entities.Shared import TransactionStatus
from paddle_billing.Entities.Transaction import Transaction
from paddle_billing.Resources.Adjustments.Operations import CreateAdjustment, ListAdjustments
from paddle_billing.Resources.Shared.Operations import Pager
from paddle_billing.Resources.Shared.Operations.List.OrderBy import OrderBy
from paddle_billing.Resources.Transactions.Operations import ListTransactions
from paddle_billing.Resources.Transactions.Operations.List.Origin import Origin

from responseiq_billing.adapters.paddle import translate
from responseiq_billing.adapters.paddle.base import PaddleBase
from responseiq_billing.adapters.paddle.prices import MAX_PAGE
from responseiq_billing.application.ports import Refund
from responseiq_billing.domain.errors import GatewayRejected, InvoiceNotFound
from responseiq_billing.domain.invoices import Invoice, InvoicePage


class Invoices(PaddleBase):
    """Listing, reading and refunding invoices (Paddle transactions)."""

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

    def _pdf_url(self, txn: Transaction) -> str | None:
        # A short-lived signed link; fetched per invoice since Paddle keeps no lasting one.
        with translate.translated():
            url = self._client.transactions.get_invoice_pdf(txn.id).url
        return str(url) if url else None

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
