"""The card-data guard: a card number in a request is refused before any handler, never kept.

The scanner is tested as a pure function (against a plain per-character reference, over many
spellings and chunkings), then a few requests go through the real app, some over raw ASGI so the
test controls exactly how the body streams in.
"""

from __future__ import annotations

import itertools
import json
import logging
import re
import threading
import unicodedata
from collections.abc import Callable, Iterable, Iterator
from typing import Any, cast
from urllib.parse import quote

import anyio
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from litestar.testing import TestClient

from responseiq_billing.adapters.app import create_app
from responseiq_billing.adapters.container import Container
from responseiq_billing.adapters.fake.gateway import FakeGateway
from responseiq_billing.adapters.http.card_charmaps import charmap_classes, classes_of
from responseiq_billing.adapters.http.card_scan import (
    CARD,
    JSON_DEPTH_LIMIT,
    TOO_DEEP,
    CardScanner,
    is_card_number,
)
from responseiq_billing.adapters.http.guard import GUARDED_BODY_LIMIT, holds_card_number, luhn_valid
from tests.http import card_reference as reference
from tests.http.conftest import bearer, memory_store

H = bearer("acct_guard")
CARD_NUMBER = "4242424242424242"
SPELLINGS = [
    CARD_NUMBER,
    "4242 4242 4242 4242",
    "4242-4242-4242-4242",
    "378282246310005",
    "6011 1111 1111 1117",
]


def with_check_digit(body: str) -> str:
    return next(body + d for d in "0123456789" if luhn_valid(body + d))


def card(prefix: str, length: int) -> str:
    """A Luhn-valid number of `length` digits starting with `prefix`."""
    return with_check_digit(prefix + "1" * (length - len(prefix) - 1))


# -- the rule: issuer prefix, that issuer's length, Luhn -------------------------------------------

BRANDS = {
    "Visa 13": card("4", 13),
    "Visa 16": CARD_NUMBER,
    "Visa 19": card("4", 19),
    "Mastercard 51": card("51", 16),
    "Mastercard 55": "5555555555554444",
    "Mastercard 2221": card("2221", 16),
    "Mastercard 2720": card("2720", 16),
    "Amex 34": card("34", 15),
    "Amex 37": "378282246310005",
    "Discover 6011": "6011111111111117",
    "Discover 644, 17 digits": card("644", 17),
    "Discover 649, 19 digits": card("649", 19),
    "Discover 65, 18 digits": card("65", 18),
    "Diners 300, 14 digits": "30569309025904",
    "Diners 305, 19 digits": card("305", 19),
    "Diners 36, 14 digits": card("36", 14),
    "Diners 38": card("38", 16),
    "Diners 39, 15 digits": card("39", 15),
    "JCB 3528": card("3528", 16),
    "JCB 3589, 19 digits": card("3589", 19),
    "JCB 3530": "3530111333300000",
    "UnionPay 62": "6200000000000005",
    "UnionPay 62, 19 digits": card("62", 19),
    "Maestro 6759": "6759649826438453",
    "Maestro 5018, 13 digits": card("5018", 13),
    "Maestro 6304, 19 digits": card("6304", 19),
}


@pytest.mark.parametrize("number", BRANDS.values(), ids=BRANDS.keys())
def test_a_number_with_a_brands_prefix_and_length_that_passes_luhn_is_a_card(number: str) -> None:
    assert is_card_number(number)
    assert holds_card_number(number)
    assert holds_card_number(f"card {number[:4]} {number[4:8]} {number[8:]} exp 12/30")


NOT_CARDS = {
    # Changed from the first guard, which refused any Luhn-valid 13-19 digit number: without an
    # issuer's prefix, or at a length that issuer never uses, a Luhn-valid number is allowed.
    "no issuer starts with 1": card("1", 16),
    "no issuer starts with 7": card("7", 16),
    "no issuer starts with 8": card("8", 19),
    "no issuer starts with 9": card("9", 13),
    "no issuer starts with 0": card("0", 16),
    "Visa is never 14 digits": card("4", 14),
    "Visa is never 17 digits": card("4", 17),
    "Amex is only 15": card("37", 16),
    "Mastercard is only 16": card("55", 15),
    "2220 is below the Mastercard range": card("2220", 16),
    "2721 is above it": card("2721", 16),
    "3527 is below JCB": card("3527", 16),
    "306 is above Diners' 300-305": card("306", 14),
    "6010 is not Discover": card("6010", 16),
    "643 is not Discover": card("643", 16),
    "Diners is never 13": card("36", 13),
    # As before
    "fails Luhn": "4242424242424241",
    "12 digits": "424242424242",
}


@pytest.mark.parametrize("number", NOT_CARDS.values(), ids=NOT_CARDS.keys())
def test_a_luhn_valid_number_without_an_issuers_prefix_or_length_is_allowed(number: str) -> None:
    assert not is_card_number(number)
    assert not holds_card_number(number)


HONEST = [
    "1796206568000",  # a millisecond timestamp
    "since=1796206568000&until=1796206569999",
    "2026-03-01T09:00:00Z",
    "2026-03-01 2026-04-01",
    "1,299.00 USD",
    "49.00 / 490.00",
    "+1 415-555-0132",
    "+44 20 7946 0958",
    "(415) 555-0132 ext. 12",
    "qt_9f8e7d6c5b4a39281706f5e4d3c2b1a0",
    "in_e414022770524f8fa6bedd86",
    "qt_4fGqA9x8B7c6D5e4F3g2H1i0",
    "12345678901234567890123",  # a 23-digit id
    "42424242424242424242",  # 20 digits in one unbroken run
    "4242424242424242424242",  # a card number inside a longer unbroken run is not one
    "123e4567-e89b-12d3-a456-426614174000",
    "192.168.100.200 10.0.0.1",
    "12345",
]


@pytest.mark.parametrize("text", HONEST)
def test_ordinary_values_are_not_mistaken_for_card_numbers(text: str) -> None:
    assert not holds_card_number(text)


@pytest.mark.parametrize(
    "text",
    [*SPELLINGS, f"card {CARD_NUMBER} exp 12/30", "x1 4242 4242 4242 4242", "4000056655665556"],
)
def test_card_numbers_next_to_other_digit_groups_are_found(text: str) -> None:
    assert holds_card_number(text)


def test_luhn_check_digit() -> None:
    assert luhn_valid("79927398713")
    assert not luhn_valid("79927398710")


# -- spellings: encodings x separators -------------------------------------------------------------

MATH_ZERO = 0x1D7CE  # MATHEMATICAL BOLD DIGIT ZERO


def _pair(code: int) -> str:
    code -= 0x10000
    return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}"


ENCODINGS: dict[str, Callable[[str], str]] = {
    "plain": lambda d: d,
    "JSON escapes": lambda d: f"\\u{ord(d):04x}",
    "JSON escapes, capital hex": lambda d: f"\\u{ord(d):04X}",
    "JSON surrogate pairs (mathematical digits)": lambda d: _pair(MATH_ZERO + int(d)),
    "percent": lambda d: f"%{ord(d):02X}",
    "percent, lower-case hex": lambda d: f"%{ord(d):02x}",
    "full-width": lambda d: chr(0xFF10 + int(d)),
    "full-width, percent-encoded UTF-8": lambda d: quote(chr(0xFF10 + int(d))),
    "full-width, JSON-escaped": lambda d: f"\\u{0xFF10 + int(d):04x}",
    "Arabic-Indic": lambda d: chr(0x0660 + int(d)),
    "Devanagari": lambda d: chr(0x0966 + int(d)),
    "Meetei Mayek (the second charmap)": lambda d: chr(0xABF0 + int(d)),
    "superscript (NFKC folds it)": lambda d: unicodedata.lookup(
        "SUPERSCRIPT " + unicodedata.name(d).removeprefix("DIGIT ")
    ),
    "circled (NFKC folds it)": lambda d: chr(0x24EA) if d == "0" else chr(0x245F + int(d)),
    "mathematical, UTF-8": lambda d: chr(MATH_ZERO + int(d)),
}
SEPARATORS = {
    "none": "",
    "space": " ",
    "three spaces": "   ",
    "dash": "-",
    "dot": ".",
    "slash": "/",
    "tab": "\t",
    "newline": "\n",
    "CRLF": "\r\n",
    "spaced dash": " - ",
    "NBSP": "\u00a0",
    "thin space": "\u2009",
    "ideographic space": "\u3000",
    "en dash": "\u2013",
    "form plus": "+",
    "percent space": "%20",
    "percent NBSP": "%C2%A0",
    "JSON-escaped NBSP": "\\u00a0",
    "JSON-escaped newline": "\\n",
}


def spell(number: str, encoding: str, separator: str) -> str:
    encode = ENCODINGS[encoding]
    groups = [number[i : i + 4] for i in range(0, len(number), 4)]
    return SEPARATORS[separator].join("".join(encode(d) for d in g) for g in groups)


@pytest.mark.parametrize("separator", SEPARATORS)
@pytest.mark.parametrize("encoding", ENCODINGS)
def test_every_encoding_and_separator_is_decoded_before_the_scan(
    encoding: str, separator: str
) -> None:
    spelled = spell(CARD_NUMBER, encoding, separator)
    assert holds_card_number(f"note={spelled}&x=1")
    assert holds_card_number(spelled.encode("utf-8"))
    # The same spelling of a number that fails Luhn is left alone.
    assert not holds_card_number(spell("4242424242424241", encoding, separator))


def _fed(data: bytes, cuts: Iterable[int], *, depth: int | None = None) -> str | None:
    scanner = CardScanner(json_depth_limit=depth)
    previous = 0
    for cut in [*sorted(cuts), len(data)]:
        if scanner.feed(data[previous:cut]):
            return scanner.found
        previous = cut
    return scanner.finish()


@pytest.mark.parametrize(
    "spelled",
    [
        spell(CARD_NUMBER, "plain", "space"),
        spell(CARD_NUMBER, "JSON escapes", "JSON-escaped NBSP"),
        spell(CARD_NUMBER, "JSON surrogate pairs (mathematical digits)", "none"),
        spell(CARD_NUMBER, "percent", "percent NBSP"),
        spell(CARD_NUMBER, "full-width", "ideographic space"),
        spell(CARD_NUMBER, "full-width, percent-encoded UTF-8", "form plus"),
    ],
    ids=["plain", "escapes", "surrogate pairs", "percent", "UTF-8", "percent-encoded UTF-8"],
)
def test_a_number_or_an_escape_split_across_chunks_is_still_found(spelled: str) -> None:
    data = f'{{"note": "x1 {spelled} y"}}'.encode()
    for cut in range(1, len(data)):
        assert _fed(data, [cut]) == CARD, cut
    assert _fed(data, range(1, len(data))) == CARD  # one byte at a time


TEXT_PARTS = [
    *"0123456789 4242",
    "  ",
    "-",
    ".",
    "/",
    "\t",
    "+",
    "%",
    "%3",
    "%34",
    "%20",
    "%E2%80%93",
    "%EF%BC%94",
    "%00",
    "%5C",
    "\\",
    "\\\\",
    "\\u0034",
    "\\u00",
    "\\ud835\\udfd2",
    "\\ud835",
    "\\udfd2",
    "\\n",
    "\\/",
    '"',
    '\\"',
    "u",
    "x",
    "\u00e9",
    "\uff14",
    "\u0664",
    "\u00a0",
    "\u2013",
    "\x00",
    "\u0e54",  # Thai 4: the first charmap
    "\uabf4",  # Meetei Mayek 4: the second
    "\u00b2",  # superscript 2: NFKC folds it to one digit
    "\u2463",  # circled 4
    "\u00bc",  # 1/4: NFKC makes it "1", a fraction slash and "4"
    "\u2488",  # "1." in one character
    "\u2025",  # two dots: separators only
    "\u00bd",  # 1/2
    "\u249b",  # "20." in one character
    "\u3251",  # circled 21: "21"
    "\u2474",  # "(1)"
    "\u3358",  # "0" and an ideograph
    "\u2044",  # the fraction slash on its own
    "\U0001d7d2",  # mathematical 4, beyond the BMP
    "\U0001f101",  # "0," beyond the BMP
    "\U0001f600",  # beyond the BMP, and NFKC keeps it there
    "?",  # what a character without a charmap slot encodes as
    "\ufffd",
    *SPELLINGS,
]


@settings(max_examples=400, deadline=None)
@given(
    parts=st.lists(st.sampled_from(TEXT_PARTS), max_size=40),
    cuts=st.lists(st.integers(min_value=1, max_value=400), max_size=5),
)
def test_the_scanner_agrees_with_the_plain_per_character_rule(
    parts: list[str], cuts: list[int]
) -> None:
    data = "".join(parts).encode("utf-8")
    expected = CARD if reference.holds_card_number(data) else None
    assert _fed(data, {c for c in cuts if c < len(data)}) == expected


def _with_several_digit_forms(luhn_ok: bool) -> str:
    """A Visa 16 whose "21" is circled 21 (U+3251), whose "20" is "20." in one character
    (U+249B), and whose last digit is the "1" of 1/4 (U+00BC: "1", a fraction slash, "4")."""
    for middle in range(10**9):
        digits = f"442120{middle:09d}1"
        if luhn_valid(digits) == luhn_ok:
            return "44\u3251\u249b" + f"{middle:09d}" + "\u00bc"
    raise AssertionError


def _json_escaped(text: str) -> str:
    """Every character as JSON \\u escapes (beyond the BMP, a surrogate pair)."""
    units = text.encode("utf-16-be", "surrogatepass")
    return "".join(f"\\u{units[i : i + 2].hex()}" for i in range(0, len(units), 2))


@pytest.mark.parametrize("astral", [False, True], ids=["BMP", "with mathematical 4"])
@pytest.mark.parametrize("encoding", ["UTF-8", "JSON escapes", "percent-encoded UTF-8"])
def test_a_digit_in_a_form_of_several_characters_is_read_in_place_across_every_split(
    encoding: str, astral: bool
) -> None:
    for luhn_ok in (True, False):
        spelled = _with_several_digit_forms(luhn_ok)
        if astral:  # the first 4 as MATHEMATICAL BOLD DIGIT FOUR, beyond the BMP
            spelled = "\U0001d7d2" + spelled[1:]
        if encoding == "JSON escapes":
            spelled = _json_escaped(spelled)
        elif encoding == "percent-encoded UTF-8":
            spelled = quote(spelled)
        data = f'{{"note": "x\u00e9 {spelled} y"}}'.encode()
        expected = CARD if luhn_ok else None
        assert (CARD if reference.holds_card_number(data) else None) == expected
        for cut in range(1, len(data)):
            assert _fed(data, [cut]) == expected, (cut, luhn_ok)
        assert _fed(data, range(1, len(data))) == expected


def test_a_number_across_a_piece_of_a_long_segment_is_found() -> None:
    """Escape bytes alone (digits, backslashes) give no cut point, so the body is one segment;
    its text is classed a piece (64 Ki characters) at a time."""
    for offset in range(-17, 2):
        for number, expected in ((CARD_NUMBER, CARD), ("4242424242424241", None)):
            # An escaped backslash is two characters of text (breaks)
            lead = "\\\\" * ((65536 + offset) // 2) + "4" * ((65536 + offset) % 2) + "\\\\"
            data = (lead + number + "\\\\4" * 100).encode()
            assert _fed(data, range(4096, len(data), 4096)) == expected, offset
            assert holds_card_number(data) == (expected == CARD), offset


def test_every_character_beyond_the_bmp_is_classed_as_the_reference_classes_its_nfkc_form() -> None:
    """Read from UTF-32 bytes, not normalized: the tables cover plane 1, and no other plane
    holds a character whose NFKC form holds a digit or separator."""
    for code in range(0x20000, 0x110000):
        assert set(reference.classes(chr(code))) <= {"x"}, hex(code)
    plane_1 = [chr(code) for code in range(0x10000, 0x20000)]
    for char in plane_1:
        expected = reference.classes(char + "\u00e9").replace("x", "\x00").encode("ascii")
        assert _canonical(classes_of(char + "\u00e9")) == _canonical(expected), hex(ord(char))
    # All at once, among BMP characters with markers and without
    everything = "4\u00bc".join(plane_1) + "\uff14\u00e9"
    expected = reference.classes(everything).replace("x", "\x00").encode("ascii")
    assert _canonical(classes_of(everything)) == _canonical(expected)


SEVERAL_FORMS = "\u00bc\u00bd\u2153\u2469\u249b\u3251\u3358\u32bf"  # 1/4 ... circled 50


@pytest.mark.parametrize(
    "text",
    [
        "4 " * 200 + "\u00bc" + "4 " * 200 + "\u3251\u00e9",
        "4 " * 400 + SEVERAL_FORMS + "\u00e9",
        SEVERAL_FORMS * 20,
        "\u00bc4\u3251 " * 50 + "\u2487",  # (20): a form four classes wide
        "\u00bc\u3251" * 50,
    ],
    ids=["sparse, two kinds", "sparse, many kinds", "dense", "dense, widest", "dense, narrow"],
)
def test_characters_with_forms_of_several_classes_are_expanded_in_place(text: str) -> None:
    expected = reference.classes(text).replace("x", "\x00").encode("ascii")
    assert _canonical(classes_of(text)) == _canonical(expected)
    assert _canonical(charmap_classes(text)) == _canonical(expected)  # markers, expanded


def _own_class(char: str) -> str:
    """A character's class by its own category, before any NFKC: what composition sees."""
    category = unicodedata.category(char)
    if category == "Nd":
        return "d"
    if char in " \t\n\r\v\f-./+\u2212" or category in ("Zs", "Zl", "Zp", "Pd"):
        return " "
    return "x"


def test_no_digit_or_separator_is_reordered_or_composed_by_nfkc() -> None:
    """The scanner classes each character by its own NFKC form. That agrees with classing the
    NFKC form of the whole text because NFKC changes a text beyond its characters' own forms
    only by reordering combining marks and composing pairs into one character, and no digit or
    separator is a combining mark, one of a pair, or what a pair composes to."""
    for code in range(0x110000):
        char = chr(code)
        if unicodedata.combining(char):
            assert _own_class(char) == "x", hex(code)
        parts = unicodedata.decomposition(char).split()
        if len(parts) == 2 and not parts[0].startswith("<"):
            pair = [chr(int(part, 16)) for part in parts]
            assert {_own_class(c) for c in [char, *pair]} == {"x"}, hex(code)


def _canonical(classes: bytes) -> bytes:
    """Classes as the digit lanes read them: a run of separators and breaks is one break if it
    holds a break, else one separator."""
    return re.sub(rb"[\x00 ]+", lambda run: b"\x00" if b"\x00" in run[0] else b" ", classes)


def test_every_bmp_character_is_classed_as_the_reference_classes_its_nfkc_form() -> None:
    for code in range(0x80, 0x10000):
        char = chr(code)
        expected = reference.classes(char).replace("x", "\x00").encode("ascii")
        assert _canonical(classes_of(char)) == _canonical(expected), hex(code)
    # U+0001, the break decoding puts for a quote, has a slot in the first map; the second
    # map's spare slots repeat the first map's characters, which count once. (A text of few
    # kinds beyond ASCII is classed through ASCII stand-ins: the charmaps are asked directly.)
    for classed in (classes_of, charmap_classes):
        assert classed("\x014\uff14\x01\u00b2\x01") == b"\x0044\x002\x00"
        assert classed("\x014 \uff14\u00e9\uabf4") == b"\x004 4\x004"
        # Circled 1 needs no NFKC, circled 10 does; ¼ is in Latin-1, mathematical 4 beyond the
        # BMP.
        assert classed("\u2460\u00e9\u2469") == b"1\x0010"
        assert classed("\u00bc\u00e9") == b"1\x004\x00"
        assert classed("\U0001d7d2\u00e9") == b"4\x00"
    # Every character at once: those that need the text normalized take the rest with them.
    everything = "".join(map(chr, range(0x80, 0x10000)))
    expected = reference.classes(everything).replace("x", "\x00").encode("ascii")
    assert _canonical(classes_of(everything)) == _canonical(expected)


# -- JSON depth ------------------------------------------------------------------------------------


def nested(depth: int, inner: str = "1") -> bytes:
    return ("[" * depth + inner + "]" * depth).encode()


def test_json_nested_past_the_limit_is_too_deep_and_at_the_limit_is_not() -> None:
    assert _fed(nested(JSON_DEPTH_LIMIT), [], depth=JSON_DEPTH_LIMIT) is None
    assert _fed(nested(JSON_DEPTH_LIMIT + 1), [], depth=JSON_DEPTH_LIMIT) == TOO_DEEP
    assert _fed(nested(1000), [], depth=JSON_DEPTH_LIMIT) == TOO_DEEP
    objects = ('{"a":' * 40 + "1" + "}" * 40).encode()
    assert _fed(objects, range(1, len(objects)), depth=JSON_DEPTH_LIMIT) == TOO_DEEP


def test_brackets_inside_strings_do_not_count_and_cannot_hide_nesting() -> None:
    in_strings = json.dumps(["[" * 100, "{" * 100, 'x\\"[[[[', "]" * 100]).encode()
    assert _fed(in_strings, [], depth=JSON_DEPTH_LIMIT) is None
    hiding = json.dumps(["]" * 100]).encode()[:-1] + b"," + nested(40) + b"]"
    assert _fed(hiding, [], depth=JSON_DEPTH_LIMIT) == TOO_DEEP


def test_brackets_and_backslashes_in_a_string_longer_than_a_segment_do_not_count() -> None:
    # The middle segments hold backslashes and brackets but no quote.
    inside = b"\\\\\\[{" * 3000  # an escaped backslash, then a backslash before a bracket
    for depth in (JSON_DEPTH_LIMIT, JSON_DEPTH_LIMIT + 1):
        data = b'["' + inside + b'", ' + nested(depth - 1) + b"]"
        assert reference.json_depth(data) == depth
        found = _fed(data, range(1000, len(data), 1000), depth=JSON_DEPTH_LIMIT)
        assert found == (TOO_DEEP if depth > JSON_DEPTH_LIMIT else None)


# Integers of at most 10 digits: a longer one may be a card number (2**42 + 1 is a Visa-13),
# and this test is about depth alone.
json_values = st.recursive(
    st.none() | st.integers(-(10**10) + 1, 10**10 - 1) | st.text(alphabet='[]{}"\\ax'),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text('[]{}"k'), inner, max_size=3)
    ),
    max_leaves=60,
)


@settings(max_examples=200, deadline=None)
@given(value=json_values, wrap=st.integers(0, 40), cuts=st.lists(st.integers(1, 2000), max_size=6))
def test_the_depth_count_agrees_with_a_plain_parser(value: Any, wrap: int, cuts: list[int]) -> None:
    data = b"[" * wrap + json.dumps(value).encode() + b"]" * wrap
    expected = TOO_DEEP if reference.json_depth(data) > JSON_DEPTH_LIMIT else None
    assert _fed(data, {c for c in cuts if c < len(data)}, depth=JSON_DEPTH_LIMIT) == expected


# -- through the app -------------------------------------------------------------------------------


def _captured(caplog: pytest.LogCaptureFixture) -> str:
    # httpx is the test's own client logging the URL it sends; everything else is the server.
    return "\n".join(
        f"{r.name} {r.getMessage()} {r.args}" for r in caplog.records if r.name != "httpx"
    )


def _assert_not_echoed(texts: Iterable[str], digits: str = CARD_NUMBER) -> None:
    for text in texts:
        squeezed = "".join(c for c in text if c.isdigit())
        assert digits not in squeezed
        assert digits[:8] not in text


@pytest.mark.parametrize("spelling", SPELLINGS)
@pytest.mark.parametrize(
    "where",
    ["json string", "json number", "query", "form", "unknown field", "nested"],
)
def test_a_request_holding_a_card_number_is_refused_and_nothing_is_logged_or_stored(
    client: TestClient[Any],
    container: Container,
    fake: FakeGateway,
    caplog: pytest.LogCaptureFixture,
    spelling: str,
    where: str,
) -> None:
    caplog.set_level(logging.DEBUG)
    digits = spelling.replace(" ", "").replace("-", "")
    requests: dict[str, Callable[[], Any]] = {
        "json string": lambda: client.post(
            "/billing/checkout",
            headers=H,
            json={"plan": "growth", "interval": "month", "return_url": f"https://x.io/{spelling}"},
        ),
        "json number": lambda: client.post(
            "/billing/checkout",
            headers=H,
            content=f'{{"plan": "growth", "interval": "month", "card": {digits}}}',
        ),
        "query": lambda: client.get("/billing/invoices", headers=H, params={"note": spelling}),
        "form": lambda: client.post(
            "/sandbox/checkout/cs_1/complete", data={"outcome": "succeeded", "number": spelling}
        ),
        "unknown field": lambda: client.post(
            "/billing/portal", headers=H, json={"card_number": spelling}
        ),
        "nested": lambda: client.post(
            "/billing/subscription/change",
            headers=H,
            json={"plan": "growth", "interval": "month", "quote_id": f"qt {spelling} x"},
        ),
    }
    response = requests[where]()
    assert response.status_code == 400
    assert response.json() == {"code": "card_data_rejected", "detail": response.json()["detail"]}
    assert digits not in response.text
    logged = _captured(caplog)
    assert "card_data_rejected" in logged
    assert digits not in logged.replace(" ", "").replace("-", "")
    # Nothing reached a handler: no customer, no checkout, no audit entry, no gateway call.
    store = memory_store(container)
    assert store.data.audit == []
    assert store.data.customers == {}
    assert fake.calls == []


SPELLED_IN_REQUESTS = {
    "NBSP": spell(CARD_NUMBER, "plain", "NBSP"),
    "dots": spell(CARD_NUMBER, "plain", "dot"),
    "slashes": spell(CARD_NUMBER, "plain", "slash"),
    "tabs": spell(CARD_NUMBER, "plain", "tab"),
    "newlines": spell(CARD_NUMBER, "plain", "CRLF"),
    "two spaces": spell(CARD_NUMBER, "plain", "three spaces"),
    "full-width": spell(CARD_NUMBER, "full-width", "ideographic space"),
    "Arabic-Indic": spell(CARD_NUMBER, "Arabic-Indic", "space"),
    "JSON escapes": spell(CARD_NUMBER, "JSON escapes", "none"),
    "mathematical pairs": spell(CARD_NUMBER, "JSON surrogate pairs (mathematical digits)", "dash"),
}


def _request(client: TestClient[Any], where: str, spelled: str) -> Any:
    ascii_only = spelled.isascii()
    if where == "path":
        return client.get(f"/billing/invoices/{quote(spelled, safe='')}/pdf", headers=H)
    if where == "query":
        return client.get("/billing/invoices", headers=H, params={"note": spelled})
    if where == "form body":
        return client.post(
            "/sandbox/checkout/cs_1/complete", data={"outcome": "succeeded", "card": spelled}
        )
    if where == "JSON body":  # escapes spelled into the JSON text itself, not escaped again
        note = spelled.replace("\n", "\\n")
        body = '{"plan": "growth", "interval": "month", "note": "' + note + '"}'
        return client.post("/billing/checkout", headers=H, content=body.encode())
    if where == "JSON body, ensure_ascii":
        body = json.dumps({"plan": "growth", "interval": "month", "note": spelled})
        return client.post("/billing/checkout", headers=H, content=body.encode())
    if where == "multipart body":
        return client.post(
            "/sandbox/checkout/cs_1/complete",
            data={"outcome": "succeeded"},
            files={"receipt": ("receipt.txt", f"paid with {spelled}\n".encode(), "text/plain")},
        )
    assert where == "header"
    value = spelled if ascii_only else quote(spelled)  # header values are Latin-1 on the wire
    return client.get(
        "/billing/invoices", headers={**H, "Idempotency-Key": value.replace("\n", " ")}
    )


@pytest.mark.parametrize(
    "where",
    [
        "path",
        "query",
        "form body",
        "JSON body",
        "JSON body, ensure_ascii",
        "multipart body",
        "header",
    ],
)
@pytest.mark.parametrize("spelling", SPELLED_IN_REQUESTS)
def test_every_spelling_is_refused_wherever_it_is_in_the_request(
    client: TestClient[Any], caplog: pytest.LogCaptureFixture, where: str, spelling: str
) -> None:
    caplog.set_level(logging.DEBUG)
    if where == "JSON body, ensure_ascii" and "\\" in SPELLED_IN_REQUESTS[spelling]:
        return  # json.dumps escapes the backslash: the value is the text "\u0034...", no digits
    response = _request(client, where, SPELLED_IN_REQUESTS[spelling])
    assert response.status_code == 400, response.text
    assert response.json()["code"] == "card_data_rejected"
    _assert_not_echoed([response.text, _captured(caplog)])


def test_a_card_number_in_a_header_is_refused(client: TestClient[Any]) -> None:
    response = client.get("/billing/invoices", headers={**H, "Idempotency-Key": CARD_NUMBER})
    assert response.status_code == 400
    assert response.json()["code"] == "card_data_rejected"


def test_authorization_and_cookie_headers_are_left_to_auth_and_not_scanned(
    client: TestClient[Any],
) -> None:
    response = client.get(
        "/billing/invoices", headers={**H, "Cookie": f"pan={CARD_NUMBER}; session=x"}
    )
    assert response.status_code == 200
    forged = client.get("/billing/invoices", headers={"Authorization": f"Bearer {CARD_NUMBER}"})
    assert forged.status_code == 401  # auth refused it, not the guard


def test_card_data_in_a_path_is_refused_too(client: TestClient[Any]) -> None:
    response = client.get(f"/billing/invoices/{CARD_NUMBER}/pdf", headers=H)
    assert response.status_code == 400
    assert response.json()["code"] == "card_data_rejected"


def test_honest_timestamps_ids_dates_and_phone_numbers_pass_through(
    client: TestClient[Any],
) -> None:
    listed = client.get(
        "/billing/invoices",
        headers={**H, "X-Request-Start": "1796206568000", "Idempotency-Key": "in_" + "7" * 24},
        params={"since": "1796206568000", "phone": "+1 415-555-0132", "on": "2026-03-01"},
    )
    assert listed.status_code == 200, listed.text
    started = client.post(
        "/billing/checkout",
        headers=H,
        json={
            "plan": "growth",
            "interval": "month",
            "return_url": "https://x.io/orders/123456789012345678901234?at=1796206568000",
        },
    )
    assert started.status_code == 201, started.text
    paid = client.post(
        f"/sandbox/checkout/{started.json()['checkout_id']}/complete",
        data={"outcome": "succeeded", "card": "visa"},
        headers={"X-Client-Time": "1796206568000", "X-Phone": "+44 20 7946 0958"},
        follow_redirects=False,
    )
    assert paid.status_code == 303, paid.text


def test_the_request_log_names_the_route_template_not_the_path_or_query(
    client: TestClient[Any], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="billing.http")
    client.get("/billing/invoices/in_secretish/pdf", headers=H, params={"q": "private"})
    lines = [r.getMessage() for r in caplog.records if r.name == "billing.http"]
    assert any("GET /billing/invoices/{invoice_id}/pdf 404" in line for line in lines)
    assert not any("in_secretish" in line or "private" in line for line in lines)


def test_a_refusal_is_logged_with_the_route_template_and_the_code_only(
    client: TestClient[Any], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="billing.http")
    client.get("/billing/invoices/in_x/pdf", headers=H, params={"q": CARD_NUMBER})
    refusals = [r.getMessage() for r in caplog.records if r.getMessage().startswith("refused")]
    assert refusals == ["refused GET /billing/invoices/{invoice_id}/pdf: card_data_rejected"]


def test_a_clean_request_passes_through_with_its_body_intact(client: TestClient[Any]) -> None:
    response = client.post(
        "/billing/checkout", headers=H, json={"plan": "growth", "interval": "month"}
    )
    assert response.status_code == 201


# -- raw ASGI: how the body streams in -------------------------------------------------------------


class Exchange:
    """One request over raw ASGI; counts the body bytes the app pulled from `receive`."""

    def __init__(self, container: Container) -> None:
        self.app = create_app(container)
        self.pulled = 0
        self.sent: list[dict[str, Any]] = []

    def __call__(
        self, path: str, chunks: Iterable[bytes], *, headers: Iterable[tuple[str, str]] = ()
    ) -> tuple[int, dict[str, Any]]:
        self.pulled, self.sent = 0, []
        stream: Iterator[bytes] = iter(chunks)
        upcoming = next(stream, None)

        async def receive() -> dict[str, Any]:
            nonlocal upcoming
            if upcoming is None:
                return {"type": "http.disconnect"}
            chunk, upcoming = upcoming, next(stream, None)
            self.pulled += len(chunk)
            return {"type": "http.request", "body": chunk, "more_body": upcoming is not None}

        async def send(message: dict[str, Any]) -> None:
            self.sent.append(message)

        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "POST",
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "root_path": "",
            "query_string": b"",
            "headers": [(b"host", b"test")]
            + [(k.lower().encode(), v.encode()) for k, v in headers]
            + [(b"authorization", H["Authorization"].encode())],
            "client": ("127.0.0.1", 50000),
            "server": ("test", 80),
            "state": {},
        }
        # A thread of its own, with its own event loop: a browser test's Playwright session
        # may hold this thread's loop open for the rest of the run.
        worker = threading.Thread(
            target=anyio.run, args=(cast(Any, self.app), scope, receive, send)
        )
        worker.start()
        worker.join(timeout=60)
        start = next(m for m in self.sent if m["type"] == "http.response.start")
        body = b"".join(m.get("body", b"") for m in self.sent if m["type"] == "http.response.body")
        return start["status"], json.loads(body)


@pytest.fixture
def exchange(container: Container) -> Exchange:
    return Exchange(container)


def _split(data: bytes, *cuts: int) -> list[bytes]:
    edges = [0, *cuts, len(data)]
    return [data[a:b] for a, b in itertools.pairwise(edges)]


def test_a_chunked_body_is_scanned_across_chunk_boundaries(exchange: Exchange) -> None:
    body = b'{"plan": "growth", "interval": "month", "note": "4242 4242 4242 4242"}'
    middle = body.index(b"4242 4242") + 6  # between two digits of the number
    status, payload = exchange("/billing/checkout", _split(body, middle, middle + 3))
    assert (status, payload["code"]) == (400, "card_data_rejected")

    escaped = ('{"note": "' + spell(CARD_NUMBER, "JSON escapes", "space") + '"}').encode()
    inside_escape = escaped.index(b"\\u0034") + 3  # "\u0" | "034"
    status, payload = exchange("/billing/checkout", _split(escaped, inside_escape))
    assert (status, payload["code"]) == (400, "card_data_rejected")
    _assert_not_echoed([json.dumps(payload)])


def test_a_declared_oversize_body_is_refused_before_any_of_it_is_read(
    exchange: Exchange, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    endless = (b"4" * 65536 for _ in iter(int, 1))
    status, payload = exchange(
        "/billing/checkout", endless, headers=[("content-length", str(50 * 1024 * 1024))]
    )
    assert (status, payload["code"]) == (413, "request.too_large")
    assert exchange.pulled == 0
    assert "request.too_large" in _captured(caplog)


def test_a_streamed_oversize_body_is_refused_as_soon_as_it_passes_the_limit(
    exchange: Exchange,
) -> None:
    chunk = b'"note": "' + b"ab 12 " * 10000
    endless = (chunk for _ in iter(int, 1))  # no Content-Length, and it would never end
    status, payload = exchange("/billing/checkout", endless)
    assert (status, payload) == (413, {"code": "request.too_large", "detail": payload["detail"]})
    assert GUARDED_BODY_LIMIT < exchange.pulled <= GUARDED_BODY_LIMIT + len(chunk)


def test_a_body_at_the_limit_is_read_and_scanned(exchange: Exchange) -> None:
    body = b'{"plan": "growth", "interval": "month", "note": "'
    body += b"1 " * ((GUARDED_BODY_LIMIT - len(body) - 2) // 2) + b'"}'
    status, payload = exchange("/billing/checkout", _split(body, 65536, 3 * 65536))
    assert exchange.pulled == len(body) <= GUARDED_BODY_LIMIT
    # Passed on whole: the handler's own decoding refuses the unknown field.
    assert (status, payload["code"]) == (422, "request.invalid")


def test_deep_json_is_refused_before_it_reaches_the_decoder(
    client: TestClient[Any], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    response = client.post("/billing/checkout", headers=H, content=nested(1000))
    assert response.status_code == 400
    assert response.json()["code"] == "request.too_deep"
    assert "[" not in response.text
    deep_enough = client.post(
        "/billing/checkout",
        headers=H,
        content=b'{"plan": "growth", "interval": "month", "x": ' + nested(31) + b"}",
    )
    assert deep_enough.status_code != 400 or deep_enough.json()["code"] != "request.too_deep"


def test_a_deep_form_body_is_not_counted_as_json(client: TestClient[Any]) -> None:
    response = client.post(
        "/sandbox/checkout/cs_1/complete", data={"outcome": "succeeded", "x": "[" * 100}
    )
    assert "request.too_deep" not in response.text
