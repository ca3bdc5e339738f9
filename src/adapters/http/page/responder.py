"""How the billing page's routes answer: the context every template shares, the page's cookies,
and the redirect back to the page with a flash (post/redirect/get)."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import datetime
from typing import Any

import attrs
from litestar import Request, Response
from litestar.response import Redirect, Template

from responseiq_billing.adapters.config import Settings
from responseiq_billing.adapters.http.page import messages
from responseiq_billing.adapters.http.page.session import (
    COOKIE_PATH,
    FLASH_COOKIE,
    FLASH_TTL,
    PageSession,
    SessionSigner,
    secure_cookie_for,
)

PAGE = "/billing"
ACTIONS = "/billing/page"


@attrs.frozen
class Responder:
    """What every route of one page router answers with: its settings, its session signer and
    the clock its sessions expire by."""

    settings: Settings
    signer: SessionSigner
    now: Callable[[], datetime]

    def common(self, session: PageSession | None, title: str) -> dict[str, Any]:
        return {
            "title": title,
            "sandbox": self.settings.is_sandbox,
            "csrf_field": "csrf_token",
            "csrf_token": self.signer.csrf_token(session) if session else "",
            # One id per rendering: a double-click repeats the same request, not the action.
            "request_id": secrets.token_urlsafe(16),
            "actions": ACTIONS,
            "public_url": self.settings.public_url,
        }

    def set_cookie(
        self,
        response: Response[Any],
        request: Request[Any, Any, Any],
        key: str,
        value: str,
        ttl: int,
    ) -> None:
        response.set_cookie(
            key,
            value,
            max_age=ttl,
            path=COOKIE_PATH,
            secure=secure_cookie_for(request.url.hostname),
            httponly=True,
            samesite="lax",
        )

    def back(
        self,
        request: Request[Any, Any, Any],
        session: PageSession,
        tone: messages.Tone,
        name: str,
    ) -> Redirect:
        """Post/redirect/get: back to the page, which shows (and focuses) what happened."""
        response = Redirect(PAGE, status_code=303)
        flash = self.signer.flash(session, messages.flash_key(tone, name), now=self.now())
        self.set_cookie(response, request, FLASH_COOKIE, flash, int(FLASH_TTL.total_seconds()))
        return response

    def message_page(
        self,
        request: Request[Any, Any, Any],
        text: str,
        *,
        status: int,
        title: str,
        back_link: bool,
    ) -> Template:
        response = Template(
            template_name="billing/message.html",
            context={**self.common(None, title), "text": text, "back_link": back_link},
            status_code=status,
        )
        return response
