"""Steps of features/view_invoices.feature: the row "View invoices"."""

from __future__ import annotations

from pytest_bdd import scenarios, then, when

from tests.bdd.conftest import Outcome, attempt
from tests.bdd.drivers.base import BillingDriver
from tests.bdd.vocabulary import cents, moment, words

scenarios("view_invoices.feature")

# What an invoice is for, in the words of the invoice list (Stripe's `billing_reason`).
REASONS = {
    "new subscription": "subscription_create",
    "renewal": "subscription_cycle",
    "plan change": "subscription_update",
}


@then(words("{name:Name}'s invoices are, newest first:"))
def invoices_are(driver: BillingDriver, name: str, datatable: list[list[str]]) -> None:
    header, *rows = datatable
    expected = [dict(zip(header, row, strict=True)) for row in rows]
    listed = driver.invoices(name)
    seen = [
        {
            "date": inv.created.date(),
            "amount": (inv.amount_due, inv.currency),
            "for": inv.reason,
            "status": inv.status,
        }
        for inv in listed
    ]
    wanted = [
        {
            "date": moment(row["date"]).date(),
            "amount": (cents(row["amount"]), "USD"),
            "for": REASONS[row["for"]],
            "status": row["status"],
        }
        for row in expected
    ]
    assert seen == wanted
    for inv in listed:
        paid = inv.amount_due if inv.status == "paid" else 0
        assert inv.amount_paid == paid, inv


@then(words("each of {name:Name}'s invoices downloads as a PDF"))
def invoices_download_as_pdf(driver: BillingDriver, name: str) -> None:
    listed = driver.invoices(name)
    assert listed, f"{name} has no invoices"
    for inv in listed:
        assert inv.has_pdf, inv
        document = driver.invoice_pdf(name, inv.id)
        assert document.startswith(b"%PDF-"), document[:20]
        assert document.rstrip().endswith(b"%%EOF"), document[-20:]


@when(
    words("{name:Name} tries to download {owner:Name}'s latest invoice"), target_fixture="outcome"
)
def tries_to_download(driver: BillingDriver, name: str, owner: str) -> Outcome:
    latest = driver.invoices(owner)[0]
    return attempt(lambda: driver.invoice_pdf(name, latest.id))


@then(words("{name:Name} has no invoices"))
def has_no_invoices(driver: BillingDriver, name: str) -> None:
    assert driver.invoices(name) == []
