"""Bearer JWT (HS256) authentication: the account always comes from the token's `sub`."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
from litestar import Request

from responseiq_billing.domain.errors import BillingError, ErrorKind

ALGORITHM = "HS256"
# An account id is 1-64 characters of this set: what the storage columns hold, and nothing a
# log line or a query could misread (no NUL, no newline, no spaces).
ACCOUNT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:@|-]{0,63}")
# A token living longer than this is a leaked-forever credential, not a session.
MAX_TOKEN_LIFETIME = timedelta(days=366)
# Verified tokens a process remembers (a few MB at most); the oldest is forgotten first.
VERIFIED_TOKENS = 10_000


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
    secret: str,
    account_id: str,
    *,
    ttl: timedelta,
    now: datetime | None = None,
    audience: str | None = None,
    issuer: str | None = None,
) -> str:
    """A token for `account_id` as the host application would sign it (for development)."""
    issued = now or datetime.now(UTC)
    claims: dict[str, Any] = {"sub": account_id, "iat": issued, "exp": issued + ttl}
    if audience is not None:
        claims["aud"] = audience
    if issuer is not None:
        claims["iss"] = issuer
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def verify_token(
    secret: str,
    token: str,
    *,
    audience: str | None = None,
    issuer: str | None = None,
    now: datetime | None = None,
) -> str:
    """The account id in a valid token; every failure is an `AuthError` with its own code.

    `aud` and `iss` are checked when the service is configured with them; `exp` must be in the
    future but at most `MAX_TOKEN_LIFETIME` ahead; `sub` must match `ACCOUNT_ID`.
    """
    return _verified(secret, token, audience=audience, issuer=issuer, now=now)[0]


def _verified(
    secret: str,
    token: str,
    *,
    audience: str | None,
    issuer: str | None,
    now: datetime | None = None,
) -> tuple[str, float]:
    """`verify_token`, also giving the token's expiry (a POSIX timestamp)."""
    required = ["exp", "sub", *(["aud"] if audience else []), *(["iss"] if issuer else [])]
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=[ALGORITHM],
            audience=audience,
            issuer=issuer,
            options={"require": required, "verify_aud": audience is not None},
        )
    except jwt.ExpiredSignatureError:
        raise TokenExpired() from None
    except jwt.InvalidSignatureError:
        raise TokenBadSignature() from None
    except jwt.InvalidAudienceError:
        raise TokenMalformed("The bearer token is not meant for this service (`aud`).") from None
    except jwt.InvalidIssuerError:
        raise TokenMalformed(
            "The bearer token was not issued by the host application (`iss`)."
        ) from None
    except jwt.PyJWTError:
        raise TokenMalformed() from None
    sub = claims.get("sub")
    if not isinstance(sub, str) or ACCOUNT_ID.fullmatch(sub) is None:
        raise TokenMalformed(
            "The token's `sub` must be an account id of 1-64 letters, digits and _ . : @ | -."
        )
    expires = claims["exp"]
    moment = now or datetime.now(UTC)
    if not isinstance(expires, int | float) or expires > (moment + MAX_TOKEN_LIFETIME).timestamp():
        raise TokenMalformed("The token's `exp` is more than a year ahead.")
    return sub, float(expires)


def bearer_token(header: str | None) -> str:
    if not header:
        raise TokenMissing()
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise TokenMalformed("The Authorization header must be `Bearer <token>`.")
    return token.strip()


def account_dependency(
    secret: str, *, audience: str | None = None, issuer: str | None = None
) -> Callable[[Request[Any, Any, Any]], str]:
    """A Litestar dependency giving the signed-in account id (or raising 401).

    A token that verified is remembered, by its exact text, until its `exp`: the same bytes
    under the same secret verify the same way until then, and every later check in
    `verify_token` (`nbf`, `iat`, the lifetime cap) can only have become easier to pass. Only
    successes are kept, at most `VERIFIED_TOKENS` of them.
    """
    verified: dict[str, tuple[str, float]] = {}

    def account_id(request: Request[Any, Any, Any]) -> str:
        sent = request.headers.getall("authorization", [])
        if len(sent) > 1:
            # Two credentials: which one a proxy or a library reads is not ours to guess.
            raise TokenMalformed("Send exactly one Authorization header.")
        token = bearer_token(sent[0] if sent else None)
        held = verified.get(token)
        if held is not None:
            if time.time() < held[1]:
                return held[0]
            verified.pop(token, None)
        sub, expires = _verified(secret, token, audience=audience, issuer=issuer)
        if len(verified) >= VERIFIED_TOKENS:
            verified.pop(next(iter(verified)), None)  # the oldest
        verified[token] = (sub, expires)
        return sub

    return account_id
