"""The billing page's routes: `GET /billing`, its session entry, and one form route per action.

The page and its session entry are here, with the router that gathers them; the form routes
are in `page.actions`, and what every route answers with (the shared template context, the
cookies, the redirect back with a flash) is in `page.responder`. Refused actions raise the
domain's errors, which one handler on this router turns into sentences.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from litestar import Request, Response, Router, get
from litestar.di import Provide
from litestar.enums import ScopeType
from litestar.exceptions import ValidationException
from litestar.middleware import ASGIMiddleware
from litestar.params import QueryParameter
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.response import Redirect, Template
from litestar.static_files import create_static_files_router
from litestar.template.config import TemplateConfig
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from responseiq_billing.adapters.config import Settings
from responseiq_billing.adapters.http import errors
from responseiq_billing.adapters.http.auth import AuthError, TokenMissing, verify_token
from responseiq_billing.adapters.http.deps import Dep
from responseiq_billing.adapters.http.page import messages
from responseiq_billing.adapters.http.page import view as v
from responseiq_billing.adapters.http.page.actions import action_routes
from responseiq_billing.adapters.http.page.responder import ACTIONS, PAGE, Responder
from responseiq_billing.adapters.http.page.session import (
    COOKIE_PATH,
    FLASH_COOKIE,
    SESSION_COOKIE,
    SESSION_TTL,
    CsrfRefused,
    PageSession,
    PageSessionError,
    SessionExpired,
    SessionInvalid,
    SessionSigner,
)
from responseiq_billing.application import commands, use_cases
from responseiq_billing.domain.errors import BillingError, SubscriptionNotFound
from responseiq_billing.domain.plans import Catalog

log = logging.getLogger("billing.http")

HERE = Path(__file__).parent
TEMPLATES = HERE / "templates"
STATIC = HERE / "static"

INVOICES_SHOWN = 12
# Where the gateway's own pages live in Stripe mode: our forms redirect there (checkout and
# setup on Checkout, Manage Billing on the portal), so `form-action` must allow them. No
# Stripe script runs on our page (hosted pages only), so `script-src` stays 'self'.
STRIPE_PAGES = ("https://checkout.stripe.com", "https://billing.stripe.com")


def template_config() -> TemplateConfig[JinjaTemplateEngine]:
    """Jinja over the page's template folder; autoescaped, and a missing variable is an error."""
    environment = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    return TemplateConfig(instance=JinjaTemplateEngine.from_environment(environment))


def content_security_policy(settings: Settings) -> str:
    """Self only, but for the gateway pages our forms redirect to and the configured framers."""
    form_action = ["'self'"]
    if settings.is_sandbox:
        # The sandbox's stand-in pages are this service, reached at its public URL.
        parts = urlsplit(settings.public_url)
        form_action.append(f"{parts.scheme}://{parts.netloc}")
    else:
        form_action.extend(STRIPE_PAGES)
    return "; ".join(
        [
            "default-src 'none'",
            "script-src 'self'",
            "style-src 'self'",
            "img-src 'self'",
            "connect-src 'self'",
            f"form-action {' '.join(form_action)}",
            f"frame-ancestors {' '.join(settings.frame_ancestors)}",
            "base-uri 'none'",
        ]
    )


class PageHeaders(ASGIMiddleware):
    """The page's security headers on every response of its routes, error pages included."""

    scopes = (ScopeType.HTTP,)

    def __init__(self, csp: str) -> None:
        self.headers = [
            (b"content-security-policy", csp.encode("ascii")),
            (b"x-content-type-options", b"nosniff"),
            # The session entry URL carries a token: never send any of our URLs onwards.
            (b"referrer-policy", b"no-referrer"),
            (b"cache-control", b"no-store"),
        ]

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", [])}
                extra = [(k, val) for k, val in self.headers if k not in present]
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        await next_app(scope, receive, send_with_headers)


def _wall_clock() -> datetime:
    return datetime.now(UTC)


def billing_page_router(settings: Settings, *, now: Callable[[], datetime] = _wall_clock) -> Router:
    """The page and its actions for one app. Sessions expire by the wall clock (`now`), never
    by the sandbox's, which tests move by weeks."""
    signer = SessionSigner(settings.auth_secret)
    kit = Responder(settings=settings, signer=signer, now=now)
    common, set_cookie, back, message_page = kit.common, kit.set_cookie, kit.back, kit.message_page

    # -- the session, a dependency of every route ---------------------------------------------

    def page_session(request: Request[Any, Any, Any]) -> PageSession:
        return signer.read(request.cookies.get(SESSION_COOKIE), now=now())

    # -- the page -----------------------------------------------------------------------------

    @get(PAGE, sync_to_thread=True, include_in_schema=False)
    def billing_page(
        request: Request[Any, Any, Any],
        page_session: Dep[PageSession],
        get_subscription: Dep[use_cases.GetSubscription],
        list_invoices: Dep[use_cases.ListInvoices],
        catalog: Dep[Catalog],
    ) -> Template:
        account = page_session.account_id
        flash = signer.read_flash(page_session, request.cookies.get(FLASH_COOKIE), now=now())
        try:
            current: use_cases.SubscriptionView | None = get_subscription(account)
        except SubscriptionNotFound:
            current = None  # not an error here: the page offers the plans instead
        invoices = list_invoices(
            commands.ListInvoices(account_id=account, limit=INVOICES_SHOWN)
        ).items
        panel = v.subscription_panel(current, catalog) if current else None
        rows = v.invoice_rows(invoices)
        response = Template(
            template_name="billing/page.html",
            context={
                **common(page_session, "Billing"),
                "message": messages.from_flash(flash),
                "panel": panel,
                "choices": (
                    v.choices(current.subscription, catalog)
                    if current and panel and panel.changeable
                    else []
                ),
                "offers": v.offers(catalog)
                if panel is None or not panel.live or panel.needs_first_payment
                else [],
                "invoices": rows,
                "open_invoice": next((row for row in rows if row.pay_url), None),
            },
        )
        response.delete_cookie(FLASH_COOKIE, path=COOKIE_PATH)
        return response

    @get(f"{PAGE}/session", sync_to_thread=False, include_in_schema=False)
    def enter(
        request: Request[Any, Any, Any],
        token: Annotated[str | None, QueryParameter(max_length=4096)] = None,
    ) -> Redirect:
        """The host application's link: the token becomes a session cookie and leaves the URL."""
        if not token:
            raise TokenMissing()
        account = verify_token(
            settings.auth_secret,
            token,
            audience=settings.auth_audience,
            issuer=settings.auth_issuer,
        )
        _, value = signer.issue(account, now=now())
        response = Redirect(PAGE, status_code=303)
        set_cookie(response, request, SESSION_COOKIE, value, int(SESSION_TTL.total_seconds()))
        response.delete_cookie(FLASH_COOKIE, path=COOKIE_PATH)
        return response

    # -- the form actions (page/actions.py) -------------------------------------------------

    actions = action_routes(kit)

    # -- errors as sentences ------------------------------------------------------------------

    def on_billing_error(request: Request[Any, Any, Any], error: BillingError) -> Response[Any]:
        if isinstance(error, PageSessionError | AuthError):
            page = message_page(
                request,
                messages.problem(error.code),
                status=401,
                title="Reopen Billing",
                back_link=False,
            )
            if isinstance(error, SessionExpired | SessionInvalid):
                page.delete_cookie(SESSION_COOKIE, path=COOKIE_PATH)
            return page
        if isinstance(error, CsrfRefused):
            return message_page(
                request,
                messages.problem(error.code),
                status=403,
                title="Nothing was changed",
                back_link=True,
            )
        return refused(request, error.code, errors.STATUS_BY_KIND.get(error.kind, 409))

    def refused(request: Request[Any, Any, Any], code: str, status: int) -> Response[Any]:
        """A refused action goes back to the page with its sentence; the page itself cannot."""
        try:
            session = page_session(request)
        except PageSessionError as error:
            return on_billing_error(request, error)
        if request.url.path == PAGE:
            return message_page(
                request, messages.problem(code), status=status, title="Billing", back_link=False
            )
        return back(request, session, "problem", code)

    def on_invalid(request: Request[Any, Any, Any], _: ValidationException) -> Response[Any]:
        return refused(request, "request.invalid", 422)

    def on_unexpected(request: Request[Any, Any, Any], error: Exception) -> Response[Any]:
        errors.unexpected_error(request, error)  # logs the route and the error's type only
        return message_page(
            request,
            messages.problem("internal"),
            status=500,
            title="Nothing was changed",
            back_link=True,
        )

    assets = create_static_files_router(
        path=f"{ACTIONS}/assets", directories=[STATIC], include_in_schema=False
    )
    return Router(
        path="/",
        route_handlers=[
            billing_page,
            enter,
            *actions,
            assets,
        ],
        dependencies={"page_session": Provide(page_session, sync_to_thread=False)},
        exception_handlers={
            BillingError: on_billing_error,
            ValidationException: on_invalid,
            Exception: on_unexpected,
        },
        middleware=[PageHeaders(content_security_policy(settings))],
    )
