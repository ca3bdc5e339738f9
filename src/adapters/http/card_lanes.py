"""The digit lanes: a streaming search over class bytes for a group-aligned window that is a card
number, as array arithmetic (numpy) over one lane per digit or break.

A lane is one byte: a digit that starts a group (the character before it was not a digit) is
0x80 + digit, any other digit 0x30 + digit, a break 0x00; separators are gone. Every step is a
fixed number of passes over the lanes in C: a run filter (one `translate` and one `find`) skips
the arithmetic where no run of MIN_DIGITS digits is; then each lane's issuer prefix gives its
allowed lengths (two table look-ups), and for each length some lane may be a card at, the
windows are checked for breaks and for Luhn in a few shifted sums (`x[i:] + x[:-i]` is lane
i+k onto lane i). Lanes are uint8 throughout: a window's Luhn sum is at most 171.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from responseiq_billing.adapters.http.card_brands import (
    LENGTHS,
    MAX_DIGITS,
    MIN_DIGITS,
    ROW_COL,
    WIDTHS,
)
from responseiq_billing.adapters.http.card_decode import table

# -- the digit lanes -------------------------------------------------------------------------------

Array = NDArray[np.uint8]
_MARK_START = 0x80 - 0x30
# A lane's digit as 0x01, a break as 0x00: a card lies in a run of MIN_DIGITS 0x01 at least.
_RUNS = table(dict.fromkeys([*range(0x30, 0x3A), *range(0x80, 0x8A)], 1))
_RUN = b"\x01" * MIN_DIGITS


def _u8(data: bytes) -> Array:
    return np.frombuffer(data, np.uint8)


def _translated(lanes: Array, mapping: bytes) -> Array:
    """A byte table applied to each lane: `bytes.translate` is twice as fast as numpy's take."""
    return _u8(lanes.tobytes().translate(mapping))


class Lanes:
    """Streaming search over class bytes for a group-aligned window that is a card number.

    A window starts at a group's first digit and ends where the next lane starts a group or is a
    break, and holds no break; so one unbroken run of 20+ digits is never a card, while groups
    written next to other groups still are. A window is checked once the lane after it is
    known: the last MAX_DIGITS lanes wait for the next chunk.
    """

    def __init__(self) -> None:
        self._tail = b""  # the last lanes, whose windows may end in the next chunk
        self._previous_digit = 0

    def feed(self, classes: bytes) -> bool:
        if not classes:
            return False
        lanes = self._tail + self._lanes(classes)
        self._tail = lanes[-MAX_DIGITS:]
        return _has_card(lanes)

    def finish(self) -> bool:
        lanes = self._tail + b"\x00"
        self._tail = b""
        return _has_card(lanes)

    def _lanes(self, classes: bytes) -> bytes:
        """Class bytes (0x30 + digit, 0x20 a separator, 0x00 a break) as lanes."""
        c = _u8(classes)
        digit = (c >> 4) & 1
        before = np.empty_like(digit)
        before[0] = self._previous_digit
        before[1:] = digit[:-1]
        self._previous_digit = int(digit[-1])
        marked = c + (digit & (before ^ 1)) * np.uint8(_MARK_START)
        lanes = marked.tobytes()
        return lanes.translate(None, b" ") if b" " in classes else lanes


def _has_card(lanes: bytes) -> bool:
    """Whether the lanes hold a card number in a window that ends before the last lane (a window
    up to the end may go on in the next chunk)."""
    if _RUN not in lanes.translate(_RUNS):
        return False
    x = _u8(lanes)
    n = len(x)
    # Windows from lane s with an issuer prefix: the first two digits give a row, the next two a
    # column, and the pair the lengths allowed (bit k: MIN_DIGITS + k), on group starts only.
    # Lanes from n - MIN_DIGITS on start no window that ends before the last lane.
    s_end = n - MIN_DIGITS
    d = x & np.uint8(0x0F)  # a break is 0
    two = d[:-1] * np.uint8(10) + d[1:]
    row_col = _translated(two, ROW_COL)
    index = (row_col[:s_end] & np.uint8(0xF0)) | (row_col[2 : s_end + 2] & np.uint8(0x0F))
    widths = _translated(index, WIDTHS) & ((x[:s_end] >> 7) * np.uint8(0xFF))
    present = int(np.bitwise_or.reduce(widths))
    if not present:
        return False
    # A window may end just before a group start or a break (lane s + w); it holds no break
    # after its first lane when none of lanes s+1 .. s+w-1 is one: ORs over 8 and 16 lanes.
    ends = (x >> 7) | (x == 0)
    b1 = (x == 0).view(np.uint8)
    b2 = b1[:-1] | b1[1:]
    b4 = b2[:-2] | b2[2:]
    b8 = b4[:-4] | b4[4:]
    b16 = b8[:-8] | b8[8:] if present >> (17 - MIN_DIGITS) else b8
    # Luhn in pairs: a doubled digit then a plain one; an odd width adds its first digit,
    # plain. Doubled is 2d, less 9 where d > 4.
    pair = (d << 1) - (d > 4).view(np.uint8) * np.uint8(9)
    pair = pair[:-1] + d[1:]
    p2 = pair[:-2] + pair[2:]
    p4 = p2[:-4] + p2[4:]
    p8 = p4[:-8] + p4[8:] if present >> (16 - MIN_DIGITS) else p4
    for width in LENGTHS:
        k = width - MIN_DIGITS
        if not present >> k & 1:
            continue
        m = n - width  # windows from lanes 0 .. m-1 end before the last lane
        if m <= 0:
            break
        found = (widths[:m] >> k) & ends[width : width + m]
        # breaks in lanes s+1 .. s+w-1 (w-1 lanes: 12-15 two ORs of 8, 16-18 two of 16)
        inner = width - 1
        span, table_ = (8, b8) if inner < 16 else (16, b16)
        found &= (table_[1 : m + 1] | table_[inner - span + 1 : inner - span + 1 + m]) ^ 1
        if not found.any():
            continue
        first, pairs = (1, width // 2) if width % 2 else (0, width // 2)
        sums = _pair_sums(pair, p2, p4, p8, first, pairs, m)
        if first:
            sums = sums + d[:m]
        # A multiple of 10 where `found`: x // 10 is (x * 205) >> 11 for x < 1024
        wide = sums.astype(np.uint16)
        tens = (wide * np.uint16(205)) >> 11
        if (found.astype(bool) & (tens * np.uint16(10) == wide)).any():
            return True
    return False


def _pair_sums(pair: Array, p2: Array, p4: Array, p8: Array, at: int, pairs: int, m: int) -> Array:
    """For each of m windows, the sum of `pairs` pairs from lane s + at (pairs every 2 lanes)."""
    if pairs == 6:
        return p4[at : at + m] + p2[at + 8 : at + 8 + m]
    if pairs == 7:
        return p4[at : at + m] + p2[at + 8 : at + 8 + m] + pair[at + 12 : at + 12 + m]
    if pairs == 8:
        return p8[at : at + m]
    return p8[at : at + m] + pair[at + 16 : at + 16 + m]
