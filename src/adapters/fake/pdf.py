"""A minimal, valid one-page PDF written by hand: the sandbox's invoice documents."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

PAGE_WIDTH, PAGE_HEIGHT = 595, 842  # A4 in points
_LEADING = 16


def _escape(text: str) -> str:
    # The standard Helvetica font with WinAnsiEncoding covers ASCII safely; anything else
    # becomes '?' rather than producing a string the viewer would misread.
    ascii_text = text.encode("ascii", "replace").decode("ascii")
    return ascii_text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


def _pdf_date(moment: datetime) -> str:
    return moment.strftime("D:%Y%m%d%H%M%SZ")


def render_text_pdf(*, title: str, heading: str, lines: Sequence[str], created: datetime) -> bytes:
    """One A4 page: a bold heading, then one line of text per entry, top to bottom."""
    ops = [
        "BT",
        f"/F2 16 Tf 56 {PAGE_HEIGHT - 72} Td ({_escape(heading)}) Tj",
        f"/F1 11 Tf {_LEADING} TL 0 -12 Td",
    ]
    # `'` moves to the next line (by the leading) and shows the string.
    ops += [f"({_escape(line)}) '" for line in lines]
    ops.append("ET")
    content = "\n".join(ops).encode("ascii")

    objects: list[bytes] = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        (
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 {PAGE_WIDTH} {PAGE_HEIGHT}] "
            "/Resources << /Font << /F1 4 0 R /F2 5 0 R >> >> /Contents 6 0 R >>"
        ).encode("ascii"),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica-Bold /Encoding /WinAnsiEncoding >>",
        b"<< /Length %d >>\nstream\n" % len(content) + content + b"\nendstream",
        (
            f"<< /Title ({_escape(title)}) /Producer (ResponseIQ Billing sandbox) "
            f"/CreationDate ({_pdf_date(created)}) >>"
        ).encode("ascii"),
    ]

    # The binary comment on line two tells transfer tools the file is binary (PDF spec 7.5.2).
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets: list[int] = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref_at = len(out)
    out += b"xref\n0 %d\n" % (len(objects) + 1)
    # Each cross-reference entry is exactly 20 bytes, its end-of-line being " \n".
    out += b"0000000000 65535 f \n"
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R /Info %d 0 R >>\n" % (
        len(objects) + 1,
        len(objects),
    )
    out += b"startxref\n%d\n%%%%EOF\n" % xref_at
    return bytes(out)
