"""The digit lanes: a streaming search over class bytes for a group-aligned window that is a card
number, with big-integer arithmetic used as SIMD-within-a-register.

Lanes are one byte each, little-endian, so `x >> 8*k` moves lane i+k onto lane i and the
arithmetic of thousands of lanes is one C loop. Converting between bytes and integers costs
about as much per byte as four shifts, and a `translate` as much as two, so the search does as
few as it can: a run filter (one `translate` and a few `find`) skips the arithmetic where no
run of MIN_DIGITS digits is; the lanes are made an integer once, go through the brand tables in
two round trips, and come back as bytes once per card length that has a candidate window.
"""

from __future__ import annotations

from responseiq_billing.adapters.http.card_brands import (
    LENGTHS,
    MAX_DIGITS,
    MIN_DIGITS,
    ROW_COL,
    WIDTHS,
)

# -- lane helpers ----------------------------------------------------------------------------------


def table(mapping: dict[int, int], default: int = 0) -> bytes:
    return bytes(mapping.get(i, default) for i in range(256))


class Repeated:
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


LSB = Repeated(0x01)
LOW4 = Repeated(0x0F)
_THREE = Repeated(0x03)


def to_int(data: bytes) -> int:
    return int.from_bytes(data, "little")


def to_bytes(value: int, n: int) -> bytes:
    return value.to_bytes(n, "little")


# -- the digit lanes -------------------------------------------------------------------------------

# In lanes, separators are gone; a digit that starts a group (the character before it was not a
# digit) is 0x80 + digit; a break stays 0x00; any other digit is 0x30 + digit.
_MARK_START = 0x80 - 0x30
_LANE_DIGITS = bytes([*range(0x30, 0x3A), *range(0x80, 0x8A)])
# A lane's digit as 0x01, a break as 0x00: a card lies in a run of MIN_DIGITS 0x01 at least.
_RUNS = table(dict.fromkeys(_LANE_DIGITS, 1))
_CLASS_RUNS = table(dict.fromkeys(range(0x30, 0x3A), 1))  # the same from class bytes
_RUN = b"\x01" * MIN_DIGITS
# Lanes the run filter keeps from a long run's first lane, at least (see `_runs`).
_REGION = 2048
_SHORT_GAP = 32  # lanes; a span holds _REGION at least (see `_runs`)
_SPARSE_SEPARATORS = 1024  # see `_few_separators`
_BREAKS = b"\x00" * 8
# What lanes with breaks are to `_has_card`: none, padded (see `_prepared`: with at most one
# break in _PAD_COST lanes, padding adds at most one lane in 8), or to be checked for breaks.
_NO_BREAK, _PADDED, _BROKEN = 0, 1, 2
_PAD_COST = 8 * (MAX_DIGITS - 1)
_PADDING = b"\x00" * MAX_DIGITS
# A window's Luhn sum (<= 171, or odd where the window is not a candidate) is a card number when
# it is a multiple of 10: those bytes survive this delete.
_NOT_MULTIPLE_OF_10 = bytes(i for i in range(256) if i % 10 or i > 171)


class Lanes:
    """Streaming search over class bytes for a group-aligned window that is a card number.

    A window starts at a group's first digit and ends where the next lane starts a group or is a
    break, and holds no break; so one unbroken run of 20+ digits is never a card, while groups
    written next to other groups still are.
    """

    def __init__(self) -> None:
        self._tail = b""  # the last lanes, whose windows may end in the next chunk
        self._previous_digit = 0

    def feed(self, classes: bytes) -> bool:
        n = len(classes)
        if not n:
            return False
        if b" " in classes:
            classes = _few_separators(classes)
        # Digits and breaks as the lanes will have them: with no run of MIN_DIGITS digits, no
        # window can end in these lanes, and only the lanes after the last break are kept.
        runs = self._tail.translate(_RUNS) + classes.translate(_CLASS_RUNS, b" ")
        candidate = _RUN in runs
        if not candidate:
            last_break = classes.rfind(b"\x00")
            if last_break >= 0:
                self._tail, self._previous_digit = b"", 0
                classes = classes[last_break:]
                n = len(classes)
        value = to_int(classes)
        digits = (value >> 4) & LSB.mask(n)
        starts = digits ^ (digits & ((digits << 8) | self._previous_digit))
        self._previous_digit = (classes[-1] >> 4) & 1
        marked = value + starts * _MARK_START if starts else value
        tail = self._tail
        if b" " in classes:
            lanes = tail + to_bytes(marked, n).translate(None, b" ")
            self._tail = lanes[-MAX_DIGITS:]
            return candidate and _has_card(*_kept(lanes, runs))
        # No separator: the lanes are `marked` after the tail, and need no bytes unless the run
        # filter leaves some out.
        total = len(tail) + n
        raw = to_int(tail) | marked << (8 * len(tail)) if tail else marked
        self._tail = to_bytes(raw >> (8 * max(0, total - MAX_DIGITS)), min(total, MAX_DIGITS))
        if not candidate:
            return False
        spans = _runs(runs)
        if spans is None:
            breaks = runs.count(0)
            if not breaks or breaks * _PAD_COST > total:
                return _has_card(raw, total, _BROKEN if breaks else _NO_BREAK)
            return _has_card(*_prepared(to_bytes(raw, total), breaks))
        return _has_card(*_prepared(_joined(to_bytes(raw, total), spans)))

    def finish(self) -> bool:
        lanes = self._tail + b"\x00"
        self._tail = b""
        return _has_card(*_kept(lanes, lanes.translate(_RUNS)))


def _few_separators(classes: bytes) -> bytes:
    """`classes` with each separator a break, where separators are few (at most one in
    _SPARSE_SEPARATORS) and each is next to a break: both end a window and start no group, so
    the lanes are the same, and they skip their round trip through bytes."""
    most = len(classes) // _SPARSE_SEPARATORS
    if classes.count(b" ", 0, 1024) > most or classes.count(b" ") > most:  # a look at a few first
        return classes
    fixed = bytearray(classes)
    at = classes.find(b" ")
    while at >= 0:
        if classes[at - 1 : at] != b"\x00" and classes[at + 1 : at + 2] != b"\x00":
            return classes  # between digits or separators
        fixed[at] = 0
        at = classes.find(b" ", at + 1)
    return bytes(fixed)


def _kept(lanes: bytes, runs: bytes) -> tuple[int, int, int]:
    spans = _runs(runs)
    return _prepared(lanes if spans is None else _joined(lanes, spans))


def _runs(runs: bytes) -> list[tuple[int, int]] | None:
    """Where in the lanes a card can be: every run of MIN_DIGITS or more digits with no break,
    whole, as (first, end) spans, or None where that leaves nothing out. `runs` has a 0x01 for
    each digit of the lanes and a 0x00 for each break. A span begins at a run's first lane and
    ends at a break (an empty span at the end stands for a break after the last) or at the end
    of the lanes, whose windows may end in the next chunk; each but the last holds _REGION lanes
    at least, so the loop turns at most len(runs) / _REGION + 1 times."""
    at = runs.find(_RUN)
    if at < 0:
        return []
    if at < _REGION and runs.find(b"\x00", at) < 0:
        return None  # one run (or runs near the start) to the end
    spans: list[tuple[int, int]] = []
    begin = 0  # lane begin - 1 is a break (or begin is 0)
    while at >= 0:
        before = runs.rfind(b"\x00", begin, at)
        first = before + 1 if before >= 0 else begin
        end = runs.find(b"\x00", max(at + MIN_DIGITS, first + _REGION))
        if end < 0:
            spans.append((first, len(runs)))
            break
        spans.append((first, end))
        begin = end + 1
        at = runs.find(_RUN, begin)
    else:  # the last run ended at a break
        first, end = spans[-1]
        if len(runs) - end <= _SHORT_GAP:  # a few lanes after it: kept too (see below)
            spans[-1] = (first, len(runs))
        else:
            spans.append((len(runs), len(runs)))
    # Where the lanes left out are a few between spans (and before the first), all are kept:
    # cutting them out costs more than their arithmetic.
    gaps = zip(
        (0, *(end for _, end in spans)), (*(first for first, _ in spans), len(runs)), strict=True
    )
    if all(first - begin <= _SHORT_GAP for begin, first in gaps):
        return None
    return spans


def _joined(lanes: bytes, spans: list[tuple[int, int]]) -> bytes:
    """The lanes of `spans`, a break between two (and runs of breaks made one)."""
    lanes = b"\x00".join([lanes[first:end] for first, end in spans])
    if _BREAKS in lanes:
        lanes = lanes.replace(_BREAKS, b"\x00")
    return lanes


def _prepared(lanes: bytes, breaks: int | None = None) -> tuple[int, int, int]:
    """The lanes as `_has_card` takes them. Where breaks are few, each is padded to a run of
    MAX_DIGITS breaks: no window can then hold one (it would end at that run's first break,
    or be too long), so windows need no check for breaks."""
    if breaks is None:
        breaks = lanes.count(0)
    if not breaks:
        return to_int(lanes), len(lanes), _NO_BREAK
    if breaks * _PAD_COST > len(lanes):
        return to_int(lanes), len(lanes), _BROKEN
    lanes = lanes.replace(b"\x00", _PADDING)
    return to_int(lanes), len(lanes), _PADDED


def _has_card(raw: int, n: int, breaks: int) -> bool:
    """Whether the n lanes of `raw` hold a card number in a window that ends before the last
    lane (a window up to the end may go on in the next chunk)."""
    if n <= MIN_DIGITS:
        return False
    lsb = LSB(n)
    start = raw >> 7 & lsb
    if not start:
        return False
    low4 = LOW4.mask(n)
    value = raw & low4  # 0x30 + d, 0x80 + d and 0x00 all keep the digit in bits 0-3
    brk = lsb ^ (((raw >> 4) | (raw >> 7)) & lsb) if breaks else 0
    if breaks == _PADDED:
        brk ^= brk & (brk << 8)  # the first of each run of breaks
    end = start | brk  # a window may end just before a group start or a break
    # Lane s, bit k: a window of MIN_DIGITS + k lanes from s may end there (s + 13 + k is an end).
    ends = end >> (8 * MIN_DIGITS)
    ends |= ends >> 7
    ends |= ends >> 14
    ends |= ends >> 28
    # Widths by issuer prefix, on group starts only: a row from the first two digits, a column
    # from the next two.
    row_col = to_int(to_bytes(value * 10 + (value >> 8), n).translate(ROW_COL))
    index = (row_col & (start * 0xF0)) | ((row_col >> 16) & low4)
    candidates = to_int(to_bytes(index, n).translate(WIDTHS)) & ends
    if not candidates:
        return False
    found_by_width = {}
    present = _folded(candidates, n)
    for width in LENGTHS:
        if present >> (width - MIN_DIGITS) & 1:
            found_by_width[width] = (candidates >> (width - MIN_DIGITS)) & lsb
    if breaks == _BROKEN:
        found_by_width = _unbroken(found_by_width, brk)
        if not found_by_width:
            return False
    # Luhn in pairs: a doubled digit then a plain one, summed over 6-9 pairs with stride 2; an
    # odd width adds its first digit, plain. Doubled is 2d, less 9 where d > 4 (bit 3 of d + 3).
    over_4 = ((value + _THREE.mask(n)) >> 3) & lsb
    pair = (value << 1) - over_4 * 9 + (value >> 8)
    p2 = pair + (pair >> 16)
    p4 = p2 + (p2 >> 32)
    p8 = p4 + (p4 >> 64)
    pairs = {
        6: lambda: p4 + (p2 >> 64),
        7: lambda: p4 + (p2 >> 64) + (pair >> 96),
        8: lambda: p8,
        9: lambda: p8 + (pair >> 128),
    }
    for width, found in found_by_width.items():
        sums = pairs[width // 2]()
        if width % 2:
            sums = value + (sums >> 8)
        sums |= lsb ^ found  # an odd sum is never a multiple of 10
        if to_bytes(sums, n).translate(None, _NOT_MULTIPLE_OF_10):
            return True
    return False


def _folded(value: int, n: int) -> int:
    """The OR of the n lanes of `value`: halves ORed together, about two passes in all."""
    while n > 1:
        half = (n + 1) // 2
        value = (value >> (8 * half)) | (value & ((1 << (8 * half)) - 1))
        n = half
    return value


def _unbroken(found_by_width: dict[int, int], brk: int) -> dict[int, int]:
    """The candidates with no break in (s, s+w-1]: OR over the lanes after each start."""
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
    for width, found in found_by_width.items():
        found ^= found & broken[width]()
        if found:
            unbroken[width] = found
    return unbroken
