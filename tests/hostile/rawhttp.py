"""A deliberately naive HTTP/1.1 client: sends exactly the bytes it is given, nothing normalised.

Ordinary clients refuse or re-encode what an attacker sends (raw control characters in a path,
odd header values, a body that disagrees with its length); this one does not.
"""

from __future__ import annotations

import contextlib
import json
import socket
from typing import Any
from urllib.parse import urlsplit

import attrs


@attrs.frozen
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def code(self) -> str | None:
        try:
            parsed: Any = json.loads(self.body)
        except ValueError:
            return None
        return parsed.get("code") if isinstance(parsed, dict) else None


def send(
    base: str,
    method: str,
    target: bytes,
    headers: list[tuple[bytes, bytes]],
    body: bytes = b"",
    *,
    chunks: list[bytes] | None = None,
    timeout: float = 20,
) -> Reply:
    """One request on a fresh connection; `chunks` sends the body with chunked encoding."""
    parts = urlsplit(base)
    head = [method.encode() + b" " + target + b" HTTP/1.1", b"Host: " + parts.netloc.encode()]
    head += [name + b": " + value for name, value in headers]
    head.append(b"Connection: close")
    if chunks is not None:
        head.append(b"Transfer-Encoding: chunked")
        payload = b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in chunks if c) + b"0\r\n\r\n"
    else:
        if body or method in ("POST", "PUT", "PATCH", "DELETE"):
            head.append(b"Content-Length: " + str(len(body)).encode())
        payload = body
    with socket.create_connection((parts.hostname, parts.port), timeout=timeout) as sock:
        sock.sendall(b"\r\n".join(head) + b"\r\n\r\n")
        with contextlib.suppress(OSError):  # the server may answer (413) and close early
            sock.sendall(payload)
        received = bytearray()
        while True:
            try:
                data = sock.recv(65536)
            except (ConnectionResetError, TimeoutError):
                break
            if not data:
                break
            received += data
    return _parse(bytes(received))


def _parse(raw: bytes) -> Reply:
    head, _, rest = raw.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    if not lines or not lines[0].startswith(b"HTTP/1.1 "):
        return Reply(0, {}, raw)
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        headers[name.decode("latin-1").strip().lower()] = value.decode("latin-1").strip()
    if headers.get("transfer-encoding") == "chunked":
        body = bytearray()
        while rest:
            size_line, _, rest = rest.partition(b"\r\n")
            size = int(size_line.split(b";")[0] or b"0", 16)
            if size == 0:
                break
            body += rest[:size]
            rest = rest[size + 2 :]
        return Reply(status, headers, bytes(body))
    return Reply(status, headers, rest)
