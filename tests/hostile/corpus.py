"""The hostile corpus: card numbers in every spelling, place and route, other abuse, honest input.

Each `Case` is one raw request and what must come back. The card numbers are the gateways'
public test numbers, one per brand, so nothing here is anyone's card.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Iterator
from urllib.parse import quote

import attrs

CARDS = {
    "visa": "4242424242424242",
    "visa13": "4222222222222",
    "mastercard": "5555555555554444",
    "mastercard2": "2223003122003222",
    "amex": "378282246310005",
    "discover": "6011111111111117",
    "jcb": "3566002020360505",
    "diners": "30569309025904",
    "unionpay": "6200000000000005",
}


def _groups(number: str) -> list[str]:
    if len(number) == 15:  # Amex: 4-6-5
        return [number[:4], number[4:10], number[10:]]
    return [number[i : i + 4] for i in range(0, len(number), 4)]


def _joined(separator: str) -> Callable[[str], str]:
    return lambda number: separator.join(_groups(number))


FULL_WIDTH = str.maketrans("0123456789", "".join(chr(0xFF10 + digit) for digit in range(10)))

# How people (and attackers) write a card number.
SPELLINGS: dict[str, Callable[[str], str]] = {
    "plain": lambda n: n,
    "spaces": _joined(" "),
    "two spaces": _joined("  "),
    "dashes": _joined("-"),
    "dots": _joined("."),
    "slashes": _joined("/"),
    "tabs": _joined("\t"),
    "newlines": _joined("\n"),
    "nbsp": _joined("\u00a0"),
    "mixed": lambda n: "".join(
        g + s for g, s in zip(_groups(n), [" - ", ".", "\u00a0", "  ", ""], strict=False)
    ),
    "full-width": lambda n: _joined(" ")(n).translate(FULL_WIDTH),
    "spaces around": lambda n: f"card: {_joined(' ')(n)} exp 12/30",
}
# Header values are Latin-1 without control characters: the spellings that fit.
HEADER_SPELLINGS = ["plain", "spaces", "two spaces", "dashes", "dots", "slashes", "spaces around"]

TOKEN = "{token}"  # replaced by the harness with a valid bearer token for the test account
AUTH = (b"Authorization", b"Bearer " + TOKEN.encode())
JSON = (b"Content-Type", b"application/json")
FORM = (b"Content-Type", b"application/x-www-form-urlencoded")


@attrs.frozen
class Case:
    name: str
    method: str
    target: bytes
    headers: tuple[tuple[bytes, bytes], ...] = ()
    body: bytes = b""
    chunks: tuple[bytes, ...] | None = None
    expect: str = "card"  # "card": 400 card_data_rejected; "refused": a 4xx; "honest": not refused as card data
    secret: str = ""  # what must appear in no response, log line or row


def _json_escaped(text: str) -> str:
    """Every character as a `\\uXXXX` escape, as a hostile client may send it."""
    return "".join(f"\\u{ord(ch):04x}" for ch in text)


def _all_percent(text: str) -> str:
    return "".join(f"%{byte:02X}" for byte in text.encode())


JSON_ROUTES = [
    ("POST", "/billing/checkout", {"plan": "growth", "interval": "month"}),
    ("POST", "/billing/portal", {}),
    ("POST", "/billing/subscription/preview", {"plan": "business", "interval": "month"}),
    ("POST", "/billing/subscription/change", {"plan": "business", "interval": "month"}),
    ("POST", "/billing/payment-method/setup", {}),
    ("POST", "/billing/subscription/cancel", {}),
    ("POST", "/billing/subscription/resume", {}),
    ("POST", "/sandbox/clock/advance", {"days": 0}),
]
GET_ROUTES = [
    "/billing/plans",
    "/billing/subscription",
    "/billing/entitlements",
    "/billing/invoices",
    "/health",
    "/ready",
    "/metrics",
]
FORM_ROUTES = ["/sandbox/checkout/cs_hostile/complete", "/sandbox/setup/seti_hostile/complete"]


def _json_places(
    value: str, route: tuple[str, str, dict[str, object]]
) -> Iterator[tuple[str, str, bytes]]:
    method, _path, base = route
    yield "json field", method, json.dumps({**base, "note": value}).encode()
    yield (
        "json known field",
        method,
        json.dumps({**base, "return_url": f"https://x.io/{value}"}).encode(),
    )
    yield "json nested", method, json.dumps({**base, "meta": {"a": [1, {"b": value}]}}).encode()
    escaped = _json_escaped(value)
    yield "json \\u escapes", method, ('{"note": "' + escaped + '"}').encode()


def card_cases() -> Iterator[Case]:
    brands = itertools.cycle(CARDS.items())
    json_routes = itertools.cycle(JSON_ROUTES)
    get_routes = itertools.cycle(GET_ROUTES)
    form_routes = itertools.cycle(FORM_ROUTES)
    for spelling, spell in SPELLINGS.items():
        brand, number = next(brands)
        value = spell(number)
        tag = f"{brand} {spelling}"
        route = next(json_routes)
        for place, method, body in _json_places(value, route):
            yield Case(
                f"{tag} in {place} of {route[1]}",
                method,
                route[1].encode(),
                (AUTH, JSON),
                body,
                secret=number,
            )
        path = next(get_routes)
        yield Case(
            f"{tag} in a query of {path}",
            "GET",
            f"{path}?note={quote(value, safe='')}".encode(),
            (AUTH,),
            secret=number,
        )
        yield Case(
            f"{tag} in a query, every byte %-encoded, of {path}",
            "GET",
            f"{path}?q={_all_percent(value)}".encode(),
            (AUTH,),
            secret=number,
        )
        yield Case(
            f"{tag} in a query with + for spaces",
            "GET",
            f"/billing/invoices?note={quote(value, safe='').replace('%20', '+')}".encode(),
            (AUTH,),
            secret=number,
        )
        yield Case(
            f"{tag} in a path",
            "GET",
            f"/billing/invoices/{quote(value, safe='')}/pdf".encode(),
            (AUTH,),
            secret=number,
        )
        form = next(form_routes)
        yield Case(
            f"{tag} in a form on {form}",
            "POST",
            form.encode(),
            (FORM,),
            f"outcome=succeeded&card=visa&note={quote(value, safe='').replace('%20', '+')}".encode(),
            secret=number,
        )
        boundary = b"hostileBoundary42"
        multipart = (
            b"--"
            + boundary
            + b'\r\nContent-Disposition: form-data; name="outcome"\r\n\r\nsucceeded\r\n'
            + b"--"
            + boundary
            + b'\r\nContent-Disposition: form-data; name="note"\r\n\r\n'
            + value.encode()
            + b"\r\n"
            + b"--"
            + boundary
            + b"--\r\n"
        )
        yield Case(
            f"{tag} in a multipart field",
            "POST",
            form.encode(),
            ((b"Content-Type", b"multipart/form-data; boundary=" + boundary),),
            multipart,
            secret=number,
        )
        encoded = json.dumps({"note": value}).encode()
        middle = len(encoded) // 2
        yield Case(
            f"{tag} split across body chunks",
            "POST",
            b"/billing/portal",
            (AUTH, JSON),
            chunks=(encoded[:middle], encoded[middle:]),
            secret=number,
        )
        if spelling in HEADER_SPELLINGS:
            for header in (b"Idempotency-Key", b"X-Note", b"User-Agent", b"Referer"):
                yield Case(
                    f"{tag} in header {header.decode()}",
                    "POST",
                    b"/billing/subscription/cancel",
                    (AUTH, JSON, (header, value.encode())),
                    b"{}",
                    secret=number,
                )


def abuse_cases(long_sub_token: str, nul_sub_token: str, far_exp_token: str) -> Iterator[Case]:
    def refused(
        name: str,
        method: str,
        target: bytes,
        headers: tuple[tuple[bytes, bytes], ...] = (AUTH, JSON),
        body: bytes = b"",
        secret: str = "",
    ) -> Case:
        return Case(name, method, target, headers, body, expect="refused", secret=secret)

    deep = b"[" * 1000 + b"]" * 1000
    yield refused(
        "JSON nested 1,000 deep, before auth", "POST", b"/sandbox/clock/advance", (JSON,), deep
    )
    yield refused(
        "JSON nested 1,000 deep, with auth",
        "POST",
        b"/billing/subscription/change",
        body=b'{"plan": ' + deep + b"}",
    )
    yield refused(
        "objects nested 500 deep",
        "POST",
        b"/billing/portal",
        body=b'{"a":' * 500 + b"1" + b"}" * 500,
    )
    yield refused(
        "a 2 MB body", "POST", b"/billing/portal", body=b'{"note": "' + b"x" * 2_000_000 + b'"}'
    )
    yield refused(
        "a 2 MB body of '1 ' before auth",
        "POST",
        b"/sandbox/clock/advance",
        (JSON,),
        b"1 " * 1_000_000,
    )
    yield refused(
        "NUL in quote_id",
        "POST",
        b"/billing/subscription/change",
        body=b'{"plan": "business", "interval": "month", "quote_id": "qt_\\u0000x"}',
        secret="qt_\x00x",
    )
    yield refused(
        "card digits as \\u escapes then NUL in quote_id",
        "POST",
        b"/billing/subscription/change",
        body=(
            '{"plan": "business", "interval": "month", "quote_id": "'
            + _json_escaped("4242424242424242")
            + '\\u0000"}'
        ).encode(),
        secret="4242424242424242",
    )
    yield refused("NUL in an invoice id", "GET", b"/billing/invoices/in_%00x/pdf", (AUTH,))
    yield refused(
        "NUL in starting_after", "GET", b"/billing/invoices?starting_after=in_%00", (AUTH,)
    )
    yield refused(
        "an invoice id of 300 characters",
        "GET",
        b"/billing/invoices/in_" + b"a" * 300 + b"/pdf",
        (AUTH,),
    )
    yield refused(
        "a checkout id of 5,000 characters",
        "POST",
        b"/billing/checkout/cs_" + b"b" * 5000 + b"/complete",
        (AUTH,),
    )
    yield refused(
        "starting_after of 1,000 characters",
        "GET",
        b"/billing/invoices?starting_after=" + b"c" * 1000,
        (AUTH,),
    )
    yield refused(
        "a token whose sub is 200 characters",
        "GET",
        b"/billing/subscription",
        ((b"Authorization", b"Bearer " + long_sub_token.encode()),),
    )
    yield refused(
        "a token whose sub holds a NUL",
        "POST",
        b"/billing/checkout",
        ((b"Authorization", b"Bearer " + nul_sub_token.encode()), JSON),
        b'{"plan": "growth", "interval": "month"}',
    )
    yield refused(
        "a token that expires in ten years",
        "GET",
        b"/billing/subscription",
        ((b"Authorization", b"Bearer " + far_exp_token.encode()),),
    )
    yield refused(
        "a forged log line in the path",
        "GET",
        b"/billing/invoices/x%0A%0DINFO%20forged-line/pdf",
        (AUTH,),
        secret="forged-line",
    )
    yield refused(
        "a forged log line in an unknown path",
        "GET",
        b"/no/such%0AERROR%20forged-route",
        (AUTH,),
        secret="forged-route",
    )
    yield refused(
        "a raw path to an unknown route holding a card",
        "GET",
        b"/nowhere/4242424242424242",
        (AUTH,),
        secret="4242424242424242",
    )
    yield refused(
        "invalid UTF-8 in a JSON body",
        "POST",
        b"/billing/portal",
        body=b'{"return_url": "https://x.io/\xff\xfe"}',
    )
    yield refused(
        "a number too large for JSON",
        "POST",
        b"/sandbox/clock/advance",
        (JSON,),
        b'{"days": 1e400}',
    )
    yield refused(
        "a day count of 10^30",
        "POST",
        b"/sandbox/clock/advance",
        (JSON,),
        b'{"days": 1000000000000000000000000000000}',
    )
    yield refused(
        "a negative day count", "POST", b"/sandbox/clock/advance", (JSON,), b'{"days": -5}'
    )
    yield refused(
        "a form sent as JSON",
        "POST",
        b"/billing/subscription/change",
        body=b"plan=business&interval=month",
    )
    yield refused(
        "JSON that is a bare string", "POST", b"/billing/subscription/change", body=b'"business"'
    )
    yield refused(
        "an unknown plan whose name is a script",
        "POST",
        b"/billing/subscription/change",
        body=b'{"plan": "<script>alert(1)</script>", "interval": "month"}',
        secret="<script>",
    )
    yield refused(
        "an unknown interval",
        "POST",
        b"/billing/checkout",
        body=b'{"plan": "growth", "interval": "fortnight"}',
    )
    yield refused(
        "a return_url with javascript:",
        "POST",
        b"/billing/portal",
        body=b'{"return_url": "javascript:alert(1)//"}',
        secret="javascript:",
    )
    yield refused(
        "a duplicated JSON key",
        "POST",
        b"/billing/subscription/change",
        body=b'{"plan": "business", "plan": "starter", "interval": "month", "interval": "week"}',
    )
    yield refused(
        "a bad Idempotency-Key",
        "POST",
        b"/billing/subscription/cancel",
        (AUTH, JSON, (b"Idempotency-Key", b"a key with spaces and ;")),
        b"{}",
    )
    yield refused(
        "an Idempotency-Key of 500 characters",
        "POST",
        b"/billing/subscription/cancel",
        (AUTH, JSON, (b"Idempotency-Key", b"k" * 500)),
        b"{}",
    )
    yield refused(
        "two Authorization headers",
        "GET",
        b"/billing/subscription",
        (AUTH, (b"Authorization", b"Bearer junk")),
    )
    yield refused(
        "Basic auth",
        "GET",
        b"/billing/subscription",
        ((b"Authorization", b"Basic YWRtaW46YWRtaW4="),),
    )
    yield refused("a TRACE request", "TRACE", b"/billing/subscription", (AUTH,))
    yield refused(
        "a sandbox checkout that does not exist",
        "POST",
        b"/sandbox/checkout/cs_nope/complete",
        (FORM,),
        b"outcome=succeeded&card=visa",
    )
    yield refused(
        "a sandbox form with an unknown outcome",
        "POST",
        b"/sandbox/checkout/cs_nope/complete",
        (FORM,),
        b"outcome=free&card=visa",
    )
    yield refused(
        "a sandbox portal session that does not exist", "GET", b"/sandbox/portal/bps_nope", ()
    )
    yield refused(
        "a path traversal to the invoice documents",
        "GET",
        b"/sandbox/invoices/..%2F..%2Fetc%2Fpasswd",
        (),
        secret="root:",
    )
    yield Case(
        "a chunked body larger than the limit",
        "POST",
        b"/billing/portal",
        (AUTH, JSON),
        chunks=(b'{"note": "',) + (b"y" * 65536,) * 32 + (b'"}',),
        expect="refused",
    )


HONEST_VALUES = {
    "a millisecond timestamp": "1796206568000",
    "a microsecond timestamp": "1796206568000123",
    "an ISO time": "2026-03-01T09:00:00Z",
    "an amount": "4900",
    "a large amount": "1,234,567.89",
    "a US phone number": "+1 415-555-0132",
    "a UK phone number": "+44 20 7946 0958",
    "a UUID": "3f2b8c1e-9d4a-4e6b-8f7a-2c1d0e9b8a7f",
    "a 20-digit id": "12345678901234567890",
    "a Luhn-valid number with no card prefix": "0000 0000 0000 0000",
    "grouped digits with no card prefix": "1234 5678 9012 3452",
    "an order number": "2026-0001-0042-7781",
    "an IBAN": "GB82 WEST 1234 5698 7654 32",
    "a Stripe id": "in_1PqR2sT3uV4wX5yZ6aB7cD8e",
    "our id": "qt_4fGq9ZkL2mN8pR5tV7xB1dHs",
}


def honest_cases() -> Iterator[Case]:
    for name, value in HONEST_VALUES.items():
        yield Case(
            f"{name} in a query",
            "GET",
            f"/billing/invoices?note={quote(value, safe='')}".encode(),
            (AUTH,),
            expect="honest",
        )
        yield Case(
            f"{name} in a JSON body",
            "POST",
            b"/billing/subscription/preview",
            (AUTH, JSON),
            json.dumps(
                {
                    "plan": "business",
                    "interval": "month",
                    "return_url": "https://x.io/",
                    "note": value,
                }
            ).encode(),
            expect="honest",
        )
        if "," not in value:
            yield Case(
                f"{name} in a header",
                "GET",
                b"/billing/plans",
                (AUTH, (b"X-Request-Note", value.encode())),
                expect="honest",
            )
