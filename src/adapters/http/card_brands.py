"""Card brands: issuer prefixes (IIN) and the lengths each is issued in, the Luhn check, and
the byte tables the digit lanes (`card_lanes`) read the allowed lengths from."""

from __future__ import annotations

MIN_DIGITS, MAX_DIGITS = 13, 19
LENGTHS = range(MIN_DIGITS, MAX_DIGITS + 1)


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
        lengths |= set(LENGTHS)
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


ROW_COL, WIDTHS = _brand_tables()
