"""Invoices: the account's list, and each one's PDF, owner-checked."""

from __future__ import annotations

import attrs

from responseiq_billing.application import commands
from responseiq_billing.application.ports import (
    PaymentGateway,
    UnitOfWorkFactory,
)
from responseiq_billing.application.use_cases.recording import MAX_INVOICE_PAGE
from responseiq_billing.domain.errors import (
    GatewayUnavailable,
    InvalidInput,
    InvoiceNotFound,
)
from responseiq_billing.domain.invoices import (
    Invoice,
    InvoicePage,
)

# -- invoices ---------------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class ListInvoices:
    """The gateway's list, cached as it passes; the cache answers when the gateway cannot."""

    uow: UnitOfWorkFactory
    gateway: PaymentGateway

    def __call__(self, cmd: commands.ListInvoices) -> InvoicePage:
        if not 1 <= cmd.limit <= MAX_INVOICE_PAGE:
            raise InvalidInput(f"limit must be between 1 and {MAX_INVOICE_PAGE}.")
        with self.uow() as uow:
            customer = uow.customers.get(cmd.account_id)
            if cmd.starting_after is not None:
                known = uow.invoices.get(cmd.starting_after)
                if known is None or known[0] != cmd.account_id:
                    raise InvoiceNotFound()
        if customer is None:
            return InvoicePage((), has_more=False)
        try:
            page = self.gateway.list_invoices(
                customer_ref=customer, limit=cmd.limit, starting_after=cmd.starting_after
            )
        except GatewayUnavailable:
            with self.uow() as uow:
                return uow.invoices.list_for_account(
                    cmd.account_id, limit=cmd.limit, starting_after=cmd.starting_after
                )
        with self.uow() as uow:
            for invoice in page.items:
                uow.invoices.upsert(cmd.account_id, invoice)
            uow.commit()
        return page


@attrs.frozen(kw_only=True)
class GetInvoicePdf:
    """One invoice of the signed-in account, for its PDF. Another account's invoice is not found."""

    uow: UnitOfWorkFactory
    gateway: PaymentGateway

    def __call__(self, cmd: commands.GetInvoicePdf) -> Invoice:
        with self.uow() as uow:
            cached = uow.invoices.get(cmd.invoice_id)
            customer = uow.customers.get(cmd.account_id)
        if cached is not None:
            owner, invoice = cached
            if owner != cmd.account_id:
                raise InvoiceNotFound()
            # A link that expires (or none yet: an invoice first heard of by webhook) is
            # asked for afresh; a lasting one is served from what we hold.
            if invoice.pdf_url is not None and not self.gateway.invoice_links_expire:
                return invoice
        elif customer is None:
            raise InvoiceNotFound()
        invoice = self.gateway.get_invoice(cmd.invoice_id)
        if invoice.customer_ref != customer:
            raise InvoiceNotFound()
        with self.uow() as uow:
            uow.invoices.upsert(cmd.account_id, invoice)
            uow.commit()
        if invoice.pdf_url is None:
            raise InvoiceNotFound("This invoice has no PDF yet (it is still a draft).")
        return invoice
