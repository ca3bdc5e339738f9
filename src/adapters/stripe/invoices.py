"""Invoices: the customer's history, one invoice, and a refund of one."""

from __future__ import annotations

from stripe.params import InvoiceListParams

from responseiq_billing.adapters.stripe import translate
from responseiq_billing.adapters.stripe.base import MAX_PAGE, StripeBase
from responseiq_billing.application.ports import Refund
from responseiq_billing.domain.errors import GatewayRejected, InvoiceNotFound
from responseiq_billing.domain.invoices import Invoice, InvoicePage


class Invoices(StripeBase):
    """Listing, reading and refunding invoices."""

    def list_invoices(
        self, *, customer_ref: str, limit: int, starting_after: str | None
    ) -> InvoicePage:
        collected: list[Invoice] = []
        cursor, has_more = starting_after, True
        with translate.translated(not_found=InvoiceNotFound):
            while has_more and len(collected) < limit:
                params: InvoiceListParams = {
                    "customer": customer_ref,
                    "limit": min(limit - len(collected), MAX_PAGE),
                }
                if cursor is not None:
                    params["starting_after"] = cursor
                page = self._client.v1.invoices.list(params).to_dict()
                data = page.get("data") or []
                collected.extend(translate.invoice(inv) for inv in data)
                has_more = bool(page.get("has_more")) and bool(data)
                cursor = collected[-1].id if collected else cursor
        return InvoicePage(items=tuple(collected), has_more=has_more)

    def get_invoice(self, invoice_id: str) -> Invoice:
        with translate.translated(not_found=InvoiceNotFound):
            inv = self._client.v1.invoices.retrieve(invoice_id).to_dict()
        return translate.invoice(inv)

    def refund_invoice(self, *, invoice_id: str, idempotency_key: str) -> Refund:
        # In this API generation an invoice names its payments, not a charge: the paid
        # invoice payment gives the payment intent that Stripe refunds.
        with translate.translated():
            payments = self._client.v1.invoice_payments.list(
                {"invoice": invoice_id, "status": "paid"}
            ).to_dict()
        intent = next(
            (
                translate.ref(payment["payment"].get("payment_intent"))
                for payment in payments.get("data") or []
                if (payment.get("payment") or {}).get("type") == "payment_intent"
            ),
            None,
        )
        if intent is None:
            raise GatewayRejected("That invoice has no card payment to refund.")
        with translate.translated():
            refund = self._client.v1.refunds.create(
                {"payment_intent": intent, "metadata": {"invoice": invoice_id}},
                {"idempotency_key": idempotency_key},
            )
        return Refund(
            id=refund.id,
            invoice_id=invoice_id,
            amount=translate.money(refund.amount, refund.currency),
        )
