"""The card-data guard, and a request log that never records what a client sent."""

from __future__ import annotations

import logging
import re
import time
from typing import Any, cast
from urllib.parse import unquote_plus

import msgspec
from litestar.enums import ScopeType
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("billing.http")

CARD_DATA_CODE = "card_data_rejected"
CARD_DATA_DETAIL = (
    "The request held what looks like a payment card number. Card details must go from the "
    "browser to the payment gateway only; nothing of this request was processed or stored."
)
MIN_DIGITS, MAX_DIGITS = 13, 19

# Runs of digits, each separated from the next by at most one space or dash ("4242 4242-…").
_DIGIT_RUN = re.compile(r"\d(?:[ -]?\d)*")
_SEPARATOR = re.compile(r"[ -]")


def luhn_valid(digits: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char)
        if index % 2 == 1:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def holds_card_number(text: str) -> bool:
    """Whether `text` holds a Luhn-valid 13-19 digit number, written with or without separators.

    A separated run ("x 4242 4242 4242 4242") is tried at every group boundary, so a card number
    next to other digit groups is still found; one unbroken run is a card only as a whole.
    """
    for match in _DIGIT_RUN.finditer(text):
        groups = _SEPARATOR.split(match.group())
        for start in range(len(groups)):
            digits = ""
            for group in groups[start:]:
                digits += group
                if len(digits) > MAX_DIGITS:
                    break
                if len(digits) >= MIN_DIGITS and luhn_valid(digits):
                    return True
    return False


def _texts(raw: bytes) -> list[str]:
    text = raw.decode("utf-8", errors="replace")
    # Forms and queries may encode the spaces or digits; check both spellings.
    return [text, unquote_plus(text)]


class CardDataGuard(ASGIMiddleware):
    """Refuses with 400 `card_data_rejected` a request whose path, query or body holds a card number.

    Runs before any handler; the request is dropped, so the number is neither logged nor stored.
    The article promises card data never touches our servers; this keeps it even for a careless
    client.
    """

    scopes = (ScopeType.HTTP,)
    # Gateway webhooks are signed by the gateway, not sent by clients, and are stored only
    # after their card details are redacted; refusing one would make the gateway retry it.
    exclude_path_pattern = ("^/webhooks/",)

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        body = bytearray()
        last: Any = None  # a disconnect arriving while reading is replayed as it came
        while True:
            message: Any = await receive()
            if message["type"] != "http.request":
                last = message
                break
            body += message.get("body", b"")
            if not message.get("more_body", False):
                break
        query = scope.get("query_string", b"")
        path = scope.get("raw_path") or scope["path"].encode()
        if any(holds_card_number(t) for part in (path, query, bytes(body)) for t in _texts(part)):
            log.warning("refused a request holding card data (%s)", _route(scope))
            await _reject(send)
            return

        replayed = False

        async def replay() -> Any:
            nonlocal replayed
            if not replayed:
                replayed = True
                if last is not None:
                    return last
                return {"type": "http.request", "body": bytes(body), "more_body": False}
            return await receive()

        await next_app(scope, cast(Receive, replay), send)


async def _reject(send: Send) -> None:
    payload = msgspec.json.encode({"code": CARD_DATA_CODE, "detail": CARD_DATA_DETAIL})
    await send(
        {
            "type": "http.response.start",
            "status": 400,
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
