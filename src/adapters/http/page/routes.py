"""The billing page's routes: `GET /billing`, its session entry, and one form route per action.

Each action is a thin handler like the JSON API's: a form in, a command to a use case, then a
redirect back to the page (post/redirect/get) with a flash saying what happened. Refused
actions raise the domain's errors, which one handler on this router turns into sentences.
Card data is never asked for here: checkout and card updates redirect to the gateway's pages.
"""

from __future__ import annotations

import logging
import secrets
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

import msgspec
from jinja2 import Environment, FileSystemLoader, StrictUndefined
from litestar import Request, Response, Router, get, post
from litestar.di import Provide
from litestar.enums import RequestEncodingType, ScopeType
from litestar.exceptions import ValidationException
from litestar.middleware import ASGIMiddleware
from litestar.params import Body, PathParameter, QueryParameter
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.response import Redirect, Template
from litestar.static_files import create_static_files_router
from litestar.template.config import TemplateConfig
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from responseiq_billing.adapters.config import Settings
from responseiq_billing.adapters.http import errors, schemas
from responseiq_billing.adapters.http.auth import AuthError, TokenMissing, verify_token
from responseiq_billing.adapters.http.deps import Dep
from responseiq_billing.adapters.http.page import messages
from responseiq_billing.adapters.http.page import view as v
from responseiq_billing.adapters.http.page.session import (
    COOKIE_PATH,
    FLASH_COOKIE,
    FLASH_TTL,
    SESSION_COOKIE,
    SESSION_TTL,
    CsrfRefused,
    PageSession,
    PageSessionError,
    SessionExpired,
    SessionInvalid,
    SessionSigner,
    secure_cookie_for,
)
from responseiq_billing.application import commands, use_cases
from responseiq_billing.domain.errors import (
    BillingError,
    PaymentActionRequired,
    SubscriptionNotFound,
)
from responseiq_billing.domain.plans import Catalog

log = logging.getLogger("billing.http")

HERE = Path(__file__).parent
TEMPLATES = HERE / "templates"
STATIC = HERE / "static"

PAGE = "/billing"
ACTIONS = "/billing/page"
INVOICES_SHOWN = 12
# Where the gateway's own pages live in Stripe mode: our forms redirect there (checkout and
# setup on Checkout, Manage Billing on the portal), so `form-action` must allow them. No
# Stripe script runs on our page (hosted pages only), so `script-src` stays 'self'.
STRIPE_PAGES = ("https://checkout.stripe.com", "https://billing.stripe.com")

Form = Body(media_type=RequestEncodingType.URL_ENCODED)
RequestId = Annotated[str, msgspec.Meta(max_length=64, pattern=r"^[A-Za-z0-9_-]*$")]
PlanQuery = Annotated[str, QueryParameter(min_length=1, max_length=64, pattern=schemas.ID_PATTERN)]
IntervalQuery = Annotated[str, QueryParameter(pattern=r"^(month|year)$")]
OptionalId = Annotated[
    str | None,
    QueryParameter(min_length=1, max_length=schemas.ID_MAX_LENGTH, pattern=schemas.ID_PATTERN),
]
PathId = Annotated[
    str, PathParameter(min_length=1, max_length=schemas.ID_MAX_LENGTH, pattern=schemas.ID_PATTERN)
]


class ActionForm(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Every form: the CSRF token (refused when missing) and an idempotency id per render."""

    csrf_token: str = ""
    request_id: RequestId = ""


class PlanForm(ActionForm, forbid_unknown_fields=True, kw_only=True):
    plan: schemas.PlanId
    interval: schemas.IntervalName


class ChangeForm(PlanForm, forbid_unknown_fields=True, kw_only=True):
    quote_id: schemas.OpaqueId


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
    public = settings.public_url

    # -- helpers ----------------------------------------------------------------------------

    def page_session(request: Request[Any, Any, Any]) -> PageSession:
        return signer.read(request.cookies.get(SESSION_COOKIE), now=now())

    def common(session: PageSession | None, title: str) -> dict[str, Any]:
        return {
            "title": title,
            "sandbox": settings.is_sandbox,
            "csrf_field": "csrf_token",
            "csrf_token": signer.csrf_token(session) if session else "",
            # One id per rendering: a double-click repeats the same request, not the action.
            "request_id": secrets.token_urlsafe(16),
            "actions": ACTIONS,
            "public_url": public,
        }

    def set_cookie(
        response: Response[Any], request: Request[Any, Any, Any], key: str, value: str, ttl: int
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
        request: Request[Any, Any, Any], session: PageSession, tone: messages.Tone, name: str
    ) -> Redirect:
        """Post/redirect/get: back to the page, which shows (and focuses) what happened."""
        response = Redirect(PAGE, status_code=303)
        flash = signer.flash(session, messages.flash_key(tone, name), now=now())
        set_cookie(response, request, FLASH_COOKIE, flash, int(FLASH_TTL.total_seconds()))
        return response

    def message_page(
        request: Request[Any, Any, Any], text: str, *, status: int, title: str, back_link: bool
    ) -> Template:
        response = Template(
            template_name="billing/message.html",
            context={**common(None, title), "text": text, "back_link": back_link},
            status_code=status,
        )
        return response

    def request_id(form: ActionForm) -> str:
        return form.request_id or uuid.uuid4().hex

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

    # -- subscribing ----------------------------------------------------------------------------

    @post(f"{ACTIONS}/checkout", sync_to_thread=True, include_in_schema=False)
    def checkout(
        page_session: Dep[PageSession],
        start_checkout: Dep[use_cases.StartCheckout],
        data: Annotated[PlanForm, Form],
    ) -> Redirect:
        signer.check_csrf(page_session, data.csrf_token)
        back_to = f"{public}{ACTIONS}/checkout/return"
        started = start_checkout(
            commands.StartCheckout(
                account_id=page_session.account_id,
                plan=data.plan,
                interval=data.interval,
                success_url=f"{back_to}?checkout_id={{CHECKOUT_SESSION_ID}}",
                cancel_url=f"{back_to}?canceled=1",
                request_id=request_id(data),
            )
        )
        assert started.url is not None  # hosted checkout: the gateway's page
        return Redirect(started.url, status_code=303)

    @get(f"{ACTIONS}/checkout/return", sync_to_thread=True, include_in_schema=False)
    def checkout_return(
        request: Request[Any, Any, Any],
        page_session: Dep[PageSession],
        complete_checkout: Dep[use_cases.CompleteCheckout],
        checkout_id: OptionalId = None,
        canceled: Annotated[str | None, QueryParameter(max_length=1)] = None,
    ) -> Redirect:
        """Where the gateway's checkout sends the customer back; records the result at once."""
        if canceled or checkout_id is None:
            return back(request, page_session, "done", "checkout_canceled")
        sub = complete_checkout(
            commands.CompleteCheckout(account_id=page_session.account_id, checkout_id=checkout_id)
        )
        return back(request, page_session, "done", "subscribed" if sub else "checkout_open")

    # -- plan changes ---------------------------------------------------------------------------

    @get(f"{ACTIONS}/change", sync_to_thread=True, include_in_schema=False)
    def confirm_change(
        page_session: Dep[PageSession],
        preview_plan_change: Dep[use_cases.PreviewPlanChange],
        catalog: Dep[Catalog],
        plan: PlanQuery,
        interval: IntervalQuery,
    ) -> Template:
        """Step one of Upgrade or Downgrade: the quote (charged now, or when it applies)."""
        quote = preview_plan_change(
            commands.PreviewPlanChange(
                account_id=page_session.account_id, plan=plan, interval=interval
            )
        )
        shown = v.confirm_view(quote, catalog)
        return Template(
            template_name="billing/confirm.html",
            context={**common(page_session, f"{shown.verb} to {shown.target}"), "change": shown},
        )

    @post(f"{ACTIONS}/change", sync_to_thread=True, include_in_schema=False)
    def change(
        request: Request[Any, Any, Any],
        page_session: Dep[PageSession],
        change_plan: Dep[use_cases.ChangePlan],
        data: Annotated[ChangeForm, Form],
    ) -> Redirect:
        signer.check_csrf(page_session, data.csrf_token)
        try:
            sub = change_plan(
                commands.ChangePlan(
                    account_id=page_session.account_id,
                    plan=data.plan,
                    interval=data.interval,
                    quote_id=data.quote_id,
                    request_id=request_id(data),
                )
            )
        except PaymentActionRequired as action:
            if action.hosted_invoice_url is None:
                raise
            # The bank wants the customer to confirm (3-D Secure): that happens on the
            # gateway's invoice page, never ours; the upgrade applies once it is paid.
            return Redirect(action.hosted_invoice_url, status_code=303)
        if (sub.plan_id, sub.interval.value) == (data.plan, data.interval):
            return back(request, page_session, "done", "upgraded")
        return back(request, page_session, "done", "downgrade_scheduled")

    @post(f"{ACTIONS}/withdraw-change", sync_to_thread=True, include_in_schema=False)
    def withdraw_change(
        request: Request[Any, Any, Any],
        page_session: Dep[PageSession],
        cancel_pending_change: Dep[use_cases.CancelPendingChange],
        data: Annotated[ActionForm, Form],
    ) -> Redirect:
        signer.check_csrf(page_session, data.csrf_token)
        cancel_pending_change(
            commands.CancelPendingChange(
                account_id=page_session.account_id, request_id=request_id(data)
            )
        )
        return back(request, page_session, "done", "change_withdrawn")

    # -- cancel and resume ------------------------------------------------------------------

    @post(f"{ACTIONS}/cancel", sync_to_thread=True, include_in_schema=False)
    def cancel(
        request: Request[Any, Any, Any],
        page_session: Dep[PageSession],
        cancel_subscription: Dep[use_cases.CancelSubscription],
        data: Annotated[ActionForm, Form],
    ) -> Redirect:
        signer.check_csrf(page_session, data.csrf_token)
        cancel_subscription(
            commands.CancelSubscription(
                account_id=page_session.account_id, request_id=request_id(data)
            )
        )
        return back(request, page_session, "done", "canceled")

    @post(f"{ACTIONS}/resume", sync_to_thread=True, include_in_schema=False)
    def resume(
        request: Request[Any, Any, Any],
        page_session: Dep[PageSession],
        resume_subscription: Dep[use_cases.ResumeSubscription],
        data: Annotated[ActionForm, Form],
    ) -> Redirect:
        signer.check_csrf(page_session, data.csrf_token)
        resume_subscription(
            commands.ResumeSubscription(
                account_id=page_session.account_id, request_id=request_id(data)
            )
        )
        return back(request, page_session, "done", "resumed")

    # -- the gateway's pages ------------------------------------------------------------------

    @post(f"{ACTIONS}/portal", sync_to_thread=True, include_in_schema=False)
    def portal(
        page_session: Dep[PageSession],
        open_portal: Dep[use_cases.OpenPortal],
        data: Annotated[ActionForm, Form],
    ) -> Redirect:
        """Manage Billing: the form opens a new tab, which this sends on to the portal."""
        signer.check_csrf(page_session, data.csrf_token)
        session = open_portal(
            commands.OpenPortal(
                account_id=page_session.account_id,
                return_url=f"{public}{PAGE}",
                request_id=request_id(data),
            )
        )
        return Redirect(session.url, status_code=303)

    @post(f"{ACTIONS}/payment-method", sync_to_thread=True, include_in_schema=False)
    def payment_method(
        page_session: Dep[PageSession],
        start_payment_method_update: Dep[use_cases.StartPaymentMethodUpdate],
        data: Annotated[ActionForm, Form],
    ) -> Redirect:
        signer.check_csrf(page_session, data.csrf_token)
        back_to = f"{public}{ACTIONS}/payment-method/return"
        session = start_payment_method_update(
            commands.StartPaymentMethodUpdate(
                account_id=page_session.account_id,
                success_url=f"{back_to}?setup_id={{CHECKOUT_SESSION_ID}}",
                cancel_url=f"{back_to}?canceled=1",
                request_id=request_id(data),
            )
        )
        assert session.url is not None  # hosted setup: the gateway's page
        return Redirect(session.url, status_code=303)

    @get(f"{ACTIONS}/payment-method/return", sync_to_thread=True, include_in_schema=False)
    def payment_method_return(
        request: Request[Any, Any, Any],
        page_session: Dep[PageSession],
        complete_payment_method_update: Dep[use_cases.CompletePaymentMethodUpdate],
        setup_id: OptionalId = None,
        canceled: Annotated[str | None, QueryParameter(max_length=1)] = None,
    ) -> Redirect:
        if canceled or setup_id is None:
            return back(request, page_session, "done", "card_unchanged")
        sub = complete_payment_method_update(
            commands.CompletePaymentMethodUpdate(
                account_id=page_session.account_id, setup_id=setup_id
            )
        )
        done = sub is not None and sub.payment_method is not None
        return back(request, page_session, "done", "card_updated" if done else "card_pending")

    @get(f"{ACTIONS}/invoices/{{invoice_id:str}}/pdf", sync_to_thread=True, include_in_schema=False)
    def invoice_pdf(
        page_session: Dep[PageSession],
        get_invoice_pdf: Dep[use_cases.GetInvoicePdf],
        invoice_id: PathId,
    ) -> Redirect:
        invoice = get_invoice_pdf(
            commands.GetInvoicePdf(account_id=page_session.account_id, invoice_id=invoice_id)
        )
        assert invoice.pdf_url is not None  # the use case raises when there is none
        return Redirect(invoice.pdf_url, status_code=302)

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
            checkout,
            checkout_return,
            confirm_change,
            change,
            withdraw_change,
            cancel,
            resume,
            portal,
            payment_method,
            payment_method_return,
            invoice_pdf,
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
