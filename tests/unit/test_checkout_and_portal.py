"""Starting a subscription through checkout, and opening Manage Billing, via the use cases."""

from __future__ import annotations

import pytest

from responseiq_billing.application import commands
from responseiq_billing.application.ports import CheckoutStatus, UiMode
from responseiq_billing.domain.errors import (
    AlreadySubscribed,
    CheckoutNotFound,
    CustomerNotFound,
    UnknownPlan,
)
from responseiq_billing.domain.invoices import BillingReason, InvoiceStatus
from responseiq_billing.domain.money import Money
from responseiq_billing.domain.plans import Interval
from responseiq_billing.domain.subscription import PaymentMethodSummary, Status
from tests.unit.conftest import APR_1, MAR_1, Billing

OK, NO = "https://app/ok/{CHECKOUT_SESSION_ID}", "https://app/no"


def test_checkout_then_payment_then_return_records_the_subscription(billing: Billing) -> None:
    session = billing.start_checkout(commands.StartCheckout("acct_ada", "growth", "month", OK, NO))
    assert session.url == f"https://sandbox.test/sandbox/checkout/{session.id}"
    assert session.id.startswith("cs_") and session.client_secret is None

    billing.gateway.complete_checkout(session.id, card="amex")
    assert billing.gateway.checkout_return_url(session.id) == f"https://app/ok/{session.id}"
    sub = billing.complete_checkout(commands.CompleteCheckout("acct_ada", session.id))

    assert sub is not None
    stored = billing.stored("acct_ada")
    assert (stored.plan_id, stored.interval, stored.status) == (
        "growth",
        Interval.MONTH,
        Status.ACTIVE,
    )
    assert (stored.current_period_start, stored.current_period_end) == (MAR_1, APR_1)
    assert stored.payment_method == PaymentMethodSummary("amex", "8431")
    assert stored.customer_ref.startswith("cus_") and stored.subscription_ref.startswith("sub_")
    assert billing.entitlements("acct_ada").plan_id == "growth"
    assert [a for a, _ in billing.actions("acct_ada")] == [
        "customer.create",
        "checkout.start",
        "checkout.complete",
        "event.SubscriptionStarted",
    ]
    [invoice] = billing.gateway_invoices("acct_ada")
    assert invoice.billing_reason is BillingReason.SUBSCRIPTION_CREATE
    assert (invoice.status, invoice.amount_paid) == (InvoiceStatus.PAID, Money(4900, "USD"))


def test_returning_before_paying_records_nothing(billing: Billing) -> None:
    session = billing.start_checkout(commands.StartCheckout("acct_ada", "growth", "month", OK, NO))
    assert billing.complete_checkout(commands.CompleteCheckout("acct_ada", session.id)) is None
    with billing.uow() as uow:
        assert uow.subscriptions.for_account("acct_ada") is None


def test_a_declined_card_on_the_checkout_page_keeps_the_session_open(billing: Billing) -> None:
    session = billing.start_checkout(commands.StartCheckout("acct_ada", "growth", "month", OK, NO))
    outcome = billing.gateway.complete_checkout(session.id, outcome="declined")
    assert (outcome.status, outcome.subscription) == (CheckoutStatus.OPEN, None)
    assert billing.gateway.checkout_return_url(session.id) == NO
    assert billing.complete_checkout(commands.CompleteCheckout("acct_ada", session.id)) is None
    billing.gateway.complete_checkout(session.id)
    assert billing.complete_checkout(commands.CompleteCheckout("acct_ada", session.id)) is not None


def test_another_account_cannot_complete_someone_elses_checkout(billing: Billing) -> None:
    session = billing.start_checkout(commands.StartCheckout("acct_ada", "growth", "month", OK, NO))
    billing.gateway.complete_checkout(session.id)
    with pytest.raises(CheckoutNotFound):
        billing.complete_checkout(commands.CompleteCheckout("acct_bob", session.id))
    with billing.uow() as uow:
        assert uow.subscriptions.for_account("acct_bob") is None


def test_an_account_with_a_live_subscription_cannot_check_out_again(billing: Billing) -> None:
    billing.subscribe("acct_ada")
    with pytest.raises(AlreadySubscribed):
        billing.start_checkout(commands.StartCheckout("acct_ada", "business", "month", OK, NO))


def test_checkout_of_an_unknown_plan_is_refused_before_the_gateway_is_called(
    billing: Billing,
) -> None:
    with pytest.raises(UnknownPlan):
        billing.start_checkout(commands.StartCheckout("acct_ada", "platinum", "month", OK, NO))
    assert billing.gateway.calls == []


def test_one_gateway_customer_serves_every_checkout_of_an_account(billing: Billing) -> None:
    first = billing.start_checkout(commands.StartCheckout("acct_ada", "growth", "month", OK, NO))
    second = billing.start_checkout(
        commands.StartCheckout("acct_ada", "starter", "year", OK, NO, ui_mode=UiMode.EMBEDDED)
    )
    assert [call.name for call in billing.gateway.calls] == [
        "ensure_customer",
        "start_checkout",
        "start_checkout",
        "expire_checkout",  # the second checkout replaces the first, which is expired
    ]
    assert second.url is None and second.client_secret is not None
    assert billing.gateway.checkout_account(first.id) == "acct_ada"
    assert billing.gateway.checkout_account(second.id) == "acct_ada"


def test_manage_billing_opens_a_portal_session_for_the_accounts_own_customer(
    billing: Billing,
) -> None:
    billing.subscribe("acct_ada")
    session = billing.open_portal(commands.OpenPortal("acct_ada", "https://app/settings/billing"))
    assert session.id.startswith("bps_")
    assert session.url == f"https://sandbox.test/sandbox/portal/{session.id}"
    assert billing.gateway.portal_session_customer(session.id) == billing.customer("acct_ada")
    assert billing.gateway.portal_return_url(session.id) == "https://app/settings/billing"
    assert ("portal.open", "ok") in billing.actions("acct_ada")


def test_manage_billing_needs_a_customer_first(billing: Billing) -> None:
    with pytest.raises(CustomerNotFound):
        billing.open_portal(commands.OpenPortal("acct_nobody", "https://app/settings/billing"))
