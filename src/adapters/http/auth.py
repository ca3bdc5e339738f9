"""Bearer JWT (HS256) authentication: the account always comes from the token's `sub`."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
from litestar import Request

from domain.errors import BillingError, ErrorKind

ALGORITHM = "HS256"


class AuthError(BillingError):
    kind = ErrorKind.UNAUTHORIZED


class TokenMissing(AuthError):
    code = "auth.missing"
    default_message = "Send `Authorization: Bearer <token>`."


class TokenMalformed(AuthError):
    code = "auth.malformed"
    default_message = "The bearer token is not a valid JWT with `sub` and `exp`."


class TokenBadSignature(AuthError):
    code = "auth.invalid_signature"
    default_message = "The bearer token's signature does not verify."


class TokenExpired(AuthError):
    code = "auth.expired"
    default_message = "The bearer token has expired."


def issue_token(
    secret: str, account_id: str, *, ttl: timedelta, now: datetime | None = None
) -> str:
    """A token for `account_id` as the host application would sign it (for development)."""
    issued = now or datetime.now(UTC)
    claims = {"sub": account_id, "iat": issued, "exp": issued + ttl}
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def verify_token(secret: str, token: str) -> str:
    """The account id in a valid token; every failure is an `AuthError` with its own code."""
    try:
        claims = jwt.decode(
            token, secret, algorithms=[ALGORITHM], options={"require": ["exp", "sub"]}
        )
    except jwt.ExpiredSignatureError:
        raise TokenExpired() from None
    except jwt.InvalidSignatureError:
        raise TokenBadSignature() from None
    except jwt.PyJWTError:
        raise TokenMalformed() from None
    sub = claims.get("sub")
    if not isinstance(sub, str) or not sub.strip() or len(sub) > 200:
        raise TokenMalformed("The token's `sub` must be a non-empty account id.")
    return sub


def bearer_token(header: str | None) -> str:
    if not header:
        raise TokenMissing()
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise TokenMalformed("The Authorization header must be `Bearer <token>`.")
    return token.strip()


def account_dependency(secret: str) -> Callable[[Request[Any, Any, Any]], str]:
    """A Litestar dependency giving the signed-in account id (or raising 401)."""

    def account_id(request: Request[Any, Any, Any]) -> str:
        return verify_token(secret, bearer_token(request.headers.get("authorization")))

    return account_id
