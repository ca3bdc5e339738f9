"""Finds payment card numbers (and over-deep JSON) in request bytes: one pass, linear, streaming.

The work is split over modules, each at C speed per byte:

- `card_decode`: percent and form encoding and JSON escapes are decoded (`bytes.translate`,
  `bytes.replace`, lanes of big integers, the C JSON string scanner: straight away where a
  segment has few quotes and the last had not many bad escapes, else after the text is made
  safe for it; backslashes and quotes at most one in 256 bytes are set one by one first), and
  JSON nesting is counted;
- `card_charmaps`: each character becomes the class of its NFKC form (a digit, a separator or a
  break): ASCII through one `bytes.translate`; a text with few characters beyond ASCII in few
  runs through an encoding error handler that puts ASCII stand-ins; one with few kinds of them
  (up to 12 where they are not most of it) through stand-ins by kind (`str.replace`, one per
  kind); any other through charmap encoders for the BMP and UTF-32 bytes for plane 1;
- `card_lanes`: the classes become digit lanes (separators gone, group starts marked); a piece
  with no run of 13 or more digits without a break skips the lanes' arithmetic, and numpy
  arrays of the lanes check every group-aligned window for a brand's prefix and length
  (`card_brands`) and Luhn.

Bounded work per byte: Python code runs per segment (at least _MIN_SEGMENT bytes) and per piece
of _PIECE characters, never per byte or per digit group. Its loops are bounded per piece: at
most 12 kinds of character beyond ASCII (more go to the charmaps), one error handler call per
1024 characters and one look-up per 64, one backslash or quote set one by one per 256 bytes,
64 quotes or bad escapes set one by one (more are replaced in passes), and one turn per card
length (seven) over the lanes. Every other step is a fixed number of C passes over the piece
(the JSON string scanner stops at each of up to 64 bad escapes and reads the text before it
again, so it reads each character twice at most); a character becomes at most four class
bytes.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Iterable

from responseiq_billing.adapters.http.card_brands import (
    MAX_DIGITS,
    MIN_DIGITS,
    brand_lengths,
    is_card_number,
    luhn_valid,
)
from responseiq_billing.adapters.http.card_charmaps import SEPARATORS, classes_of
from responseiq_billing.adapters.http.card_decode import (
    ESCAPE_BYTES,
    Depth,
    few_escapes,
    json_quotes,
    json_string,
    json_text,
    json_unescape,
    percent_decode,
)
from responseiq_billing.adapters.http.card_lanes import Lanes

__all__ = [
    "CARD",
    "JSON_DEPTH_LIMIT",
    "MAX_DIGITS",
    "MIN_DIGITS",
    "SEPARATORS",
    "TOO_DEEP",
    "CardScanner",
    "brand_lengths",
    "holds_card_number",
    "is_card_number",
    "luhn_valid",
    "scan",
]

JSON_DEPTH_LIMIT = 32
# A segment is decoded and scanned as a whole: at least _MIN_SEGMENT bytes (so a body trickled in
# byte by byte does not pay the per-call cost per byte), and `scan` feeds _PIECE at a time.
_MIN_SEGMENT = 4 * 1024
_PIECE = 64 * 1024

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
        self._lanes = Lanes()
        self._depth = Depth(json_depth_limit) if json_depth_limit is not None else None
        self._quick_json = True  # see `_scan`
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
        cut = len(data.rstrip(ESCAPE_BYTES))
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
            segment = percent_decode(segment)
        escaped = b"\\" in segment
        quick = None
        if escaped:
            # Few backslashes and quotes are set one by one; else the quick way (few quotes,
            # and not many bad escapes in the last segment) leaves pairs and bad escapes to the
            # C scanner, and the other makes the text safe first.
            few = few_escapes(segment)
            if few is not None:
                segment = few
            else:
                if self._quick_json:
                    quick = json_quotes(segment)
                if quick is None:
                    segment, many_bad = json_unescape(segment)
                    self._quick_json = not many_bad
                else:
                    segment = quick
        text = self._utf8.decode(segment, final)
        if quick is not None:
            text, many_bad = json_text(text)
            self._quick_json = not many_bad
        elif escaped:
            text = json_string(text)
        # A segment can be long (a run of escape bytes has no cut point); the digit lanes are
        # fed a piece at a time, as big integers cost more per lane past the caches.
        for start in range(0, len(text), _PIECE):
            if self._lanes.feed(classes_of(text[start : start + _PIECE])):
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
