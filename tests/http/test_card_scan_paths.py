"""The card scanner's shortcuts agree with its full paths and with the plain per-character rule.

Each shortcut is taken on some inputs and not on others: characters beyond ASCII classed through
ASCII stand-ins (few kinds) or the charmaps (many kinds); the run filter in front of the digit
lanes (a piece with no run of 13+ digits skips the arithmetic); quotes and bad escapes set one
by one or in passes; segments without brackets counted for quotes only.
"""

from __future__ import annotations

import json
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from responseiq_billing.adapters.http import card_charmaps, card_decode
from responseiq_billing.adapters.http.card_charmaps import charmap_classes, classes_of
from responseiq_billing.adapters.http.card_scan import CARD, JSON_DEPTH_LIMIT, TOO_DEEP, CardScanner
from responseiq_billing.adapters.http.guard import luhn_valid
from tests.http import card_reference as reference

CARD_NUMBER = "4242424242424242"


def _fed(data: bytes, step: int, *, depth: int | None = None) -> str | None:
    scanner = CardScanner(json_depth_limit=depth)
    for start in range(0, len(data), step):
        if scanner.feed(data[start : start + step]):
            return scanner.found
    return scanner.finish()


def _expected(data: bytes) -> str | None:
    return CARD if reference.holds_card_number(data) else None


# -- classes: ASCII stand-ins and charmaps ---------------------------------------------------------


def test_every_character_has_the_same_classes_through_its_stand_in_and_the_charmaps() -> None:
    """One character is one kind: `classes_of` reads it through its stand-in."""
    for code in [*range(0x80, 0xD800), *range(0xE000, 0x20000)]:
        char = chr(code)
        assert classes_of(char) == charmap_classes(char), hex(code)


def _canonical(classes: bytes) -> bytes:
    return re.sub(rb"[\x00 ]+", lambda run: b"\x00" if b"\x00" in run[0] else b" ", classes)


# Characters of every map, with markers, separators, breaks and ASCII
BEYOND_ASCII = list(
    "\uff14\u00bc\u3251\uabf4\u0664\u0966\u2153\u00e9\u00a0\u2013\u249b\u2488\u00b2\u2463"
    "\U0001d7d2\U0001f101\U0001f600\u0e54\u00bd\u3000\ufffd"
)


@settings(max_examples=300, deadline=None)
@given(
    parts=st.lists(st.sampled_from([*BEYOND_ASCII, "4", "2", " ", "x", "-", "\x01"]), max_size=60)
)
def test_texts_of_few_and_of_many_kinds_beyond_ascii_are_classed_as_the_reference_does(
    parts: list[str],
) -> None:
    text = "".join(parts)
    expected = reference.classes(text).replace("x", "\x00").encode("ascii")
    assert _canonical(classes_of(text)) == _canonical(expected)
    assert _canonical(charmap_classes(text)) == _canonical(expected)


@pytest.mark.parametrize("kinds", [1, card_charmaps._KINDS, card_charmaps._KINDS + 1, 20])
@pytest.mark.parametrize("luhn_ok", [True, False])
def test_a_card_among_any_number_of_kinds_beyond_ascii_is_found(kinds: int, luhn_ok: bool) -> None:
    number = CARD_NUMBER if luhn_ok else "4242424242424241"
    spelled = "".join(chr(0xFF10 + int(d)) for d in number[:8]) + number[8:]  # full-width
    noise = (
        "".join(BEYOND_ASCII[:kinds])
        if kinds <= len(BEYOND_ASCII)
        else "".join(chr(0x4E00 + i) for i in range(kinds))
    )
    data = f"{noise} {spelled} {noise}".encode()
    assert _expected(data) == (CARD if luhn_ok else None)
    assert _fed(data, 7) == _expected(data)


# -- the run filter in front of the digit lanes ----------------------------------------------------

RUN_PARTS = [
    "4" * 13,  # a run that is just long enough, a possible Visa-13 start
    "4 " * 13,
    "4242 4242 4242 4242",
    "4242 4242 4242 4241",
    "1" * 12,
    "x",
    "x" * 300,  # a run of breaks
    " " * 50,
    "4 4x",
    "\u00bc",
    "1234 5678 9012 345",
]


@settings(max_examples=150, deadline=None)
@given(
    parts=st.lists(st.sampled_from(RUN_PARTS), min_size=1, max_size=400),
    step=st.sampled_from([1000, 4096, 65536]),
)
def test_the_run_filter_leaves_out_no_window_that_is_a_card(parts: list[str], step: int) -> None:
    """Long texts, fed in chunks of several sizes, with runs of every length."""
    data = "".join(parts).encode()
    assert _fed(data, step) == _expected(data)


@pytest.mark.parametrize("lead", [0, 1, 12, 13, 2047, 2048, 2049, 5000])
@pytest.mark.parametrize("gap", ["x", "x" * 9, " x "])
def test_a_card_after_runs_of_every_length_and_before_the_end_is_found(lead: int, gap: str) -> None:
    for number, expected in ((CARD_NUMBER, CARD), ("4242424242424241", None)):
        text = ("4" * 13 + gap) * (lead // 14) + "1" * (lead % 14) + gap + number
        # After the number: nothing, a break, a run of 13, or many short runs
        for tail in ("", gap, gap + "4" * 13, gap + "12x" * 1000, gap + "12x" * 1000 + "4" * 13):
            data = (text + tail).encode()
            assert _fed(data, 4096) == expected, (lead, gap, tail)
            assert _fed(data, 997) == expected, (lead, gap, tail)


# Issuer prefixes of every brand and length the lanes tell apart, and prefixes of none
_PREFIXES = [
    "4",
    "51",
    "2221",
    "34",
    "37",
    "6011",
    "65",
    "300",
    "36",
    "3528",
    "62",
    "5018",
    "9",
    "1",
]


@st.composite
def _digit_groups(draw: st.DrawFn) -> str:
    """A group of 1-19 digits after a brand's prefix, Luhn-valid about one time in ten; or one
    made Luhn-valid for its length on purpose."""
    prefix = draw(st.sampled_from(_PREFIXES))
    length = draw(st.integers(min_value=max(1, len(prefix)), max_value=19))
    rest = draw(st.text("0123456789", min_size=length - len(prefix), max_size=length - len(prefix)))
    digits = prefix + rest
    if draw(st.booleans()) and len(digits) > 1:
        body = digits[:-1]
        digits = next(body + c for c in "0123456789" if luhn_valid(body + c))
    return digits


@settings(max_examples=400, deadline=None)
@given(
    parts=st.lists(
        st.one_of(_digit_groups(), st.sampled_from([" ", "-", "  ", ".", "x", "/", "\t", "é"])),
        max_size=30,
    ),
    step=st.sampled_from([1, 5, 13, 19, 4096]),
)
def test_windows_of_every_brand_and_length_agree_with_the_plain_rule(
    parts: list[str], step: int
) -> None:
    """Groups of every length with every brand's prefix, next to one another or apart, cut
    into chunks of many sizes (so windows cross from one chunk's lanes into the next)."""
    data = "".join(parts).encode()
    assert _fed(data, step) == _expected(data)


def test_a_card_far_from_a_long_run_is_found_with_short_runs_after_it() -> None:
    """A number about 2,000 lanes after a long run, then short runs only (an earlier filter cut
    the lanes into regions of 2048 from a long run's start: the number spanned its edge)."""
    for pad in range(2010, 2040):
        for number, expected in ((CARD_NUMBER, CARD), ("4242424242424241", None)):
            data = ("4" * 13 + "x" * pad + number + "x" + "12x" * 1000).encode()
            assert _fed(data, 65536) == expected, pad


# -- decoding: percent escapes; quotes and bad escapes set one by one or in passes ----------------

PERCENT_PARTS = [b"%", b"%3", b"%34", b"%25", b"%2", b"%00", b"%5C", b"%4a", b"%4A", b"%41"]
PERCENT_PARTS += [b"%42", b"%43", b"%%", b"25", b"3", b"4", b"x", b"\x00", b"%EF%BC%94"]


@settings(max_examples=500, deadline=None)
@given(parts=st.lists(st.sampled_from(PERCENT_PARTS), max_size=40))
def test_percent_decoding_in_lanes_agrees_with_the_plain_rule(parts: list[bytes]) -> None:
    data = b"".join(parts)
    assert card_decode.percent_decode(data) == reference.percent_decoded(data)


@pytest.mark.parametrize("count", [1, card_decode._FEW, card_decode._FEW + 1, 500])
@pytest.mark.parametrize("luhn_ok", [True, False])
def test_quotes_and_bad_escapes_among_escaped_digits_are_breaks_however_many(
    count: int, luhn_ok: bool
) -> None:
    number = CARD_NUMBER if luhn_ok else "4242424242424241"
    escaped = "".join(f"\\u{ord(d):04x}" for d in number)
    noise = '\\u00" \\"x \\\\" \\q ' * count
    for data in (
        f"{noise}{escaped}{noise}".encode(),
        f'{escaped[:30]}"{escaped[30:]}'.encode(),  # a quote inside the number breaks it
        f"{escaped[:30]}\\q{escaped[30:]}".encode(),  # so does a bad escape
    ):
        assert _fed(data, 4096) == _expected(data)
        assert _fed(data, 65536) == _expected(data)


JSON_PARTS = [
    "4",
    "42",
    "4242",
    " ",
    "\\",
    "\\\\",
    '"',
    '\\"',
    "\\q",
    "\\u0034",
    "\\u00",
    "\\ud835",
]
JSON_PARTS += ["\\udfd2", "\\n", "\\/", "x", "\u00e9", "%5C", "%22", "\\u0034\\u0032\\u0034\\u0032"]


@settings(max_examples=300, deadline=None)
@given(
    parts=st.lists(st.sampled_from(JSON_PARTS), max_size=300),
    lone=st.booleans(),
    step=st.sampled_from([5, 4096, 65536]),
)
def test_json_escapes_read_the_quick_way_or_made_safe_first_agree_with_the_plain_rule(
    parts: list[str], lone: bool, step: int
) -> None:
    """Few quotes: the C scanner reads the text, going on after each bad escape (a lone
    backslash at the end too); many quotes or bad escapes: the text is made safe first."""
    data = ("".join(parts) + ("\\" if lone else "")).encode()
    assert _fed(data, step) == _expected(data)


@pytest.mark.parametrize("bad", ["\\q", "\\u00", "\\ud835\\u00", "\\ud835\\q"])
@pytest.mark.parametrize("count", [1, card_decode._FEW, card_decode._FEW + 1, 1000])
def test_a_card_after_any_number_of_bad_escapes_is_found(bad: str, count: int) -> None:
    escaped = "".join(f"\\u{ord(d):04x}" for d in CARD_NUMBER)
    for number, expected in ((escaped, CARD), (escaped[:-1] + "1", None)):
        data = (bad * count + " " + number + " " + bad * count + "\\").encode()
        assert _expected(data) == expected
        assert _fed(data, 4096) == expected
        assert _fed(data, 65536) == expected


# -- JSON depth: segments without brackets count quotes only ---------------------------------------


@pytest.mark.parametrize("quotes", [0, 1, 2, card_decode._FEW, card_decode._FEW + 1, 3000])
@pytest.mark.parametrize("escaped", [False, True])
def test_long_strings_without_brackets_keep_the_depth_count_in_step(
    quotes: int, escaped: bool
) -> None:
    quote = '\\"' if escaped else '"'
    # Quotes, with escaped backslashes before them, in segments with no bracket
    filler = "e" * 9000 + ("ab\\\\" + quote + "cd ") * quotes + "e" * 9000
    for depth in (JSON_DEPTH_LIMIT, JSON_DEPTH_LIMIT + 1):
        inner = "[" * (depth - 1) + "1" + "]" * (depth - 1)
        in_a_string = ("[" + json.dumps(filler) + ", " + inner + ', "[[[["]').encode()
        assert reference.json_depth(in_a_string) == depth
        # Bare, its quotes open and close strings (a backslash before a quote outside a string
        # is not JSON, and is read as an escape: not compared)
        bare = ("[" + filler + ", " + inner + "]").encode()
        for data in (in_a_string, bare) if not escaped else (in_a_string,):
            expected = TOO_DEEP if reference.json_depth(data) > JSON_DEPTH_LIMIT else None
            assert _fed(data, 4096, depth=JSON_DEPTH_LIMIT) == expected
            assert _fed(data, 1000, depth=JSON_DEPTH_LIMIT) == expected


def test_luhn_of_the_test_number() -> None:
    assert luhn_valid(CARD_NUMBER)


# -- paths added for rare pieces: sparse characters beyond ASCII, few escapes, long segments -------

SPARSE_NOISE = [*BEYOND_ASCII, "\u2153 \u00e9", "\uff14\u00bc\u3251\uabf4\u0664\u0966\u2153"]


@settings(max_examples=150, deadline=None)
@given(
    parts=st.lists(st.sampled_from(RUN_PARTS + ["4242 4242 4242 4242 "] * 3), max_size=200),
    noise=st.lists(st.sampled_from(SPARSE_NOISE), max_size=8),
    step=st.sampled_from([4096, 65536]),
)
def test_rare_characters_beyond_ascii_through_the_error_handler_agree_with_the_reference(
    parts: list[str], noise: list[str], step: int
) -> None:
    """A few runs of characters beyond ASCII (any number of kinds) in long ASCII text: the
    stand-ins are put by an encoding error handler, or by kind, or the charmaps class it."""
    text = "".join(parts)
    for at, piece in enumerate(noise):  # spread through the text, next to digits too
        cut = len(text) * (at + 1) // (len(noise) + 1)
        text = text[:cut] + piece + text[cut:]
    expected = reference.classes(text).replace("x", "\x00").encode("ascii")
    assert _canonical(classes_of(text)) == _canonical(expected)
    data = text.encode()
    assert _fed(data, step) == _expected(data)


@pytest.mark.parametrize("kinds", [card_charmaps._KINDS + 1, card_charmaps._MORE_KINDS])
@pytest.mark.parametrize("dense", [False, True])
def test_more_kinds_than_few_take_stand_ins_or_charmaps_alike(kinds: int, dense: bool) -> None:
    noise = "".join(BEYOND_ASCII[:kinds])
    for number, expected in ((CARD_NUMBER, CARD), ("4242424242424241", None)):
        filler = "x" if dense else "4" * 13 + "x" * 300
        text = f"{noise}{filler}{number[:8]}{noise[0]}{number[8:]} {number} {filler}{noise}"
        assert _canonical(classes_of(text)) == _canonical(charmap_classes(text))
        assert _fed(text.encode(), 65536) == expected == _expected(text.encode())


# Escapes among long ASCII text, so that most texts have few enough for `few_escapes`
FEW_ESCAPE_PARTS = [*JSON_PARTS, *["4242 " * 120, "x" * 600, "4" * 13 + "x" * 600] * 6]


@settings(max_examples=300, deadline=None)
@given(
    parts=st.lists(st.sampled_from(FEW_ESCAPE_PARTS), max_size=120),
    lone=st.booleans(),
    step=st.sampled_from([4096, 65536]),
)
def test_few_escapes_set_one_by_one_agree_with_the_plain_rule(
    parts: list[str], lone: bool, step: int
) -> None:
    """Backslashes and quotes at most one in 256 bytes are set one by one (`few_escapes`)."""
    data = ("".join(parts) + ("\\" if lone else "")).encode()
    few = card_decode.few_escapes(data)
    if few is not None:  # the same classes as made safe in passes (a pair of backslashes is
        # one backslash there, two U+0001 here: a break either way)
        safe, _ = card_decode.json_unescape(data)
        read = [card_decode.json_string(text.decode()) for text in (few, safe)]
        assert _canonical(classes_of(read[0])) == _canonical(classes_of(read[1]))
    assert _fed(data, step) == _expected(data)


@pytest.mark.parametrize("unit", [b"4" * 19 + b"%20", b"%34%C2%A0", b"%%34%2", b"4%25%334"])
def test_percent_decoding_of_a_long_segment_in_pieces_agrees_with_the_plain_rule(
    unit: bytes,
) -> None:
    for offset in range(4):  # escapes across each piece boundary
        data = b"x" * offset + unit * (3 * 65536 // len(unit))
        assert card_decode.percent_decode(data) == reference.percent_decoded(data)


FEW_SEPARATOR_PARTS = ["4" * 13 + "x", "x" * 700, "4 x", "x 4", " x", "x ", "x x", "4  x"]
FEW_SEPARATOR_PARTS += [CARD_NUMBER + " x", "x " + CARD_NUMBER, "4242424242424241 x", "4242 4242"]


@settings(max_examples=200, deadline=None)
@given(
    parts=st.lists(st.sampled_from(FEW_SEPARATOR_PARTS), max_size=300),
    step=st.sampled_from([1000, 4096, 65536]),
)
def test_few_separators_next_to_breaks_read_as_breaks_agree_with_the_reference(
    parts: list[str], step: int
) -> None:
    data = "".join(parts).encode()
    assert _fed(data, step) == _expected(data)
