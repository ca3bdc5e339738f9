"""The sandbox's invoice PDFs are real documents: a correct cross-reference table and the facts."""

from __future__ import annotations

import re

import pytest

from responseiq_billing.adapters.fake.gateway import FakeGateway
from responseiq_billing.adapters.fake.pdf import render_text_pdf
from responseiq_billing.application import commands
from responseiq_billing.domain.errors import InvoiceNotFound
from tests.unit.conftest import MAR_1, MAR_16, Billing


def check_structure(pdf: bytes) -> None:
    """What a reader needs to open the file: header, objects at their xref offsets, trailer."""
    assert pdf.startswith(b"%PDF-1.")
    assert pdf.rstrip().endswith(b"%%EOF")
    startxref = int(re.findall(rb"startxref\s+(\d+)\s+%%EOF", pdf)[-1])
    assert pdf[startxref:].startswith(b"xref\n")
    header = re.match(rb"xref\n0 (\d+)\n", pdf[startxref:])
    assert header is not None
    count = int(header.group(1))
    table = pdf[startxref + header.end() :][: 20 * count]
    entries = [table[i : i + 20] for i in range(0, len(table), 20)]
    assert entries[0] == b"0000000000 65535 f \n"
    for number, entry in enumerate(entries[1:], start=1):
        assert re.fullmatch(rb"\d{10} 00000 n \n", entry), entry
        assert pdf[int(entry[:10]) :].startswith(b"%d 0 obj\n" % number)
    trailer = pdf[startxref + header.end() + 20 * count :]
    assert trailer.startswith(b"trailer\n") and b"/Size %d" % count in trailer
    for stream in re.finditer(rb"<< /Length (\d+) >>\nstream\n", pdf):
        body = pdf[stream.end() :]
        assert body[int(stream.group(1)) :].startswith(b"\nendstream")


def shown_text(pdf: bytes) -> str:
    """The strings the page shows, unescaped."""
    raw = re.findall(rb"\(((?:\\.|[^\\)])*)\) (?:'|Tj)", pdf)
    return "\n".join(re.sub(rb"\\(.)", rb"\1", s).decode("ascii") for s in raw)


def test_the_pdf_writer_escapes_text_and_keeps_offsets_right() -> None:
    pdf = render_text_pdf(
        title="Invoice (draft)",
        heading="A \\ B (C)",
        lines=["one", "two (2)", "café"],
        created=MAR_1,
    )
    check_structure(pdf)
    assert shown_text(pdf).splitlines() == ["A \\ B (C)", "one", "two (2)", "caf?"]


def test_an_invoice_pdf_shows_its_number_amounts_period_and_payment(billing: Billing) -> None:
    billing.subscribe("acct_ada")
    billing.gateway.advance_to(MAR_16)
    billing.change_plan(commands.ChangePlan("acct_ada", "business", "month"))
    proration = billing.invoice_pdf(
        commands.GetInvoicePdf("acct_ada", billing.gateway_invoices("acct_ada")[0].id)
    )

    pdf = billing.gateway.render_invoice_pdf(proration.id)

    check_structure(pdf)
    text = shown_text(pdf)
    assert "ResponseIQ invoice RIQ-0002" in text
    assert "Billing reason: subscription_update" in text
    assert "Period: 2026-03-16 to 2026-04-01" in text
    assert "Unused time on Growth (49.00 USD / month) after 16 Mar 2026: -25.29 USD" in text
    assert "Remaining time on Business (99.00 USD / month) after 16 Mar 2026: 51.10 USD" in text
    assert "Amount due: 25.81 USD" in text and "Amount paid: 25.81 USD" in text
    assert "Paid with: visa ending in 4242" in text


def test_an_invoice_has_no_pdf_link_while_it_is_a_draft(
    gateway: FakeGateway, billing: Billing
) -> None:
    billing.subscribe("acct_ada")
    draft = next(e.invoice for e in gateway.events if e.gateway_type == "invoice.created")
    assert draft is not None and draft.pdf_url is None
    # the stored invoice has been finalized since, so its PDF exists
    assert gateway.render_invoice_pdf(draft.id).startswith(b"%PDF-")
    with pytest.raises(InvoiceNotFound):
        gateway.render_invoice_pdf("in_missing")
