"""The card-data guard, and a request log that never records what a client sent."""

from __future__ import annotations

import logging
import time
from typing import Any, cast

import anyio.lowlevel
import anyio.to_thread
import msgspec
from litestar.enums import ScopeType
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from responseiq_billing.adapters.http.card_scan import (
    CARD,
    JSON_DEPTH_LIMIT,
    TOO_DEEP,
    CardScanner,
    holds_card_number,
    luhn_valid,
    scan,
)

__all__ = ["GUARDED_BODY_LIMIT", "CardDataGuard", "RequestLog", "holds_card_number", "luhn_valid"]

log = logging.getLogger("billing.http")

# Our own bodies are a few hundred bytes of JSON or a sandbox form; 1 MiB leaves room for any of
# them while bounding what one request can make the guard read, hold and scan before auth runs
# (the most hostile MB found costs about 16 ms of CPU, lowest of 6 runs of benchmarks/guard.py
# on 2 shared cores; more on a busy machine). Refused with 413 as soon as it is declared or
# exceeded.
GUARDED_BODY_LIMIT = 1024 * 1024
# The scan runs on the event loop a slice of 16 KiB at a time (a few hundred microseconds); a
# held-back segment bigger than _OFF_LOOP is scanned on a worker thread instead.
_SLICE = 16 * 1024
_OFF_LOOP = 128 * 1024
# Headers that carry credentials; they are checked by auth, and never logged or scanned.
_UNSCANNED_HEADERS = {b"authorization", b"cookie"}
# Between the parts of the header block: a break for the scanner (not a digit, separator or
# escape byte), so escapes and digit groups end where a part ends.
_PART_BREAK = b"\x01"

# Fixed sentences: an error body never repeats anything the client sent.
REFUSALS: dict[str, tuple[int, str, str]] = {
    CARD: (
        400,
        "card_data_rejected",
        "The request held what looks like a payment card number. Card details must go from the "
        "browser to the payment gateway only; nothing of this request was processed or stored.",
    ),
    TOO_DEEP: (
        400,
        "request.too_deep",
        f"The JSON body is nested more than {JSON_DEPTH_LIMIT} levels deep.",
    ),
    "too_large": (
        413,
        "request.too_large",
        f"The request body is larger than {GUARDED_BODY_LIMIT} bytes.",
    ),
}
CARD_DATA_CODE = REFUSALS[CARD][1]
CARD_DATA_DETAIL = REFUSALS[CARD][2]


class CardDataGuard(ASGIMiddleware):
    """Refuses a request whose path, query, headers or body hold a card number (400
    `card_data_rejected`), whose body is too large (413) or whose JSON is too deep (400).

    Runs before auth and any handler, reading the body as it streams in: the body is counted
    and scanned chunk by chunk, and nothing past the limit is ever read. A refused request is
    dropped, so the number is neither logged nor stored. The article promises card data never
    touches our servers; this keeps it even for a careless client.
    """

    scopes = (ScopeType.HTTP,)
    # Gateway webhooks are signed by the gateway, not sent by clients, and are stored only
    # after their card details are redacted; refusing one would make the gateway retry it.
    # They keep Litestar's own request_max_body_size (set in app.py).
    exclude_path_pattern = ("^/webhooks/",)

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        headers = cast(list[tuple[bytes, bytes]], scope.get("headers") or [])
        path = scope.get("raw_path") or scope["path"].encode("utf-8", "surrogateescape")
        # Path, query and header values are scanned as one block in one call, each part cut
        # from the next by a break byte, so a number is never joined across two parts.
        parts = [path, scope.get("query_string", b"")]
        parts += [value for name, value in headers if name.lower() not in _UNSCANNED_HEADERS]
        if scan((_PART_BREAK.join(parts),)):
            await _refuse(scope, send, CARD)
            return
        if _declared_length(headers) > GUARDED_BODY_LIMIT:
            await _refuse(scope, send, "too_large")
            return

        first: Any = await receive()
        if (
            first["type"] == "http.request"
            and not first.get("body")
            and not first.get("more_body", False)
        ):
            # No body (a GET): nothing to scan; the handler gets the same empty message.
            await next_app(scope, cast(Receive, _replay(first, receive)), send)
            return

        scanner = CardScanner(json_depth_limit=JSON_DEPTH_LIMIT if _may_be_json(headers) else None)
        chunks: list[bytes] = []
        received = 0
        last: Any = None  # a disconnect arriving while reading is replayed as it came
        message: Any = first
        while True:
            if message is None:
                message = await receive()
            if message["type"] != "http.request":
                last = message
                break
            chunk: bytes = message.get("body", b"")
            received += len(chunk)
            if received > GUARDED_BODY_LIMIT:
                await _refuse(scope, send, "too_large")
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
            if await _scan(scanner, chunk, final=not more):
                await _refuse(scope, send, cast(str, scanner.found))
                return
            if not more:
                break
            message = None

        if last is None:
            last = {"type": "http.request", "body": b"".join(chunks), "more_body": False}
        await next_app(scope, cast(Receive, _replay(last, receive)), send)


def _replay(message: Any, receive: Receive) -> Any:
    """`receive` that first answers `message` (the body as read, or a disconnect as it came)."""
    replayed = False

    async def replay() -> Any:
        nonlocal replayed
        if not replayed:
            replayed = True
            return message
        return await receive()

    return replay


async def _scan(scanner: CardScanner, chunk: bytes, *, final: bool) -> str | None:
    """Scans `chunk` in slices, giving the event loop back between them: with several bodies
    streaming in at once, a /health request waits for a slice of each, not a chunk of each."""
    for start in range(0, len(chunk), _SLICE):
        piece = chunk[start : start + _SLICE]
        # Bytes held back for lack of a safe cut (a long run of digits or escapes) are scanned
        # all at once when the cut comes; a big run goes to a worker thread.
        if scanner.pending + len(piece) > _OFF_LOOP:
            found = await anyio.to_thread.run_sync(scanner.feed, piece)
        else:
            found = scanner.feed(piece)
        if found:
            return found
        await anyio.lowlevel.checkpoint()
    if not final:
        return None
    if scanner.pending > _OFF_LOOP:
        return await anyio.to_thread.run_sync(scanner.finish)
    return scanner.finish()


def _declared_length(headers: list[tuple[bytes, bytes]]) -> int:
    for name, value in headers:
        if name.lower() == b"content-length":
            try:
                return int(value)
            except ValueError:
                return 0
    return 0


def _may_be_json(headers: list[tuple[bytes, bytes]]) -> bool:
    """Bodies Litestar may read as JSON: anything that is not a form."""
    for name, value in headers:
        if name.lower() == b"content-type":
            kind = value.split(b";", 1)[0].strip().lower()
            return kind not in (b"application/x-www-form-urlencoded", b"multipart/form-data")
    return True


async def _refuse(scope: Scope, send: Send, reason: str) -> None:
    status, code, detail = REFUSALS[reason]
    log.warning("refused %s: %s", _route(scope), code)
    payload = msgspec.json.encode({"code": code, "detail": detail})
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload, "more_body": False})


def _route(scope: Scope) -> str:
    """Method and route template (`GET /billing/invoices/{invoice_id}/pdf`), never the client's path."""
    method = cast(dict[str, Any], scope).get("method", "?")
    return f"{method} {scope.get('path_template') or '?'}"


class RequestLog(ASGIMiddleware):
    """One line per request: method, route template, status, duration. No path values, query,
    headers or body, since those are where tokens and careless card data would be."""

    scopes = (ScopeType.HTTP,)

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        if not log.isEnabledFor(logging.INFO):
            await next_app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_and_note(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await next_app(scope, receive, send_and_note)
        finally:
            log.info(
                "%s %s %.1fms",
                _route(scope),
                status,
                (time.perf_counter() - started) * 1000,
            )
