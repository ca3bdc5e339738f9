"""Just enough PDF reading to check what an invoice document says (text-showing operators)."""

from __future__ import annotations

import re
import zlib

_STREAM = re.compile(rb"<<(?P<dict>.*?)>>\s*stream\r?\n(?P<body>.*?)\r?\nendstream", re.S)
_STRING = re.compile(rb"\((?P<text>(?:\\.|[^\\)])*)\)\s*(?:Tj|'|\")|\[(?P<array>[^\]]*)\]\s*TJ")
_ARRAY_STRING = re.compile(rb"\(((?:\\.|[^\\)])*)\)")
_ESCAPES = {b"n": b"\n", b"r": b"\r", b"t": b"\t", b"b": b"\b", b"f": b"\f"}


def _unescape(raw: bytes) -> str:
    out = re.sub(rb"\\([nrtbf()\\])", lambda m: _ESCAPES.get(m[1], m[1]), raw)
    return out.decode("latin-1")


def pdf_text(document: bytes) -> str:
    """The strings a PDF's content streams show, one per line (Flate streams are inflated)."""
    lines: list[str] = []
    for stream in _STREAM.finditer(document):
        body = stream["body"]
        if b"/FlateDecode" in stream["dict"]:
            body = zlib.decompress(body)
        for shown in _STRING.finditer(body):
            if shown["text"] is not None:
                lines.append(_unescape(shown["text"]))
            else:
                lines.append("".join(_unescape(s) for s in _ARRAY_STRING.findall(shown["array"])))
    return "\n".join(lines)
