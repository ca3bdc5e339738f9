"""Decoding before the card scan (percent and form encoding, JSON string escapes) and the JSON
nesting depth count, all at C speed per byte: `bytes.translate`, `bytes.replace`, big-integer
lanes (one byte per lane; the helpers below) and the C JSON string scanner."""

from __future__ import annotations

import itertools
import json
import operator
from typing import SupportsIndex

# -- big-integer lanes: a byte each, little-endian (`x >> 8*k` moves lane i+k onto lane i) ----


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


def to_int(data: bytes) -> int:
    return int.from_bytes(data, "little")


def to_bytes(value: int, n: int) -> bytes:
    return value.to_bytes(n, "little")


# Bytes that can sit inside an escape (`\uXXXX`, a surrogate pair, `%HH`): a chunk is cut after
# the last byte that is not one of these, so no escape, pair or backslash run is ever split.
ESCAPE_BYTES = b"\\%u0123456789abcdefABCDEF"
_HEX = b"0123456789abcdefABCDEF"

# bits 0-3: a hex digit's value; bit 4: a hex digit; bit 5: "%"
_PCT_FIELDS = table({ord("%"): 0x20, **{h: 0x10 | int(chr(h), 16) for h in _HEX}})


# A long segment (escape bytes only have no cut point) is decoded a piece at a time: big integers
# cost more per lane past the caches.
_PIECE = 64 * 1024


def percent_decode(data: bytes) -> bytes:
    """`%HH` -> the byte, exactly as `unquote` reads it (a `%` without two hex digits stays)."""
    if len(data) <= _PIECE:
        return _percent_decoded(data)
    parts = []
    start = 0
    while start < len(data):
        end = start + _PIECE
        # An escape that the end would split starts at one of the last two bytes: the piece
        # ends before it (a "%" there starts no escape that ends in this piece).
        split = data.rfind(b"%", end - 2, end)
        if split > start:
            end = split
        parts.append(_percent_decoded(data[start:end]))
        start = end
    return b"".join(parts)


def _percent_decoded(data: bytes) -> bytes:
    n = len(data)
    if b"\x00" in data:
        data = data.replace(b"\x00", b"\x01")  # NUL marks the bytes an escape gave up
    fields = to_int(data.translate(_PCT_FIELDS))
    # lane i: "%" at i (bit 5), hex at i+1 and i+2 (bit 4 of those lanes, moved onto bit 0)
    valid = (fields >> 5) & (fields >> 12) & (fields >> 20) & LSB.mask(n)
    if not valid:
        return data
    values = fields & LOW4.mask(n)
    # Lane i: 16 * the digit at i+1 (values >> 4, as every lane's value is below 16) plus the
    # digit at i+2; at most 0xFF, so no lane carries into the next.
    decoded = ((values >> 4) + (values >> 16)) & (valid * 0xFF)
    gone = valid * 0xFFFFFF  # the three lanes of each escape (escapes never overlap)
    # (x | gone) ^ gone clears the lanes without a negative operand, which CPython copies.
    return to_bytes(((to_int(data) | gone) ^ gone) | decoded, n).translate(None, b"\x00")


# bit 0: a backslash; bit 1: a one-letter JSON escape; bit 2: 'u'; bit 3: a hex digit
_ESC_FLAGS = bytes(
    (1 if i == ord("\\") else 2 if i in b'"/bfnrt' else 4 if i == ord("u") else 0)
    | (8 if i in _HEX else 0)
    for i in range(256)
)
_QUOTE_TO_SOH = bytes(1 if i == ord('"') else i for i in range(256))


# Bad escapes or quotes up to this many are set one by one.
_FEW = 64


def json_unescape(data: bytes) -> tuple[bytes, bool]:
    """Makes `data` safe for the C JSON string scanner: every backslash left starts a valid
    escape, and no bare quote ends the string early. Escapes that JSON would reject stay text.
    Also tells whether there were more than _FEW of those."""
    n = len(data)
    # Pairs first, left to right, as JSON reads a run of backslashes; the pair is text, a break.
    data = data.replace(b"\\\\", b"\x01\x01")
    flags = to_int(data.translate(_ESC_FLAGS))
    hex2 = flags & (flags >> 8)  # bit 3: hex digits at i and i+1
    hex4 = hex2 & (hex2 >> 16)  # bit 3: hex digits at i to i+3
    # lane i: a one-letter escape at i+1 (bit 1), or "u" at i+1 (bit 2) and hex at i+2 to i+5
    ok = (flags >> 9) | ((flags >> 10) & (hex4 >> 19))
    escapes = flags & LSB.mask(n)
    bad = escapes ^ (escapes & ok)
    many = bad.bit_count() > _FEW
    if many:
        data = to_bytes(to_int(data) - bad * (ord("\\") - 1), n)
    elif bad:  # a few: found in a copy of the lanes, set in place
        data = _soh_at(data, to_bytes(bad, n))
    if b'"' not in data:  # one memchr, where the passes below would find nothing
        return data, many
    if data.count(b'"') <= _FEW:  # with backslashes all through, a replace of a pair is slow
        return _quotes_to_soh(data), many
    return data.replace(b'\\"', b"\x01\x01").translate(_QUOTE_TO_SOH), many


_ONE_LETTER = frozenset(b"\\/bfnrt")  # escapes of one letter after the backslash, but a quote
# Backslashes (and quotes) at most one in this many bytes are set one by one.
_SPARSE = 256


def few_escapes(data: bytes) -> bytes | None:
    """`data` made safe for the C JSON string scanner as `json_unescape` does (or so the scanner
    reads the same: a pair of backslashes is left to it), found one by one where backslashes
    and quotes are few; None where they are not."""
    bound = len(data) // _SPARSE
    if data.count(b"\\", 0, 1024) > bound:  # a look at a few first
        return None
    if data.count(b"\\") > bound or data.count(b'"') > bound:
        return None
    fixed = bytearray(data)
    at = data.find(b"\\")
    while at >= 0:
        after = data[at + 1 : at + 2]
        if after == b'"':  # an escaped quote: both are breaks
            fixed[at : at + 2] = b"\x01\x01"
            at += 2
        elif after and after[0] in _ONE_LETTER:
            at += 2
        elif after == b"u" and len(hex4 := data[at + 2 : at + 6]) == 4 and not hex4.strip(_HEX):
            at += 6
        else:  # a bad escape (or a lone backslash at the end): its backslash is a break
            fixed[at] = 1
            at += 1
        at = data.find(b"\\", at)
    at = data.find(b'"')
    while at >= 0:
        fixed[at] = 1
        at = data.find(b'"', at + 1)
    return bytes(fixed)


def _soh_at(data: bytes, marks: bytes) -> bytes:
    """`data` with U+0001 where `marks` has a 0x01."""
    fixed = bytearray(data)
    at = marks.find(1)
    while at >= 0:
        fixed[at] = 1
        at = marks.find(1, at + 1)
    return bytes(fixed)


def _quotes_to_soh(data: bytes) -> bytes:
    """`data` with U+0001 for each quote and for the backslash that escapes one (a backslash
    left after the pairs are taken out is one)."""
    fixed = bytearray(data)
    at = data.find(b'"')
    while at >= 0:
        fixed[at] = 1
        if at and data[at - 1] == 0x5C:
            fixed[at - 1] = 1
        at = data.find(b'"', at + 1)
    return bytes(fixed)


def json_string(text: str) -> str:
    decoded, _ = json.decoder.scanstring(text + '"', 0, False)  # type: ignore[attr-defined]
    return str(decoded)


def json_quotes(data: bytes) -> bytes | None:
    """The quick way to the C JSON string scanner, for at most _FEW quotes (None for more):
    each quote as U+0001, and the backslash that escapes one too (the last of an odd run of
    them). Pairs of backslashes and bad escapes are left to `json_text`."""
    quotes = data.count(b'"')
    if not quotes:
        return data
    if quotes > _FEW:
        return None
    fixed = bytearray(data)
    at = -1
    for part in data.split(b'"')[:-1]:
        at += len(part) + 1
        fixed[at] = 1
        if (len(part) - len(part.rstrip(b"\\"))) % 2:
            fixed[at - 1] = 1
    return bytes(fixed)


class _Scanned(str):
    """The text the C JSON string scanner reads. Its error counts the newlines up to where it
    stopped, to name a line and column; only the position is used here, so the count is none,
    and an error costs the same wherever it is."""

    def count(
        self, x: str, start: SupportsIndex | None = None, end: SupportsIndex | None = None, /
    ) -> int:
        return 0

    def rfind(
        self, sub: str, start: SupportsIndex | None = None, end: SupportsIndex | None = None, /
    ) -> int:
        return -1


def json_text(text: str) -> tuple[str, bool]:
    """`text` (after `json_quotes`) read by the C JSON string scanner, each bad escape's
    backslash a U+0001 (as `json_unescape` has it); and whether it had more than _FEW bad
    escapes. A bad escape stops the scanner, which reads the text before it again and goes on
    after it (so each character is read twice at most); after _FEW of them the rest is made safe
    by `json_unescape` first."""
    scan = json.decoder.scanstring  # type: ignore[attr-defined]
    scanned = _Scanned(text + '"')
    parts = []
    at = 0
    for _ in range(_FEW):
        try:
            parts.append(scan(scanned, at, False)[0])
            return "".join(parts), False
        except json.JSONDecodeError as error:
            if error.msg.startswith("Unterminated"):  # the text ends in a lone backslash
                bad = len(text) - 1
            else:  # at the backslash, or at the "u" of a bad \\u escape
                bad = error.pos if text[error.pos] == "\\" else error.pos - 1
        parts += [scan(text[at:bad] + '"', 0, False)[0], "\x01"]
        at = bad + 1
    rest, _ = json_unescape(text[at:].encode("utf-8", "surrogatepass"))
    parts.append(json_string(rest.decode("utf-8", "surrogatepass")))
    return "".join(parts), True


# -- JSON depth ------------------------------------------------------------------------------------

_STRUCTURE = b'"[]{}'
_NOT_STRUCTURE = bytes(i for i in range(256) if i not in _STRUCTURE)
_QUOTE_BIT = table({ord('"'): ord("1")}, default=ord("0"))
_BRACKET_CODE = table({ord("["): 2, ord("{"): 2, ord("]"): 4, ord("}"): 4})
# code + parity ("0"/"1" = 0x30/0x31): an opening bracket outside strings is 0x32, closing 0x34
_OUTSIDE = table({0x32: ord("1"), 0x34: ord("0")})
_NOT_OUTSIDE = bytes(i for i in range(256) if i not in (0x32, 0x34))


def _escaped_quotes(data: bytes, quotes: int) -> int:
    """How many of the (few) quotes in `data` a backslash escapes: an odd run of them before
    it (a run never starts in an earlier segment, as cut points never split one)."""
    if not quotes or b"\\" not in data:
        return 0
    parts = data.split(b'"')[:-1]
    return sum((len(part) - len(part.rstrip(b"\\"))) % 2 for part in parts)


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


class Depth:
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
        if b"[" not in data and b"{" not in data and b"]" not in data and b"}" not in data:
            # No bracket (four memchr): only whether the segment ends inside a string changes.
            quotes = data.count(b'"')
            if quotes <= _FEW:
                self._in_string ^= (quotes - _escaped_quotes(data, quotes)) % 2 == 1
                return False
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


_OUTSIDE_PLAIN = table(
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
    code = to_int(kept.translate(_BRACKET_CODE)) + to_int(inside)
    return to_bytes(code, n).translate(_OUTSIDE, _NOT_OUTSIDE)
