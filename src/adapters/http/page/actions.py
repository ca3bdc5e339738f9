"""The billing page's actions: one form route per action, and the gateway's pages they lead to.

Each action is a thin handler like the JSON API's: a form in, a command to a use case, then a
redirect back to the page (post/redirect/get) with a flash saying what happened. Card data is
never asked for here: checkout and card updates redirect to the gateway's pages.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

import msgspec
from litestar import Request, get, post
from litestar.enums import RequestEncodingType
from litestar.handlers import HTTPRouteHandler
from litestar.params import Body, PathParameter, QueryParameter
from litestar.response import Redirect, Template

from responseiq_billing.adapters.http import schemas
from responseiq_billing.adapters.http.deps import Dep
from responseiq_billing.adapters.http.page import view as v
from responseiq_billing.adapters.http.page.responder import ACTIONS, PAGE, Responder
from responseiq_billing.adapters.http.page.session import PageSession
from responseiq_billing.application import commands, use_cases
from responseiq_billing.domain.errors import PaymentActionRequired
from responseiq_billing.domain.plans import Catalog

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


def request_id(form: ActionForm) -> str:
    return form.request_id or uuid.uuid4().hex


def action_routes(kit: Responder) -> list[HTTPRouteHandler]:
    """The form routes of one page router, in the order it lists them."""
    signer, public, back, common = kit.signer, kit.settings.public_url, kit.back, kit.common

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

    return [
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
    ]
