"""The page's session: a signed, expiring cookie naming the account, its CSRF token and flashes.

No server-side store: the cookie carries `{account, expiry, nonce}` and an HMAC-SHA256 made
with a key derived from BILLING_AUTH_SECRET, so it cannot be forged or extended, and every
instance of the service reads it alike. The CSRF token is an HMAC of the session's nonce (a
synchronizer token bound to the session, no second cookie); a flash message is one key from
a fixed list, signed and bound to the session too.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from datetime import datetime, timedelta

import attrs

from responseiq_billing.adapters.http.auth import ACCOUNT_ID
from responseiq_billing.domain.errors import BillingError, ErrorKind

SESSION_COOKIE = "billing_session"
FLASH_COOKIE = "billing_flash"
COOKIE_PATH = "/billing"
# Long enough to visit the portal and come back; the host application reopens the page with
# a fresh token after that.
SESSION_TTL = timedelta(hours=1)
FLASH_TTL = timedelta(minutes=5)
CSRF_FIELD = "csrf_token"
# Browsers treat these as secure contexts over plain http; everywhere else the cookie is Secure.
LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1", "[::1]"})


class PageSessionError(BillingError):
    kind = ErrorKind.UNAUTHORIZED


class SessionMissing(PageSessionError):
    code = "page.session_missing"
    default_message = "Open Billing from the app to see this page."


class SessionExpired(PageSessionError):
    code = "page.session_expired"
    default_message = "Your session has expired; reopen Billing from the app."


class SessionInvalid(PageSessionError):
    code = "page.session_invalid"
    default_message = "This session is not valid; reopen Billing from the app."


class CsrfRefused(BillingError):
    code = "page.csrf_refused"
    kind = ErrorKind.UNAUTHORIZED
    default_message = "This form did not come from your billing page; nothing was changed."


@attrs.frozen
class PageSession:
    account_id: str
    expires_at: int  # Unix seconds
    nonce: str


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class SessionSigner:
    """Issues and reads page sessions; one key per purpose, derived from the auth secret."""

    def __init__(self, auth_secret: str) -> None:
        root = auth_secret.encode("utf-8")
        self._session_key = hmac.new(root, b"responseiq-billing/page/session/v1", "sha256").digest()
        self._csrf_key = hmac.new(root, b"responseiq-billing/page/csrf/v1", "sha256").digest()
        self._flash_key = hmac.new(root, b"responseiq-billing/page/flash/v1", "sha256").digest()

    # -- the session cookie -------------------------------------------------------------------

    def issue(
        self, account_id: str, *, now: datetime, ttl: timedelta = SESSION_TTL
    ) -> tuple[PageSession, str]:
        session = PageSession(
            account_id=account_id,
            expires_at=int((now + ttl).timestamp()),
            nonce=secrets.token_urlsafe(18),
        )
        return session, self.encode(session)

    def encode(self, session: PageSession) -> str:
        payload = json.dumps(
            {"a": session.account_id, "e": session.expires_at, "n": session.nonce},
            separators=(",", ":"),
        ).encode("utf-8")
        body = _b64(payload)
        return f"{body}.{self._mac(self._session_key, body)}"

    def read(self, value: str | None, *, now: datetime) -> PageSession:
        """The session in a cookie value; `SessionMissing`, `SessionInvalid` or `SessionExpired`."""
        if not value:
            raise SessionMissing()
        body, _, mac = value.partition(".")
        if not mac or not hmac.compare_digest(mac, self._mac(self._session_key, body)):
            raise SessionInvalid()
        try:
            claims = json.loads(_unb64(body))
            session = PageSession(str(claims["a"]), int(claims["e"]), str(claims["n"]))
        except (ValueError, KeyError, TypeError):
            raise SessionInvalid() from None
        if ACCOUNT_ID.fullmatch(session.account_id) is None:
            raise SessionInvalid()
        if now.timestamp() >= session.expires_at:
            raise SessionExpired()
        return session

    # -- CSRF -----------------------------------------------------------------------------------

    def csrf_token(self, session: PageSession) -> str:
        return self._mac(self._csrf_key, f"{session.account_id}|{session.nonce}")

    def check_csrf(self, session: PageSession, token: str | None) -> None:
        if not token or not hmac.compare_digest(token, self.csrf_token(session)):
            raise CsrfRefused()

    # -- flash messages -------------------------------------------------------------------------

    def flash(self, session: PageSession, key: str, *, now: datetime) -> str:
        expires = int((now + FLASH_TTL).timestamp())
        body = f"{key}.{expires}"
        return f"{body}.{self._mac(self._flash_key, f'{session.nonce}|{body}')}"

    def read_flash(self, session: PageSession, value: str | None, *, now: datetime) -> str | None:
        """The flashed key, if the cookie is this session's, intact and fresh; else None."""
        if not value:
            return None
        body, _, mac = value.rpartition(".")
        if not hmac.compare_digest(mac, self._mac(self._flash_key, f"{session.nonce}|{body}")):
            return None
        key, _, expires = body.rpartition(".")
        if not expires.isdigit() or now.timestamp() >= int(expires):
            return None
        return key

    @staticmethod
    def _mac(key: bytes, text: str) -> str:
        return _b64(hmac.new(key, text.encode("utf-8"), hashlib.sha256).digest())


def secure_cookie_for(host: str | None) -> bool:
    """`Secure` everywhere but on the developer's own machine, where the sandbox serves http."""
    name = (host or "").strip().lower()
    if name.startswith("["):
        name = name[: name.find("]") + 1]
    else:
        name = name.rsplit(":", 1)[0] if name.count(":") == 1 else name
    return name not in LOCAL_HOSTS
