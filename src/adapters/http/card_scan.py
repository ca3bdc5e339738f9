"""Finds payment card numbers (and over-deep JSON) in request bytes: one pass, linear, streaming.

Per byte the work is a fixed number of C-speed steps (`bytes.translate`, `bytes.replace`, codecs,
and big-integer arithmetic used as SIMD-within-a-register); Python code runs per chunk, never per
byte or per digit group. Big-integer lanes are one byte each, little-endian, so `x >> 8*k` moves
lane i+k onto lane i and the arithmetic of thousands of lanes is one C loop.
"""

from __future__ import annotations

import codecs
import itertools
import json
import operator
import re
import unicodedata
from collections.abc import Iterable
from typing import Any

MIN_DIGITS, MAX_DIGITS = 13, 19
JSON_DEPTH_LIMIT = 32
# A segment is decoded and scanned as a whole: at least _MIN_SEGMENT bytes (so a body trickled in
# byte by byte does not pay the per-call cost per byte), and `scan` feeds _PIECE at a time.
_MIN_SEGMENT = 4 * 1024
_PIECE = 64 * 1024

# -- brands ----------------------------------------------------------------------------------------

_LENGTHS = range(MIN_DIGITS, MAX_DIGITS + 1)


def brand_lengths(prefix4: str) -> frozenset[int]:
    """The card lengths the issuer prefix (IIN) `prefix4` (its first four digits) is issued in."""
    a2, a3, a4 = int(prefix4[:2]), int(prefix4[:3]), int(prefix4)
    lengths: set[int] = set()
    if prefix4[0] == "4":  # Visa
        lengths |= {13, 16, 19}
    if 51 <= a2 <= 55 or 2221 <= a4 <= 2720:  # Mastercard
        lengths |= {16}
    if a2 in (34, 37):  # American Express
        lengths |= {15}
    if a4 == 6011 or 644 <= a3 <= 649 or a2 == 65:  # Discover
        lengths |= {16, 17, 18, 19}
    if 300 <= a3 <= 305 or a2 in (36, 38, 39):  # Diners Club
        lengths |= {14, 15, 16, 17, 18, 19}
    if 3528 <= a4 <= 3589:  # JCB
        lengths |= {16, 17, 18, 19}
    if a2 == 62:  # UnionPay
        lengths |= {16, 17, 18, 19}
    # Maestro: only its own IINs (its 50/56-69 "range" would claim most six-leading numbers);
    # 12-digit Maestro cards are left out with every other length below 13.
    if a4 in (5018, 5020, 5038, 5893, 6304, 6759, 6761, 6762, 6763):
        lengths |= set(_LENGTHS)
    return frozenset(lengths)


def luhn_valid(digits: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char)
        if index % 2 == 1:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def is_card_number(digits: str) -> bool:
    """The whole rule for one digit sequence: a brand's prefix, that brand's length, and Luhn."""
    return (
        digits.isascii()
        and digits.isdigit()
        and len(digits) in brand_lengths(digits[:4].ljust(4, "0"))
        and luhn_valid(digits)
    )


def _width_bits(prefix4: int) -> int:
    return sum(1 << (n - MIN_DIGITS) for n in brand_lengths(f"{prefix4:04d}"))


def _brand_tables() -> tuple[bytes, bytes]:
    """Tables from two digits to a row (as the first two of a prefix) and a column (as the next
    two), both in one byte, and from row * 16 + column to the mask of allowed lengths.

    The 100 x 100 four-digit prefixes fall into 16 distinct rows and 13 distinct columns, so
    one `translate` gives every lane its mask of allowed lengths.
    """
    row_of: dict[tuple[int, ...], int] = {}
    rows = [0] * 100
    for a in range(100):
        row = tuple(_width_bits(a * 100 + b) for b in range(100))
        rows[a] = row_of.setdefault(row, len(row_of))
    distinct = list(row_of)
    col_of: dict[tuple[int, ...], int] = {}
    cols = [0] * 100
    for b in range(100):
        cols[b] = col_of.setdefault(tuple(r[b] for r in distinct), len(col_of))
    assert len(distinct) <= 16 and len(col_of) <= 16, "brand tables outgrew a byte"
    widths = bytearray(256)
    for a in range(100):
        for b in range(100):
            widths[rows[a] * 16 + cols[b]] = _width_bits(a * 100 + b)
    row_col = bytes([rows[v] << 4 | cols[v] if v < 100 else 0 for v in range(256)])
    return row_col, bytes(widths)


_ROW_COL, _WIDTHS = _brand_tables()

# -- lane helpers ----------------------------------------------------------------------------------


def _table(mapping: dict[int, int], default: int = 0) -> bytes:
    return bytes(mapping.get(i, default) for i in range(256))


class _Repeated:
    """`byte` repeated in lanes, from one cached integer of at least as many lanes as asked for."""

    def __init__(self, byte: int) -> None:
        self._byte, self._lanes, self._value = byte, 0, 0

    def mask(self, n: int) -> int:
        """At least n lanes, for `x & mask(n)` where x has at most n lanes: `&` of two positive
        integers is as long as the shorter one and costs that, so nothing is cut or copied."""
        if n > self._lanes:
            self._lanes = max(n, 2 * self._lanes, 1024)
            self._value = int.from_bytes(bytes([self._byte]) * self._lanes, "little")
        return self._value

    def __call__(self, n: int) -> int:
        """Exactly n lanes, for `^`, `|` and `+`."""
        return self.mask(n) >> (8 * (self._lanes - n))


_LSB = _Repeated(0x01)
_LOW4 = _Repeated(0x0F)


def _int(data: bytes) -> int:
    return int.from_bytes(data, "little")


def _bytes(value: int, n: int) -> bytes:
    return value.to_bytes(n, "little")


# -- decoding --------------------------------------------------------------------------------------

# Bytes that can sit inside an escape (`\uXXXX`, a surrogate pair, `%HH`): a chunk is cut after
# the last byte that is not one of these, so no escape, pair or backslash run is ever split.
_ESCAPE_BYTES = b"\\%u0123456789abcdefABCDEF"
_HEX = b"0123456789abcdefABCDEF"

# bits 0-3: a hex digit's value; bit 4: a hex digit; bit 5: "%"
_PCT_FIELDS = _table({ord("%"): 0x20, **{h: 0x10 | int(chr(h), 16) for h in _HEX}})


def _percent_decode(data: bytes) -> bytes:
    """`%HH` -> the byte, exactly as `unquote` reads it (a `%` without two hex digits stays)."""
    n = len(data)
    if b"\x00" in data:
        data = data.replace(b"\x00", b"\x01")  # NUL marks the bytes an escape gave up
    fields = _int(data.translate(_PCT_FIELDS))
    # lane i: "%" at i (bit 5), hex at i+1 and i+2 (bit 4 of those lanes, moved onto bit 0)
    valid = (fields >> 5) & (fields >> 12) & (fields >> 20) & _LSB.mask(n)
    if not valid:
        return data
    values = fields & _LOW4.mask(n)
    # Lane i: 16 * the digit at i+1 (values >> 4, as every lane's value is below 16) plus the
    # digit at i+2; at most 0xFF, so no lane carries into the next.
    decoded = ((values >> 4) + (values >> 16)) & (valid * 0xFF)
    gone = valid * 0xFFFFFF  # the three lanes of each escape (escapes never overlap)
    # (x | gone) ^ gone clears the lanes without a negative operand, which CPython copies.
    return _bytes(((_int(data) | gone) ^ gone) | decoded, n).translate(None, b"\x00")


# bit 0: a backslash; bit 1: a one-letter JSON escape; bit 2: 'u'; bit 3: a hex digit
_ESC_FLAGS = bytes(
    (1 if i == ord("\\") else 2 if i in b'"/bfnrt' else 4 if i == ord("u") else 0)
    | (8 if i in _HEX else 0)
    for i in range(256)
)
_QUOTE_TO_SOH = bytes(1 if i == ord('"') else i for i in range(256))


def _json_unescape(data: bytes) -> bytes:
    """Makes `data` safe for the C JSON string scanner: every backslash left starts a valid
    escape, and no bare quote ends the string early. Escapes that JSON would reject stay text."""
    n = len(data)
    # Pairs first, left to right, as JSON reads a run of backslashes; the pair is text, a break.
    data = data.replace(b"\\\\", b"\x01\x01")
    flags = _int(data.translate(_ESC_FLAGS))
    hex2 = flags & (flags >> 8)  # bit 3: hex digits at i and i+1
    hex4 = hex2 & (hex2 >> 16)  # bit 3: hex digits at i to i+3
    # lane i: a one-letter escape at i+1 (bit 1), or "u" at i+1 (bit 2) and hex at i+2 to i+5
    ok = (flags >> 9) | ((flags >> 10) & (hex4 >> 19))
    escapes = flags & _LSB.mask(n)
    bad = escapes ^ (escapes & ok)
    if bad:
        data = _bytes(_int(data) - bad * (ord("\\") - 1), n)
    if b'"' not in data:  # one memchr, where the two passes below would find nothing
        return data
    return data.replace(b'\\"', b"\x01\x01").translate(_QUOTE_TO_SOH)


def _json_string(text: str) -> str:
    decoded, _ = json.decoder.scanstring(text + '"', 0, False)  # type: ignore[attr-defined]
    return str(decoded)


# -- classes ---------------------------------------------------------------------------------------

# What a scanned character is, one byte each: 0x30-0x39 its decimal digit, 0x20 a separator people
# type between digit groups, 0x00 anything else (a break). Bit 4 alone tells a digit.
SEPARATORS = " \t\n\r\v\f-./+"
_BREAK = 0x00
_ASCII_CLASS = bytes(
    i if 0x30 <= i <= 0x39 else 0x20 if chr(i) in SEPARATORS else _BREAK for i in range(256)
)


def _plain_class(ch: str) -> int:
    """The class of a character as NFKC leaves it: beyond the BMP, nothing is a digit."""
    cp = ord(ch)
    if cp < 0x80:
        return _ASCII_CLASS[cp]
    if cp > 0xFFFF:
        return _BREAK
    category = unicodedata.category(ch)
    if category == "Nd":
        return 0x30 + unicodedata.decimal(ch)
    if category in ("Zs", "Zl", "Zp", "Pd") or cp == 0x2212:  # spaces, dashes, minus
        return 0x20
    return _BREAK


# A character whose NFKC form holds a digit among other characters (¼ is "1", a fraction slash,
# "4") folds to a marker class, which `_expand` replaces with the classes of that form: at most
# _WIDTH bytes, runs of separators and breaks in it made one (a break if any is a break, as the
# digit lanes read them). _FILLER pads each form to _WIDTH and is deleted after.
_PLAIN_CLASSES = bytes([_BREAK, 0x20, *range(0x30, 0x3A)])
_MARKERS = range(0x40, 0xFF)
_FILLER = 0xFF
_WIDTH = 4


def _form_classes(form: str) -> bytes:
    classes = bytes(_plain_class(c) for c in form)
    return re.sub(rb"[\x00 ]+", lambda run: b"\x00" if b"\x00" in run[0] else b" ", classes)


def _build_charmaps() -> tuple[
    list[Any],
    list[bytes],
    list[bytes],
    dict[int, bytes],
    list[tuple[bytes, str]],
    list[tuple[bytes, bytes]],
]:
    """Charmap encoders (and folds) that turn a character into the class of its NFKC form at C
    speed, and the characters of the BMP they cannot class.

    Classing each character by its own NFKC form agrees with classing the NFKC form of the text:
    NFKC of a text is its characters' own forms with combining marks reordered and some pairs
    composed into one character, and no digit or separator is a combining mark or takes part in
    a composition (the tests check both against the Unicode database). A form of several
    characters that are separators, or breaks and separators, acts as one separator or one
    break. A form that holds a digit among other characters (¼ is 1, a fraction slash and 4; ⒛
    is "20.") has no one class: it folds to a marker that `_expand` replaces with its form's
    classes. Characters beyond the BMP (mathematical and segmented digits, "0." in one
    character) have no charmap slot: `_astral_classes` reads their classes from UTF-32 bytes.

    A charmap has 256 slots, so the 460-odd characters that are digits or separators (ASCII,
    Arabic-Indic, Devanagari, full-width, superscript and circled digits, Unicode spaces and
    dashes) and the 181 with a marker are spread over three maps; every other character (letters, astral scripts) encodes as
    "?" in each, which folds to a break. The first map holds U+0001, the ASCII digits and
    separators, what NFKC folds to them (full-width forms first, then superscripts and circled
    digits) and the Unicode separators; script digits fill it and the second map in code point
    order; the characters with a marker come last.
    """
    # U+0001 is the break the decoding puts for quotes, escaped backslashes, invalid escapes and
    # NUL: with a slot of its own it keeps a JSON string's text to the first map.
    wanted: list[tuple[str, int]] = [("\x01", _BREAK)]
    wanted += [(chr(c), _ASCII_CLASS[c]) for c in range(1, 128) if _ASCII_CLASS[c] != _BREAK]
    folded: list[tuple[str, int]] = []
    separators: list[tuple[str, int]] = []
    digits: list[tuple[str, int]] = []
    several: list[tuple[str, int]] = []
    marker_of: dict[bytes, int] = {}
    for cp in range(0x80, 0x10000):
        ch = chr(cp)
        form = unicodedata.normalize("NFKC", ch)
        if form == ch:
            cls = _plain_class(ch)
        else:
            classes = {_plain_class(c) for c in form}
            if len(form) > 1 and classes - {_BREAK, 0x20}:
                pattern = _form_classes(form)
                several.append((ch, marker_of.setdefault(pattern, _MARKERS[len(marker_of)])))
                continue
            cls = _BREAK if _BREAK in classes else classes.pop()
        if cls != _BREAK:
            kind = folded if form.isascii() else separators if cls == 0x20 else digits
            kind.append((ch, cls))
    folded.sort(key=lambda item: not 0xFF00 <= ord(item[0]) <= 0xFFEF)  # full-width forms first
    # Every map after the first repeats U+0001 and the ASCII digits and separators, with no
    # class there (it comes from the first map): a character with a slot encodes in half the
    # time. Slots the last map has to spare repeat more of the first map's characters.
    common = len(wanted)
    wanted += folded + separators + digits + several
    repeated = [ch for ch, _ in wanted[:254]]
    encoders: list[Any] = []
    folds: list[bytes] = []
    # Per map: every UTF-16 high byte but those of the pages above Latin-1 its classed
    # characters are in, and its classed characters in Latin-1 (a text without either needs
    # no pass over that map).
    pages: list[tuple[bytes, str]] = []
    while wanted:
        # charmap_build takes a decoding table (byte -> character) and builds its C trie only
        # when slot 0 is U+0000; "?" must be encodable for the "replace" error handler.
        size = 254 if not encoders else 254 - common
        batch, wanted = wanted[:size], wanted[size:]
        chars = ["\x00", "?", *(ch for ch, _ in batch)]
        chars += repeated[: 256 - len(chars)]
        encoder = codecs.charmap_build("".join(chars))
        assert type(encoder).__name__ == "EncodingMap", "charmap fell back to a dict"
        encoders.append(encoder)
        folds.append(bytes([_BREAK, _BREAK, *(cls for _, cls in batch)]).ljust(256, b"\x00"))
        high = {ord(ch) >> 8 for ch, _ in batch} - {0}
        pages.append(
            (
                bytes(sorted(set(range(256)) - high)),
                "".join(ch for ch, _ in batch if 0x80 <= ord(ch) < 0x100),
            )
        )
    # Beyond the BMP (plane 1 only: the tests check no other plane holds such a character), by
    # page: which UTF-32 page bytes are that page (0x01 there), and each character's class or
    # marker by its low byte.
    astral: list[tuple[bytes, bytes]] = []
    for page in range(0x100, 0x200):
        table = bytearray(256)
        for low in range(256):
            form = unicodedata.normalize("NFKC", chr(page << 8 | low))
            pattern = _form_classes(form) if form != chr(page << 8 | low) else b"\x00"
            if len(pattern) > 1:
                table[low] = marker_of.setdefault(pattern, _MARKERS[len(marker_of)])
            else:
                table[low] = pattern[0]
        if any(table):
            astral.append((bytes(int(i == page & 0xFF) for i in range(256)), bytes(table)))
    # Table k gives the k-th class of a marker's form, and of any other class the class itself
    # (k = 0) or the filler.
    expand = [bytearray(i if i in _PLAIN_CLASSES else _FILLER for i in range(256))]
    expand += [bytearray([_FILLER] * 256) for _ in range(1, _WIDTH)]
    for pattern, marker in marker_of.items():
        assert len(pattern) <= _WIDTH, "a form wider than _WIDTH"
        for k, cls in enumerate(pattern):
            expand[k][marker] = cls
    forms = {marker: pattern for pattern, marker in marker_of.items()}
    return encoders, folds, [bytes(table) for table in expand], forms, pages, astral


_CHARMAPS, _FOLDS, _EXPAND, _FORMS, _PAGES, _ASTRAL = _build_charmaps()
# Markers whose form is _WIDTH classes wide (every other is narrower by one at least).
_NOT_WIDEST = bytes(i for i in range(256) if len(_FORMS.get(i, b"")) < _WIDTH)
# Markers fewer than one in _SPARSE class bytes, and of at most _FEW kinds, are replaced kind
# by kind.
_SPARSE, _FEW = 16, 4
_NO_SLOT = b"\x01"  # "?", which "replace" puts for a character the map has no slot for


def _ascii_classes(text: str) -> tuple[bytes, int]:
    classes = text.encode("ascii").translate(_ASCII_CLASS)
    return classes, _int(classes)


_PLANE_1 = bytes(int(i == 1) for i in range(256))


def _astral_classes(text: str) -> int:
    """The classes (or markers) of the characters beyond the BMP, as lanes (0 elsewhere): no
    charmap has a slot for them. Each is read from its UTF-32 bytes: plane, page, low byte."""
    units = text.encode("utf-32-le", "surrogatepass")
    planes, pages, lows = units[2::4], units[1::4], units[0::4]
    plane_1 = _int(planes.translate(_PLANE_1))
    total = 0
    for this_page, table in _ASTRAL:
        here = plane_1 & _int(pages.translate(this_page))
        if here:
            total += _int(lows.translate(table)) & (here * 0xFF)
    return total


def _expand(classes: bytes, markers: bytes) -> bytes:
    """Each marker (`markers` are those in `classes`, in order) replaced with the classes of
    its character's NFKC form."""
    if len(markers) * _SPARSE < len(classes):
        for _ in range(_FEW):
            marker = markers[:1]
            classes = classes.replace(marker, _FORMS[marker[0]])
            markers = markers.replace(marker, b"")
            if not markers:
                return classes
    # Every class byte becomes `width` (its form's classes, padded with the filler), in C
    # passes, and the filler is deleted.
    width = _WIDTH if markers.translate(None, _NOT_WIDEST) else _WIDTH - 1
    out = bytearray(width * len(classes))
    for k, table in enumerate(_EXPAND[:width]):
        out[k::width] = classes.translate(table)
    return bytes(out.translate(None, bytes([_FILLER])))


def _classes(text: str) -> tuple[bytes, int]:
    """One class byte per character (see `_ASCII_CLASS`), for any decimal digit or space, after
    NFKC (several for a character whose form holds a digit among other characters); as bytes
    and as lanes of an integer."""
    if text.isascii():
        return _ascii_classes(text)
    slots, _ = codecs.charmap_encode(text, "replace", _CHARMAPS[0])
    if _NO_SLOT not in slots:  # every character has its slot in the first map
        classes = slots.translate(_FOLDS[0])
        return classes, _int(classes)
    units = text.encode("utf-16-le", "surrogatepass")
    total = _int(slots.translate(_FOLDS[0]))
    if len(units) > 2 * len(text):  # a surrogate pair: a character beyond the BMP
        total += _astral_classes(text)
    high = units[1::2]
    for encoder, fold, (other_pages, latin1) in zip(
        _CHARMAPS[1:], _FOLDS[1:], _PAGES[1:], strict=True
    ):
        # A few C passes tell most texts have no character this map classes.
        if not high.translate(None, other_pages) and not any(ch in text for ch in latin1):
            continue
        slots, _ = codecs.charmap_encode(text, "replace", encoder)
        # A character has its class in at most one map and folds to 0 in the others.
        total += _int(slots.translate(fold))
    classes = _bytes(total, len(text))
    markers = classes.translate(None, _PLAIN_CLASSES)
    if markers:
        classes = _expand(classes, markers)
        return classes, _int(classes)
    return classes, total


# -- the digit lanes -------------------------------------------------------------------------------

# In lanes, separators are gone; a digit that starts a group (the character before it was not a
# digit) is 0x80 + digit; a break stays 0x00; any other digit is 0x30 + digit.
_MARK_START = 0x80 - 0x30
_LANE_DIGITS = bytes([*range(0x30, 0x3A), *range(0x80, 0x8A)])
_DOUBLED = _table({c: (2 * (c & 0x0F)) - (9 if c & 0x0F > 4 else 0) for c in _LANE_DIGITS})
_BREAKS_RUN = b"\x00" * 8
# A window's Luhn sum (<= 171, or odd where the window is not a candidate) is a card number when
# it is a multiple of 10: those bytes survive this delete.
_NOT_MULTIPLE_OF_10 = bytes(i for i in range(256) if i % 10 or i > 171)


class _Lanes:
    """Streaming search over class bytes for a group-aligned window that is a card number.

    A window starts at a group's first digit and ends where the next lane starts a group or is a
    break, and holds no break; so one unbroken run of 20+ digits is never a card, while groups
    written next to other groups still are.
    """

    def __init__(self) -> None:
        self._tail = b""  # the last lanes, whose windows may end in the next chunk
        self._previous_digit = 0

    def feed(self, classes: bytes, value: int) -> bool:
        n = len(classes)
        if not n:
            return False
        digits = (value >> 4) & _LSB.mask(n)
        starts = digits ^ (digits & ((digits << 8) | self._previous_digit))
        self._previous_digit = (classes[-1] >> 4) & 1
        if starts:
            classes = _bytes(value + starts * _MARK_START, n)
        lanes = classes.translate(None, b" ")
        if _BREAKS_RUN in lanes:  # text: a run of breaks is one break
            lanes = lanes.replace(_BREAKS_RUN, b"\x00")
        lanes = self._tail + lanes
        found = _has_card(lanes)
        self._tail = lanes[-MAX_DIGITS:]
        return found

    def finish(self) -> bool:
        found = _has_card(self._tail + b"\x00")
        self._tail = b""
        return found


def _has_card(lanes: bytes) -> bool:
    n = len(lanes)
    if n <= MIN_DIGITS:
        return False
    raw = _int(lanes)
    lsb = _LSB(n)
    start = raw >> 7 & lsb
    if not start:
        return False
    low4 = _LOW4.mask(n)
    value = raw & low4  # 0x30 + d, 0x80 + d and 0x00 all keep the digit in bits 0-3
    brk = lsb ^ (((raw >> 4) | (raw >> 7)) & lsb) if b"\x00" in lanes else 0
    end = start | brk  # a window may end just before a group start or a break
    # Widths by issuer prefix, on group starts only: a row from the first two digits, a column
    # from the next two.
    row_col = _int(_bytes(value * 10 + (value >> 8), n).translate(_ROW_COL))
    index = (row_col & (start * 0xF0)) | ((row_col >> 16) & low4)
    widths = _int(_bytes(index, n).translate(_WIDTHS))
    candidates = {}
    for width in _LENGTHS:
        found = (widths >> (width - MIN_DIGITS)) & (end >> (8 * width))
        if found:
            candidates[width] = found
    if not candidates:
        return False
    if brk:
        # No break in (s, s+w-1]: OR over the lanes after each start.
        o1 = brk >> 8
        o2 = o1 | (o1 >> 8)
        o4 = o2 | (o2 >> 16)
        o8 = o4 | (o4 >> 32)
        o12 = o8 | (o4 >> 64)
        o16 = o8 | (o8 >> 64)
        broken = {
            13: lambda: o12,
            14: lambda: o12 | (o1 >> 96),
            15: lambda: o12 | (o2 >> 96),
            16: lambda: o12 | (o2 >> 96) | (o1 >> 112),
            17: lambda: o16,
            18: lambda: o16 | (o1 >> 128),
            19: lambda: o16 | (o2 >> 128),
        }
        unbroken = {}
        for width, found in candidates.items():
            found ^= found & broken[width]()
            if found:
                unbroken[width] = found
        candidates = unbroken
    # Luhn in pairs: a doubled digit then a plain one, summed over 6-9 pairs with stride 2; an
    # odd width adds its first digit, plain.
    pair = _int(lanes.translate(_DOUBLED)) + (value >> 8)
    p2 = pair + (pair >> 16)
    p4 = p2 + (p2 >> 32)
    p8 = p4 + (p4 >> 64)
    pairs = {
        6: lambda: p4 + (p2 >> 64),
        7: lambda: p4 + (p2 >> 64) + (pair >> 96),
        8: lambda: p8,
        9: lambda: p8 + (pair >> 128),
    }
    for width, found in candidates.items():
        sums = pairs[width // 2]()
        if width % 2:
            sums = value + (sums >> 8)
        sums |= lsb ^ found  # an odd sum is never a multiple of 10
        if _bytes(sums, n).translate(None, _NOT_MULTIPLE_OF_10):
            return True
    return False


# -- JSON depth ------------------------------------------------------------------------------------

_STRUCTURE = b'"[]{}'
_NOT_STRUCTURE = bytes(i for i in range(256) if i not in _STRUCTURE)
_QUOTE_BIT = _table({ord('"'): ord("1")}, default=ord("0"))
_BRACKET_CODE = _table({ord("["): 2, ord("{"): 2, ord("]"): 4, ord("}"): 4})
# code + parity ("0"/"1" = 0x30/0x31): an opening bracket outside strings is 0x32, closing 0x34
_OUTSIDE = _table({0x32: ord("1"), 0x34: ord("0")})
_NOT_OUTSIDE = bytes(i for i in range(256) if i not in (0x32, 0x34))


def _block_tables() -> tuple[bytes, bytes]:
    """For 8 brackets packed in a byte (1 = opening): net depth change, and the highest depth
    reached inside the block (at least 0), both relative to the depth before it."""
    nets, peaks = bytearray(256), bytearray(256)
    for byte in range(256):
        depth = peak = 0
        for bit in range(7, -1, -1):
            depth += 1 if byte >> bit & 1 else -1
            peak = max(peak, depth)
        nets[byte], peaks[byte] = depth & 0xFF, peak
    return bytes(nets), bytes(peaks)


_NET, _PEAK = _block_tables()


class _Depth:
    """Nesting of JSON arrays and objects outside strings, counted in the same pass."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.depth = 0
        self._in_string = False
        self._bits = b""  # brackets not yet a full byte of 8

    def feed(self, data: bytes) -> bool:
        # Escaped backslashes and quotes are text; cut points never split a backslash run.
        # Backslashes matter only before quotes: with no quote, the replaces would change no
        # bracket and cost two passes.
        if b"\\" in data and b'"' in data:
            data = data.replace(b"\\\\", b"").replace(b'\\"', b"")
        kept = data.translate(None, _NOT_STRUCTURE)
        if self._in_string:
            kept = b'"' + kept
        # Removing two adjacent quotes never moves a bracket in or out of a string.
        kept = kept.replace(b'""', b"")
        quotes = kept.count(b'"')
        self._in_string = quotes % 2 == 1
        opening = kept.count(b"[") + kept.count(b"{")
        if not opening and not kept.count(b"]") and not kept.count(b"}"):
            return False
        kept = _outside_strings(kept) if quotes else kept.translate(_OUTSIDE_PLAIN)
        if self.depth + opening <= self.limit and not self._bits:
            self.depth += 2 * kept.count(b"1") - len(kept)
            return False
        return self._brackets(self._bits + kept)

    def _brackets(self, bits: bytes) -> bool:
        whole = len(bits) // 8 * 8
        self._bits = bits[whole:]
        if whole:
            blocks = int(bits[:whole], 2).to_bytes(whole // 8, "big")
            nets = memoryview(blocks.translate(_NET)).cast("b")
            before = itertools.accumulate(nets, initial=self.depth)
            if max(map(operator.add, before, blocks.translate(_PEAK))) > self.limit:
                return True
            self.depth += sum(nets)
        return False

    def finish(self) -> bool:
        depth = self.depth
        for bit in self._bits:
            depth += 1 if bit == ord("1") else -1
            if depth > self.limit:
                return True
        self._bits = b""
        return False


_OUTSIDE_PLAIN = _table(
    {ord("["): ord("1"), ord("{"): ord("1"), ord("]"): ord("0"), ord("}"): ord("0")}
)


def _outside_strings(kept: bytes) -> bytes:
    """Brackets not inside a string, as b"1" (opening) and b"0" (closing)."""
    n = len(kept)
    parity = int(kept.translate(_QUOTE_BIT), 2)  # first byte is the highest bit
    shift = 1
    while shift < n:  # prefix XOR: odd at and after an opening quote, until its closing one
        parity ^= parity >> shift
        shift <<= 1
    inside = format(parity, f"0{n}b").encode("ascii")
    code = _int(kept.translate(_BRACKET_CODE)) + _int(inside)
    return _bytes(code, n).translate(_OUTSIDE, _NOT_OUTSIDE)


# -- the scanner -----------------------------------------------------------------------------------

CARD = "card"
TOO_DEEP = "too_deep"


class CardScanner:
    """Feed a request part in chunks; `feed` and `finish` return what was found, if anything.

    Decoding happens before scanning and across chunk boundaries: JSON escapes (surrogate pairs
    too), percent and form encoding, full-width and other Unicode digits, Unicode spaces. Bytes
    are held until at least _MIN_SEGMENT have come, and then scanned up to the last byte that
    cannot be inside an escape; the rest waits for the next chunk.
    """

    def __init__(self, *, json_depth_limit: int | None = None) -> None:
        self._held: list[bytes] = []
        self._held_size = 0
        self._utf8 = codecs.getincrementaldecoder("utf-8")("replace")
        self._lanes = _Lanes()
        self._depth = _Depth(json_depth_limit) if json_depth_limit is not None else None
        self.found: str | None = None

    @property
    def pending(self) -> int:
        """Bytes received but not scanned yet."""
        return self._held_size

    def feed(self, data: bytes) -> str | None:
        if self.found or not data:
            return self.found
        self._held.append(data)
        self._held_size += len(data)
        if self._held_size < _MIN_SEGMENT:
            return None
        # Only the newest chunk is searched for a cut: a long run of escape bytes costs one
        # look at each chunk, never a rescan of what is held.
        cut = len(data.rstrip(_ESCAPE_BYTES))
        if not cut:
            return None
        self._held[-1] = data[:cut]
        segment = b"".join(self._held)
        self._held = [data[cut:]] if cut < len(data) else []
        self._held_size = len(data) - cut
        self.found = self._scan(segment, final=False)
        return self.found

    def finish(self) -> str | None:
        if self.found:
            return self.found
        segment = b"".join(self._held)
        self._held, self._held_size = [], 0
        self.found = self._scan(segment, final=True)
        return self.found

    def _scan(self, segment: bytes, *, final: bool) -> str | None:
        if self._depth is not None and self._depth.feed(segment):
            return TOO_DEEP
        if b"%" in segment:
            segment = _percent_decode(segment)
        escaped = b"\\" in segment
        if escaped:
            segment = _json_unescape(segment)
        text = self._utf8.decode(segment, final)
        if escaped:
            text = _json_string(text)
        # A segment can be long (a run of escape bytes has no cut point); the digit lanes are
        # fed a piece at a time, as big integers cost more per lane past the caches.
        for start in range(0, len(text), _PIECE):
            if self._lanes.feed(*_classes(text[start : start + _PIECE])):
                return CARD
        if final:
            if self._lanes.finish():
                return CARD
            if self._depth is not None and self._depth.finish():
                return TOO_DEEP
        return None


# Plain ASCII with no escape is read as it is: a card number there needs MIN_DIGITS ASCII digits
# with only separators between them. Where no such run is, the full scan cannot find one.
_PLAIN_RUN = re.compile(b"(?:[0-9][%s]*+){%d}" % (re.escape(SEPARATORS.encode()), MIN_DIGITS))


def _plainly_clean(data: bytes) -> bool:
    """True when `data` cannot hold a card number: a few microseconds for a request's headers."""
    return data.isascii() and b"%" not in data and b"\\" not in data and not _PLAIN_RUN.search(data)


def scan(parts: Iterable[bytes | str]) -> str | None:
    """What the parts hold, each scanned on its own (a number split across parts is not joined)."""
    for part in parts:
        data = part.encode("utf-8", "surrogatepass") if isinstance(part, str) else part
        if _plainly_clean(data):
            continue
        scanner = CardScanner()
        for start in range(0, len(data), _PIECE):
            if scanner.feed(data[start : start + _PIECE]):
                return scanner.found
        if scanner.finish():
            return scanner.found
    return None


def holds_card_number(text: str | bytes) -> bool:
    """Whether `text` holds a card number, however it is spelled or encoded."""
    return scan([text]) == CARD
