"""The card guard's rules written plainly, one character at a time: slow, and easy to check.

`adapters.http.card_scan` must agree with this on every input; the tests compare the two.
"""

from __future__ import annotations

import re
import unicodedata

from responseiq_billing.adapters.http.card_scan import (
    MAX_DIGITS,
    MIN_DIGITS,
    SEPARATORS,
    is_card_number,
)

_HEX = "0123456789abcdefABCDEF"
_SIMPLE = {"/": "/", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}


def percent_decoded(data: bytes) -> bytes:
    """`%HH` is the byte; a decoded NUL is dropped; a `%` without two hex digits stays."""
    out = bytearray()
    i = 0
    while i < len(data):
        if data[i] == 0x25 and _is_hex(data[i + 1 : i + 3]):
            value = int(data[i + 1 : i + 3], 16)
            if value:
                out.append(value)
            i += 3
        else:
            out.append(data[i] or 1)  # a NUL the client sent is a break
            i += 1
    return bytes(out)


def _is_hex(two: bytes) -> bool:
    return len(two) == 2 and all(chr(c) in _HEX for c in two)


def json_unescaped(text: str) -> str:
    """JSON string escapes decoded (surrogate pairs joined); what JSON would reject stays text.

    An escaped backslash or quote, a bare quote and an invalid escape's backslash are breaks.
    """
    out: list[str] = []
    i = 0
    while i < len(text):
        char = text[i]
        following = text[i + 1] if i + 1 < len(text) else ""
        if char == '"':
            out.append("\x01")
            i += 1
        elif char != "\\":
            out.append(char)
            i += 1
        elif following in ("\\", '"'):
            out.append("\x01\x01")
            i += 2
        elif following and following in _SIMPLE:
            out.append(_SIMPLE[following])
            i += 2
        elif (
            following == "u" and all(c in _HEX for c in text[i + 2 : i + 6]) and i + 6 <= len(text)
        ):
            code = int(text[i + 2 : i + 6], 16)
            low = text[i + 6 : i + 12]
            if 0xD800 <= code <= 0xDBFF and re.fullmatch(r"\\u[dD][c-fC-F][0-9a-fA-F]{2}", low):
                pair = 0x10000 + ((code - 0xD800) << 10) + (int(low[2:], 16) - 0xDC00)
                out.append(chr(pair))
                i += 12
            else:
                out.append(chr(code))
                i += 6
        else:
            out.append("\x01")
            i += 1
    return "".join(out)


def classes(text: str) -> str:
    """A digit, " " (a separator), or "x" (a break) for each character, after NFKC."""
    text = unicodedata.normalize("NFKC", text)
    out = []
    for char in text:
        category = unicodedata.category(char)
        bmp = ord(char) < 0x10000  # beyond it only what NFKC folds (mathematical digits)
        if char in SEPARATORS or (bmp and category in ("Zs", "Zl", "Zp", "Pd")) or char == "\u2212":
            out.append(" ")
        elif category == "Nd" and bmp:
            out.append(str(unicodedata.decimal(char)))
        else:
            out.append("x")
    return "".join(out)


def holds_card_number(data: bytes | str) -> bool:
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data
    decoded = percent_decoded(raw)
    text = decoded.decode("utf-8", "replace")
    if "\\" in text:
        text = json_unescaped(text)
    for run in classes(text).split("x"):
        groups = run.split()
        for first in range(len(groups)):
            digits = ""
            for group in groups[first:]:
                digits += group
                if len(digits) > MAX_DIGITS:
                    break
                if len(digits) >= MIN_DIGITS and is_card_number(digits):
                    return True
    return False


def json_depth(data: bytes) -> int:
    """The deepest nesting of arrays and objects outside strings."""
    depth = deepest = 0
    in_string = escaped = False
    for byte in data:
        char = chr(byte)
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest
