"""Character classes for the card scan: one class byte per character of its NFKC form (a
decimal digit, a separator, or a break), at C speed, without calling NFKC: ASCII through one
`bytes.translate`, the BMP through charmap encoders, plane 1 through its UTF-32 bytes, and forms
of several classes (1/4 is "1", a fraction slash, "4") through markers that are expanded in
place. The tables are built from the Unicode database when the module is imported."""

from __future__ import annotations

import codecs
import re
import threading
import unicodedata
from typing import Any

from responseiq_billing.adapters.http.card_decode import to_bytes, to_int

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
    dict[str, int],
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
    classed = dict(folded + separators + digits + several)
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
            if table[low]:
                classed[chr(page << 8 | low)] = table[low]
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
    return encoders, folds, [bytes(table) for table in expand], forms, pages, astral, classed


_CHARMAPS, _FOLDS, _EXPAND, _FORMS, _PAGES, _ASTRAL, _CLASSED = _build_charmaps()
# Every character beyond ASCII whose form holds a digit or a separator, and an ASCII stand-in
# of the same classes: its digits, " " for a separator, "x" for a break.
_STAND_IN_OF = {_BREAK: "x", 0x20: " ", **{c: chr(c) for c in range(0x30, 0x3A)}}
_STAND_INS = {
    char: "".join(_STAND_IN_OF[c] for c in _FORMS.get(cls, bytes([cls])))
    for char, cls in _CLASSED.items()
}
_ASCII_BYTES = bytes(range(0x80))
# A text with at most _KINDS kinds of character beyond ASCII is classed through ASCII; so is one
# with at most _MORE_KINDS, unless every kind has its slot in the first charmap (one pass).
_KINDS = 6
_MORE_KINDS = 12
# Markers whose form is _WIDTH classes wide (every other is narrower by one at least).
_NOT_WIDEST = bytes(i for i in range(256) if len(_FORMS.get(i, b"")) < _WIDTH)
# Markers fewer than one in _SPARSE class bytes, and of at most _FEW kinds, are replaced kind
# by kind.
_SPARSE, _FEW = 16, 4
_NO_SLOT = b"\x01"  # "?", which "replace" puts for a character the map has no slot for
# The characters beyond ASCII with a slot in the first charmap.
_FIRST_MAP = frozenset(
    ch for ch in _CLASSED if codecs.charmap_encode(ch, "replace", _CHARMAPS[0])[0] != _NO_SLOT
)


_PLANE_1 = bytes(int(i == 1) for i in range(256))


def _astral_classes(text: str) -> int:
    """The classes (or markers) of the characters beyond the BMP, as lanes (0 elsewhere): no
    charmap has a slot for them. Each is read from its UTF-32 bytes: plane, page, low byte."""
    units = text.encode("utf-32-le", "surrogatepass")
    planes, pages, lows = units[2::4], units[1::4], units[0::4]
    plane_1 = to_int(planes.translate(_PLANE_1))
    total = 0
    for this_page, table in _ASTRAL:
        here = plane_1 & to_int(pages.translate(this_page))
        if here:
            total += to_int(lows.translate(table)) & (here * 0xFF)
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


def classes_of(text: str) -> bytes:
    """One class byte per character (see `_ASCII_CLASS`), for any decimal digit or space, after
    NFKC (several for a character whose form holds a digit among other characters).

    ASCII is one `translate`. A text with few kinds of character beyond ASCII (a few accented
    letters, or 1/4 and full-width digits over and over) has each kind replaced by an ASCII
    stand-in of the same classes (at most _KINDS `str.replace` passes, found in as many passes
    over its characters beyond ASCII), and is then read as ASCII, where "?" puts a break for
    every other character. Any other text goes through the charmaps.
    """
    if text.isascii():
        return text.encode("ascii").translate(_ASCII_CLASS)
    beyond = text.encode("utf-8", "surrogatepass").translate(None, _ASCII_BYTES)
    classes = _sparse_classes(text, beyond)
    if classes is not None:
        return classes
    kinds = _few_kinds(text, beyond)
    if kinds is None:
        return charmap_classes(text)
    for char in kinds:
        text = text.replace(char, _STAND_INS[char])
    return text.encode("ascii", "replace").translate(_ASCII_CLASS)


# A text whose characters beyond ASCII are at most one in _SPARSE_CHARS, in at most one run (of
# them, with no ASCII between) in _SPARSE_RUNS, is encoded as ASCII with an error handler that
# puts each run's stand-ins: one call per run, and a dict look-up per character. It gives up
# (and the text goes the other ways) at the first run past that many.
_SPARSE_CHARS, _SPARSE_RUNS = 64, 1024
_STAND_IN_ERRORS = "responseiq-card-stand-ins"
_CONTINUATION = bytes(range(0x80, 0xC0))  # the bytes of a UTF-8 character after its first


class _TooManyRuns(Exception):
    pass


_budget = threading.local()  # runs the error handler may still take, in this thread


def _stand_ins(error: UnicodeError) -> tuple[str, int]:
    if not isinstance(error, UnicodeEncodeError) or error.encoding != "ascii":
        raise error
    _budget.runs -= 1
    if _budget.runs < 0:
        raise _TooManyRuns
    run = error.object[error.start : error.end]
    return "".join([_STAND_INS.get(char, "x") for char in run]), error.end


codecs.register_error(_STAND_IN_ERRORS, _stand_ins)


def _sparse_classes(text: str, beyond: bytes) -> bytes | None:
    """`classes_of` through the error handler, for a text (`beyond`: its UTF-8 bytes beyond
    ASCII) with few characters beyond ASCII in few runs; None for any other."""
    n = len(text)
    # A character is at most 4 bytes in UTF-8: most texts are told by their bytes alone.
    if len(beyond) * _SPARSE_CHARS > 4 * n:
        return None
    if (
        len(beyond) * _SPARSE_CHARS > n
        and len(beyond.translate(None, _CONTINUATION)) * _SPARSE_CHARS > n
    ):
        return None
    _budget.runs = n // _SPARSE_RUNS
    try:
        ascii_text = text.encode("ascii", _STAND_IN_ERRORS)
    except _TooManyRuns:
        return None
    return ascii_text.translate(_ASCII_CLASS)


def _few_kinds(text: str, beyond: bytes) -> list[str] | None:
    """The kinds of character beyond ASCII in `text` that have a class, or None if it holds
    more than _KINDS kinds of character beyond ASCII and the charmaps are the way for it: more
    than _MORE_KINDS, or every kind in the first charmap (which classes them in one pass, where
    each kind costs the stand-ins a pass)."""
    rest = beyond.decode("utf-8", "surrogatepass")
    # Past _KINDS kinds, a pass per kind costs more than the charmaps where most characters are
    # beyond ASCII (each pass copies the text) or the first map has them all.
    limit = _KINDS if len(rest) * 2 > len(text) else _MORE_KINDS
    first = set(rest[:64])  # a first look at a few: too many kinds already, or the first map's
    if len(first) > limit or (len(first) > _KINDS and first <= _FIRST_MAP):
        return None
    kinds = []
    first_map = True  # every kind so far has its slot in the first charmap
    seen = 0
    while rest and seen < limit:
        char = rest[0]
        rest = rest.replace(char, "")
        seen += 1
        first_map = first_map and char in _FIRST_MAP
        if char in _STAND_INS:
            kinds.append(char)
    if rest or (seen > _KINDS and first_map):
        return None
    return kinds


def charmap_classes(text: str) -> bytes:
    """`classes_of` for a text of many kinds of character beyond ASCII: a pass over the first
    charmap, and over each other charmap whose characters the text may hold."""
    slots, _ = codecs.charmap_encode(text, "replace", _CHARMAPS[0])
    if _NO_SLOT not in slots:  # every character has its slot in the first map
        return slots.translate(_FOLDS[0])
    units = text.encode("utf-16-le", "surrogatepass")
    total = to_int(slots.translate(_FOLDS[0]))
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
        total += to_int(slots.translate(fold))
    classes = to_bytes(total, len(text))
    markers = classes.translate(None, _PLAIN_CLASSES)
    if markers:
        return _expand(classes, markers)
    return classes
