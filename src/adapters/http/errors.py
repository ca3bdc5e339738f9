"""One mapping from the billing error tree to HTTP: status by `ErrorKind`, body `{code, detail}`."""

from __future__ import annotations

import logging
import re
import traceback
from typing import Any

import msgspec
from litestar import MediaType, Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR
from litestar.types import ExceptionHandlersMap

from responseiq_billing.domain.errors import BillingError, ErrorKind, PaymentActionRequired

log = logging.getLogger("billing.http")

STATUS_BY_KIND: dict[ErrorKind, int] = {
    ErrorKind.UNAUTHORIZED: 401,
    ErrorKind.PAYMENT: 402,
    ErrorKind.NOT_FOUND: 404,
    ErrorKind.CONFLICT: 409,
    ErrorKind.INVALID: 422,
    ErrorKind.UNAVAILABLE: 503,
}


class ErrorBody(msgspec.Struct, frozen=True, omit_defaults=True):
    """Every error response: a stable machine `code` and a sentence for people.

    `payment.action_required` adds what the client needs to finish the payment: the page
    where the customer confirms it (`hosted_invoice_url`) and/or the `client_secret` of the
    payment for Stripe.js. Absent fields are left out, so other bodies are as they were.
    """

    code: str
    detail: str
    hosted_invoice_url: str | None = None
    client_secret: str | None = None


def error_response(status: int, code: str, detail: str, **headers: str) -> Response[ErrorBody]:
    return Response(
        ErrorBody(code=code, detail=detail),
        status_code=status,
        media_type=MediaType.JSON,
        headers=headers or None,
    )


def billing_error(_: Request[Any, Any, Any], error: BillingError) -> Response[ErrorBody]:
    status = STATUS_BY_KIND.get(error.kind, 409)
    headers = {"WWW-Authenticate": 'Bearer realm="billing"'} if status == 401 else {}
    if isinstance(error, PaymentActionRequired):
        return Response(
            ErrorBody(
                code=error.code,
                detail=error.message,
                hosted_invoice_url=error.hosted_invoice_url,
                client_secret=error.client_secret,
            ),
            status_code=status,
            media_type=MediaType.JSON,
        )
    return error_response(status, error.code, error.message, **headers)


# msgspec quotes what was sent in a few messages; those parts are replaced, never echoed.
_ECHOES = (
    (re.compile(r"Invalid enum value .*", re.S), "Invalid value; see the schema for the choices"),
    (re.compile(r"Object contains unknown field .*", re.S), "Object contains an unknown field"),
)
_FIELD = re.compile(r"[A-Za-z_][A-Za-z0-9_.\[\]$-]{0,64}")


def _without_echo(message: str) -> str:
    for pattern, replacement in _ECHOES:
        message = pattern.sub(replacement, message)
    return message


def validation_error(_: Request[Any, Any, Any], error: ValidationException) -> Response[ErrorBody]:
    """Litestar's own parsing errors (bad JSON, unknown field, wrong type) become 422."""
    problems: list[str] = []
    extra = error.extra if isinstance(error.extra, list) else []
    for item in extra:
        if isinstance(item, dict):
            # The field's name (ours, from the schema) and what was expected; never the value.
            message, key = _without_echo(str(item.get("message"))), item.get("key")
            named = isinstance(key, str) and key != "body" and _FIELD.fullmatch(key) is not None
            problems.append(f"{key}: {message}" if named else message)
    detail = "; ".join(p for p in problems if p) or "The request is not valid."
    return error_response(422, "request.invalid", detail)


def http_error(request: Request[Any, Any, Any], error: HTTPException) -> Response[ErrorBody]:
    """Litestar's routing errors (404 no route, 405 method) in the same body shape."""
    status = error.status_code
    if status in (404, 405):
        # No route matched, so the card guard (route middleware) did not run: a path that
        # decodes to other segments ("4242/4242/…") must still be refused as card data.
        from responseiq_billing.adapters.http.guard import (
            CARD_DATA_CODE,
            CARD_DATA_DETAIL,
            holds_card_number,
        )

        raw_path = request.scope.get("raw_path") or request.scope.get("path", "").encode()
        if holds_card_number(raw_path):
            return error_response(400, CARD_DATA_CODE, CARD_DATA_DETAIL)
    if status == 400:
        # Malformed bodies (bad JSON) are invalid requests; 400 is kept for card data alone.
        return error_response(422, "request.invalid", str(error.detail))
    code = {404: "route.not_found", 405: "route.method_not_allowed"}.get(status, f"http.{status}")
    return error_response(status, code, str(error.detail), **(error.headers or {}))


def unexpected_error(request: Request[Any, Any, Any], error: Exception) -> Response[ErrorBody]:
    # The route template and the error's type and frames only: the path values, query, body and
    # the error's message (bound values, a client's input echoed by a library) stay out of logs.
    template = request.scope.get("path_template") or "?"
    frames = "".join(traceback.format_tb(error.__traceback__))
    log.error(
        "unhandled %s on %s %s\n%s", type(error).__qualname__, request.method, template, frames
    )
    return error_response(
        HTTP_500_INTERNAL_SERVER_ERROR, "internal", "Something went wrong on our side."
    )


EXCEPTION_HANDLERS: ExceptionHandlersMap = {
    BillingError: billing_error,
    ValidationException: validation_error,
    HTTPException: http_error,
    Exception: unexpected_error,
}
