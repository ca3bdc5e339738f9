"""A new payment method is used by the next charge; invoices are listed and downloaded by their owner."""

from __future__ import annotations

from collections.abc import Callable
from typing import cast

import attrs
import pytest

from responseiq_billing.adapters.fake.gateway import FakeGateway
from responseiq_billing.application import commands
from responseiq_billing.application.ports import PaymentGateway
from responseiq_billing.application.use_cases import ListInvoices
from responseiq_billing.domain.errors import (
    CheckoutNotFound,
    CustomerNotFound,
    GatewayUnavailable,
    InvalidInput,
    InvoiceNotFound,
)
from responseiq_billing.domain.invoices import BillingReason, InvoicePage, InvoiceStatus
from responseiq_billing.domain.money import Money
from responseiq_billing.domain.subscription import PaymentMethodSummary
from tests.unit.conftest import APR_1, MAR_16, MAY_1, Billing

VISA = PaymentMethodSummary("visa", "4242")
MASTERCARD = PaymentMethodSummary("mastercard", "4444")


def update_card(billing: Billing, account: str, card: str = "mastercard") -> str:
    session = billing.start_payment_method_update(
        commands.StartPaymentMethodUpdate(account, "https://app/ok", "https://app/no")
    )
    billing.gateway.complete_setup(session.id, card=card)
    return session.id


def test_a_new_payment_method_is_used_by_the_next_charge(billing: Billing) -> None:
    billing.subscribe("acct_ada")
    assert billing.stored("acct_ada").payment_method == VISA
    session = billing.start_payment_method_update(
        commands.StartPaymentMethodUpdate("acct_ada", "https://app/ok", "https://app/no")
    )
    assert session.url == f"https://sandbox.test/sandbox/setup/{session.id}"
    billing.gateway.complete_setup(session.id, card="mastercard")

    sub = billing.complete_payment_method_update(
        commands.CompletePaymentMethodUpdate("acct_ada", session.id)
    )

    assert sub is not None and sub.payment_method == MASTERCARD
    assert billing.stored("acct_ada").payment_method == MASTERCARD
    assert ("payment_method.update", "ok") in billing.actions("acct_ada")
    billing.gateway.advance_to(APR_1)
    renewal = billing.gateway_invoices("acct_ada")[0]
    assert renewal.billing_reason is BillingReason.SUBSCRIPTION_CYCLE
    assert billing.gateway.invoice_payment_method(renewal.id) == MASTERCARD


def test_completing_an_update_before_the_card_is_added_changes_nothing(billing: Billing) -> None:
    billing.subscribe("acct_ada")
    session = billing.start_payment_method_update(
        commands.StartPaymentMethodUpdate("acct_ada", "https://app/ok", "https://app/no")
    )
    assert (
        billing.complete_payment_method_update(
            commands.CompletePaymentMethodUpdate("acct_ada", session.id)
        )
        is None
    )
    assert billing.stored("acct_ada").payment_method == VISA
    billing.gateway.complete_setup(session.id, card="mastercard")
    # the same idempotency key now goes through: a call that found nothing to do stored nothing
    sub = billing.complete_payment_method_update(
        commands.CompletePaymentMethodUpdate("acct_ada", session.id)
    )
    assert sub is not None and sub.payment_method == MASTERCARD


def test_a_payment_method_added_before_renewal_pays_the_renewal_of_the_next_month_too(
    billing: Billing,
) -> None:
    billing.subscribe("acct_ada")
    setup = update_card(billing, "acct_ada", "amex")
    billing.complete_payment_method_update(commands.CompletePaymentMethodUpdate("acct_ada", setup))
    billing.gateway.advance_to(MAY_1)
    renewals = [
        i
        for i in billing.gateway_invoices("acct_ada")
        if i.billing_reason is BillingReason.SUBSCRIPTION_CYCLE
    ]
    assert [billing.gateway.invoice_payment_method(i.id) for i in renewals] == [
        PaymentMethodSummary("amex", "8431")
    ] * 2


def test_another_account_cannot_complete_someone_elses_payment_method_setup(
    billing: Billing,
) -> None:
    billing.subscribe("acct_ada")
    billing.subscribe("acct_bob")
    ada_setup = update_card(billing, "acct_ada", "mastercard")
    with pytest.raises(CheckoutNotFound):
        billing.complete_payment_method_update(
            commands.CompletePaymentMethodUpdate("acct_bob", ada_setup)
        )
    assert billing.stored("acct_bob").payment_method == VISA


def test_invoices_are_listed_newest_first_page_by_page(billing: Billing) -> None:
    billing.subscribe("acct_ada")
    billing.gateway.advance_to(MAR_16)
    billing.change_plan(commands.ChangePlan("acct_ada", "business", "month"))
    billing.gateway.advance_to(APR_1)

    first = billing.list_invoices(commands.ListInvoices("acct_ada", limit=2))
    reasons = [i.billing_reason for i in first.items]
    assert reasons == [BillingReason.SUBSCRIPTION_CYCLE, BillingReason.SUBSCRIPTION_UPDATE]
    assert first.has_more
    second = billing.list_invoices(
        commands.ListInvoices("acct_ada", limit=2, starting_after=first.items[-1].id)
    )
    assert [i.billing_reason for i in second.items] == [BillingReason.SUBSCRIPTION_CREATE]
    assert not second.has_more
    numbers = [i.number for i in first.items + second.items]
    assert numbers == ["RIQ-0003", "RIQ-0002", "RIQ-0001"]


def test_an_account_without_a_customer_has_no_invoices(billing: Billing) -> None:
    page = billing.list_invoices(commands.ListInvoices("acct_nobody"))
    assert (page.items, page.has_more) == ((), False)


def test_invoice_pages_are_between_one_and_a_hundred(billing: Billing) -> None:
    with pytest.raises(InvalidInput):
        billing.list_invoices(commands.ListInvoices("acct_ada", limit=0))
    with pytest.raises(InvalidInput):
        billing.list_invoices(commands.ListInvoices("acct_ada", limit=101))


def test_the_invoice_list_falls_back_to_what_was_seen_when_the_gateway_is_down(
    billing: Billing,
) -> None:
    billing.subscribe("acct_ada")
    seen = billing.list_invoices(commands.ListInvoices("acct_ada"))
    billing.gateway.fail_next_call()
    assert billing.list_invoices(commands.ListInvoices("acct_ada")) == seen


class _PageReadBeforeThePayment:
    """The gateway, whose invoice list answers with a page read just before the invoice was
    paid: the payment's event is applied while that page is on its way to us."""

    def __init__(self, gateway: FakeGateway, page: InvoicePage, pay: Callable[[], None]) -> None:
        self._gateway, self._page, self._pay = gateway, page, pay

    def list_invoices(self, **_: object) -> InvoicePage:
        self._pay()
        return self._page

    def __getattr__(self, name: str) -> object:
        return getattr(self._gateway, name)


def test_an_invoice_list_read_before_a_payment_never_moves_the_invoice_back(
    billing: Billing,
) -> None:
    billing.subscribe("acct_ada")
    [paid] = billing.gateway_invoices("acct_ada")
    assert paid.status is InvoiceStatus.PAID
    still_open = attrs.evolve(paid, status=InvoiceStatus.OPEN, amount_paid=Money(0, "USD"))

    def webhook_applies_the_payment() -> None:
        with billing.uow() as uow:
            assert uow.invoices.upsert("acct_ada", paid)
            uow.commit()

    gateway = _PageReadBeforeThePayment(
        billing.gateway, InvoicePage((still_open,), has_more=False), webhook_applies_the_payment
    )
    list_invoices = ListInvoices(uow=billing.uow, gateway=cast(PaymentGateway, gateway))

    page = list_invoices(commands.ListInvoices("acct_ada"))

    assert page.items == (still_open,)  # what the gateway said, as it said it
    with billing.uow() as uow:
        assert uow.invoices.get(paid.id) == ("acct_ada", paid)  # the payment stands


def test_the_proration_invoice_pdf_is_available_to_its_owner(billing: Billing) -> None:
    billing.subscribe("acct_ada")
    billing.gateway.advance_to(MAR_16)
    billing.change_plan(commands.ChangePlan("acct_ada", "business", "month"))
    proration = billing.gateway_invoices("acct_ada")[0]

    invoice = billing.invoice_pdf(commands.GetInvoicePdf("acct_ada", proration.id))

    assert invoice.id == proration.id
    assert invoice.pdf_url == f"https://sandbox.test/sandbox/invoices/{proration.id}.pdf"
    assert billing.gateway.render_invoice_pdf(invoice.id).startswith(b"%PDF-")


def test_another_account_cannot_see_an_invoice_cached_or_not(billing: Billing) -> None:
    billing.subscribe("acct_ada")
    billing.subscribe("acct_bob")
    [uncached] = billing.gateway_invoices("acct_ada")
    with pytest.raises(InvoiceNotFound):
        billing.invoice_pdf(commands.GetInvoicePdf("acct_bob", uncached.id))
    with pytest.raises(InvoiceNotFound):
        billing.invoice_pdf(commands.GetInvoicePdf("acct_nobody", uncached.id))
    billing.list_invoices(commands.ListInvoices("acct_ada"))  # now cached for Ada
    with pytest.raises(InvoiceNotFound):
        billing.invoice_pdf(commands.GetInvoicePdf("acct_bob", uncached.id))
    with pytest.raises(InvoiceNotFound):
        billing.list_invoices(commands.ListInvoices("acct_bob", starting_after=uncached.id))
    assert billing.invoice_pdf(commands.GetInvoicePdf("acct_ada", uncached.id)).id == uncached.id


def test_an_unknown_invoice_is_not_found(billing: Billing) -> None:
    billing.subscribe("acct_ada")
    with pytest.raises(InvoiceNotFound):
        billing.invoice_pdf(commands.GetInvoicePdf("acct_ada", "in_missing"))


def test_a_payment_method_update_that_cannot_reach_the_gateway_changes_nothing(
    billing: Billing,
) -> None:
    billing.subscribe("acct_ada")
    setup = update_card(billing, "acct_ada")
    billing.gateway.fail_next_call()
    with pytest.raises(GatewayUnavailable):
        billing.complete_payment_method_update(
            commands.CompletePaymentMethodUpdate("acct_ada", setup)
        )
    assert billing.stored("acct_ada").payment_method == VISA
    assert billing.gateway.customer_payment_method(billing.customer("acct_ada")) == VISA
    billing.complete_payment_method_update(commands.CompletePaymentMethodUpdate("acct_ada", setup))
    assert billing.stored("acct_ada").payment_method == MASTERCARD


def test_a_payment_method_update_needs_a_customer_first(billing: Billing) -> None:
    with pytest.raises(CustomerNotFound):
        billing.start_payment_method_update(
            commands.StartPaymentMethodUpdate("acct_nobody", "https://app/ok", "https://app/no")
        )
