"""Sandbox pages: the "hosted" checkout, setup and portal pages Stripe would serve, without money.

Server-rendered HTML from the Jinja templates in templates/sandbox/, labelled as a sandbox and
autoescaped. There are no card fields: test cards are buttons, as the fake gateway never sees a
card number. Mounted only with the sandbox gateway.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

import msgspec
from jinja2 import BaseLoader, FileSystemLoader
from litestar import MediaType, Request, Response, Router, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body, FromPath
from litestar.response import Redirect, Template

from responseiq_billing.adapters.fake.gateway import AUTHENTICATION_CARD, TEST_CARDS, FakeGateway
from responseiq_billing.adapters.http import examples, schemas
from responseiq_billing.adapters.http.deps import Dep
from responseiq_billing.application import commands, use_cases
from responseiq_billing.application.ports import CheckoutStatus
from responseiq_billing.domain.errors import BillingError, PaymentActionRequired
from responseiq_billing.domain.plans import Catalog, Interval, PlanPrice
from responseiq_billing.domain.rules import ChangeTiming, classify_change

BANNER = "Sandbox — no real payment"
Card = Literal["visa", "mastercard", "amex", "authenticate"]


class OutcomeForm(msgspec.Struct, forbid_unknown_fields=True, frozen=True, kw_only=True):
    outcome: Literal["succeeded", "declined"]
    card: Card = "visa"


class PlanForm(msgspec.Struct, forbid_unknown_fields=True, frozen=True, kw_only=True):
    plan: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
    interval: schemas.IntervalName


class CardForm(msgspec.Struct, forbid_unknown_fields=True, frozen=True, kw_only=True):
    card: Card = "visa"


Form = Body(media_type=RequestEncodingType.URL_ENCODED)


# -- rendering ----------------------------------------------------------------------------------

# The sandbox pages' Jinja templates (templates/sandbox/*.html). The composition root adds this
# folder to the app's one template config, beside the billing page's (`sandbox_templates`).
TEMPLATES = Path(__file__).parent / "templates"
GATEWAY_PAGE = "the payment gateway's own page"
STANDS_IN_3DS = "Stripe's hosted invoice page, where the bank's 3-D Secure check runs"
# The test cards as the pages offer them: the form's value, the card, and whether the bank
# asks the customer to confirm a charge to it.
CARDS = [(name, card, card == AUTHENTICATION_CARD) for name, card in TEST_CARDS.items()]


def sandbox_templates() -> BaseLoader:
    """The loader of the sandbox pages' templates, named `sandbox/<page>.html`."""
    return FileSystemLoader(TEMPLATES)


def _page(
    template: str,
    title: str,
    *,
    status_code: int = 200,
    stands_in_for: str = GATEWAY_PAGE,
    **context: Any,
) -> Template:
    """`templates/sandbox/<template>`, under the sandbox banner; autoescaped, like every page."""
    return Template(
        template_name=f"sandbox/{template}",
        context={"banner": BANNER, "title": title, "stands_in_for": stands_in_for, **context},
        status_code=status_code,
        media_type=MediaType.HTML,
    )


def _declined(request: Request[Any, Any, Any]) -> bool:
    """Whether the page follows a declined test card (`?declined=1`)."""
    return bool(request.query_params.get("declined"))


def _path(url: str) -> str:
    """A sandbox URL (absolute, on BILLING_PUBLIC_URL) as a path on this server."""
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def _change_label(current: PlanPrice, target: PlanPrice) -> str:
    """Says which way a change goes and when it applies, as the help article does."""
    what = f"{target.plan_id} per {target.interval.value} ({target.amount})"
    if classify_change(current, target) is ChangeTiming.END_OF_PERIOD:
        return f"Downgrade to {what} at the period end"
    # "Upgrade" only when it costs more per month: a smaller plan's yearly term applies now too
    # (a longer interval), but calling it an upgrade would mislead.
    if target.amount.amount * current.interval.months > (
        current.amount.amount * target.interval.months
    ):
        return f"Upgrade to {what} now"
    return f"Switch to {what} now"


def sandbox_error(_: Request[Any, Any, Any], error: BillingError) -> Template:
    """Sandbox pages show a refused action as a page, not as API JSON."""
    status = 404 if error.kind.value == "not_found" else 409
    return _page(
        "error.html",
        "That did not work",
        status_code=status,
        message=error.message,
        code=error.code,
    )


# -- routes -------------------------------------------------------------------------------------


def sandbox_router(fake: FakeGateway) -> Router:
    """The `/sandbox` routes for one fake gateway, and the page its return URLs land on."""

    @get(
        "/checkout/{checkout_id:str}",
        sync_to_thread=True,
        tags=["sandbox"],
        media_type=MediaType.HTML,
        summary="The sandbox checkout page: pay with a test card, or a declined one",
    )
    def checkout_page(checkout_id: FromPath[str], request: Request[Any, Any, Any]) -> Template:
        outcome = fake.get_checkout(checkout_id)
        return _page(
            "checkout.html",
            "Checkout",
            price=fake.checkout_price(checkout_id),
            checkout_status=outcome.status.value,  # one no longer open says why it is not
            declined=_declined(request),
            cards=CARDS,
            action=f"/sandbox/checkout/{checkout_id}/complete",
            back=fake.checkout_return_url(checkout_id),
        )

    @post(
        "/checkout/{checkout_id:str}/complete",
        sync_to_thread=True,
        tags=["sandbox"],
        status_code=303,
        summary="Pay a sandbox checkout (the form on its page), then back to the return URL",
    )
    def checkout_complete(
        checkout_id: FromPath[str],
        complete_checkout: Dep[use_cases.CompleteCheckout],
        data: Annotated[OutcomeForm, Form],
    ) -> Redirect:
        if data.outcome == "succeeded" and data.card == "authenticate":
            # Stripe Checkout runs the bank's check on its own page before it charges.
            return Redirect(f"/sandbox/checkout/{checkout_id}/authenticate", status_code=303)
        return finish_checkout(checkout_id, data, complete_checkout)

    def finish_checkout(
        checkout_id: str, data: OutcomeForm, complete_checkout: use_cases.CompleteCheckout
    ) -> Redirect:
        outcome = fake.complete_checkout(checkout_id, outcome=data.outcome, card=data.card)
        if outcome.status is not CheckoutStatus.COMPLETE:
            return Redirect(f"/sandbox/checkout/{checkout_id}?declined=1", status_code=303)
        account = fake.checkout_account(checkout_id)
        if account is not None:
            # The return from checkout records the subscription at once, as the Stripe
            # adapter's return does; the fake's events (the webhook) arrive too, idempotently.
            complete_checkout(
                commands.CompleteCheckout(account_id=account, checkout_id=checkout_id)
            )
        return Redirect(fake.checkout_return_url(checkout_id), status_code=303)

    @get(
        "/checkout/{checkout_id:str}/authenticate",
        sync_to_thread=True,
        tags=["sandbox"],
        media_type=MediaType.HTML,
        summary="The bank's 3-D Secure check inside the sandbox checkout",
    )
    def checkout_authenticate_page(checkout_id: FromPath[str]) -> Template:
        fake.get_checkout(checkout_id)  # an unknown checkout is a 404 page
        return _page(
            "checkout_authenticate.html",
            "Confirm the payment",
            stands_in_for="the bank's 3-D Secure window in Stripe Checkout",
            card=AUTHENTICATION_CARD,
            action=f"/sandbox/checkout/{checkout_id}/authenticate",
        )

    @post(
        "/checkout/{checkout_id:str}/authenticate",
        sync_to_thread=True,
        tags=["sandbox"],
        status_code=303,
        summary="Answer the bank's check in the sandbox checkout, then pay or stay",
    )
    def checkout_authenticate(
        checkout_id: FromPath[str],
        complete_checkout: Dep[use_cases.CompleteCheckout],
        data: Annotated[OutcomeForm, Form],
    ) -> Redirect:
        return finish_checkout(checkout_id, data, complete_checkout)

    @get(
        "/setup/{setup_id:str}",
        sync_to_thread=True,
        tags=["sandbox"],
        media_type=MediaType.HTML,
        summary="The sandbox page for saving a new payment method",
    )
    def setup_page(setup_id: FromPath[str], request: Request[Any, Any, Any]) -> Template:
        action = f"/sandbox/setup/{setup_id}/complete"
        back = fake.setup_return_url(setup_id)
        return _page(
            "setup.html",
            "Add a payment method",
            declined=_declined(request),
            cards=CARDS,
            action=action,
            back=back,
        )

    @post(
        "/setup/{setup_id:str}/complete",
        sync_to_thread=True,
        tags=["sandbox"],
        status_code=303,
        summary="Save a sandbox test card (the form on the setup page)",
    )
    def setup_complete(setup_id: FromPath[str], data: Annotated[OutcomeForm, Form]) -> Redirect:
        # The fake emits the setup's completion; applying it makes the card the default.
        fake.complete_setup(setup_id, outcome=data.outcome, card=data.card)
        if data.outcome == "declined":
            return Redirect(f"/sandbox/setup/{setup_id}?declined=1", status_code=303)
        return Redirect(fake.setup_return_url(setup_id), status_code=303)

    @get(
        "/portal/{portal_id:str}",
        sync_to_thread=True,
        tags=["sandbox"],
        media_type=MediaType.HTML,
        summary="The sandbox customer portal (Manage Billing)",
    )
    def portal_page(portal_id: FromPath[str], catalog: Dep[Catalog]) -> Template:
        customer = fake.portal_session_customer(portal_id)
        sub = fake.customer_subscription(customer)
        choices: list[tuple[str, str, str]] = []  # plan, interval, label
        if sub is not None and sub.status.is_live:
            current = catalog.price(sub.plan_id, sub.interval)
            pending = sub.pending_change
            scheduled = (pending.plan_id, pending.interval) if pending else None
            for price in catalog.all_prices():
                # The current price is no change; the scheduled one is already chosen.
                if (price.plan_id, price.interval) in ((sub.plan_id, sub.interval), scheduled):
                    continue
                label = _change_label(current, price)
                choices.append((price.plan_id, price.interval.value, label))
        return _page(
            "portal.html",
            "Manage billing",
            back=fake.portal_return_url(portal_id),
            base=f"/sandbox/portal/{portal_id}",
            sub=sub,
            choices=choices,
            method=fake.customer_payment_method(customer),
            cards=CARDS,
            invoices=[
                (invoice, fake.invoice_refund(invoice.id))
                for invoice in fake.customer_invoices(customer)
            ],
        )

    def back(portal_id: str) -> Redirect:
        return Redirect(f"/sandbox/portal/{portal_id}", status_code=303)

    @post(
        "/portal/{portal_id:str}/change-plan",
        sync_to_thread=True,
        tags=["sandbox"],
        status_code=303,
        summary="Change plan in the sandbox portal",
    )
    def portal_change_plan(portal_id: FromPath[str], data: Annotated[PlanForm, Form]) -> Redirect:
        customer = fake.portal_session_customer(portal_id)
        try:
            fake.portal_change_plan(customer, data.plan, Interval.parse(data.interval))
        except PaymentActionRequired as error:
            # Stripe's portal sends the customer to the bank's check; nothing changed yet.
            if error.hosted_invoice_url is None:
                raise
            return Redirect(_path(error.hosted_invoice_url), status_code=303)
        return back(portal_id)

    @post(
        "/portal/{portal_id:str}/cancel",
        sync_to_thread=True,
        tags=["sandbox"],
        status_code=303,
        summary="Cancel at period end in the sandbox portal",
    )
    def portal_cancel(portal_id: FromPath[str]) -> Redirect:
        fake.portal_cancel(fake.portal_session_customer(portal_id))
        return back(portal_id)

    @post(
        "/portal/{portal_id:str}/resume",
        sync_to_thread=True,
        tags=["sandbox"],
        status_code=303,
        summary="Undo a cancellation in the sandbox portal",
    )
    def portal_resume(portal_id: FromPath[str]) -> Redirect:
        fake.portal_resume(fake.portal_session_customer(portal_id))
        return back(portal_id)

    @post(
        "/portal/{portal_id:str}/payment-method",
        sync_to_thread=True,
        tags=["sandbox"],
        status_code=303,
        summary="Replace the card in the sandbox portal",
    )
    def portal_payment_method(
        portal_id: FromPath[str], data: Annotated[CardForm, Form]
    ) -> Redirect:
        fake.portal_update_payment_method(fake.portal_session_customer(portal_id), data.card)
        return back(portal_id)

    @get(
        "/invoices/{name:str}",
        sync_to_thread=True,
        tags=["sandbox"],
        media_type=MediaType.HTML,
        summary="A sandbox invoice: `{id}.pdf` is the PDF, `{id}` the hosted invoice page",
    )
    def invoice_document(name: FromPath[str]) -> Response[Any]:
        """`{id}.pdf` is the PDF (Stripe's `invoice_pdf`); `{id}` the hosted invoice page."""
        if name.endswith(".pdf"):
            invoice_id = name.removesuffix(".pdf")
            pdf = fake.render_invoice_pdf(invoice_id)
            return Response(
                pdf,
                media_type="application/pdf",
                headers={"Content-Disposition": f'inline; filename="{invoice_id}.pdf"'},
            )
        invoice = fake.get_invoice(name)
        return _page(
            "invoice.html",
            f"Invoice {invoice.number or invoice.id}",
            invoice=invoice,
            refund=fake.invoice_refund(name),
        )

    @get(
        "/",
        sync_to_thread=True,
        tags=["sandbox"],
        media_type=MediaType.HTML,
        summary="Where the sandbox's default return URLs land",
    )
    def return_page(request: Request[Any, Any, Any], catalog: Dep[Catalog]) -> Template:
        """Where the sandbox's pages send a person back to: `BILLING_PUBLIC_URL` by default.

        In production that is the dashboard's billing page; here it says what just happened,
        instead of a 404 at the end of every checkout, setup and portal visit.
        """
        query = request.query_params
        checkout_id, setup_id = query.get("checkout_id"), query.get("setup_id")
        if query.get("checkout") == "success" and checkout_id:
            outcome = fake.get_checkout(checkout_id)
            if outcome.status is CheckoutStatus.COMPLETE and outcome.subscription is not None:
                # The subscription as it is now, not as it was bought: this page may be
                # reloaded long after later changes.
                now = fake.get_subscription(outcome.subscription.subscription_ref)
                price = catalog.price(now.plan_id, now.interval)
                title = "Payment received"
                text = (
                    f"Your {now.plan_id} plan is {now.status.value}, billed {price.amount} "
                    f"per {now.interval.value}"
                    + (" until the period ends." if now.cancel_at_period_end else ".")
                )
            else:
                title, text = "Not paid", "This checkout is not paid; nothing was charged."
        elif query.get("authenticated"):
            title, text = (
                "Payment confirmed",
                "Your bank confirmed the payment; the new plan is in effect.",
            )
        elif query.get("checkout") == "canceled":
            title, text = "Checkout canceled", "Nothing was charged and no plan was started."
        elif query.get("setup") == "success" and setup_id:
            title, text = "Payment method saved", "The next charge uses the card you chose."
        elif query.get("setup") == "canceled":
            title, text = "Payment method unchanged", "Nothing was saved."
        else:
            title, text = "Back at ResponseIQ", "Changes made in Manage billing are in effect."
        return _page(
            "return.html",
            title,
            stands_in_for="ResponseIQ's billing page (BILLING_PUBLIC_URL)",
            text=text,
        )

    @get(
        "/authenticate/{action_id:str}",
        sync_to_thread=True,
        tags=["sandbox"],
        summary="The sandbox's 3-D Secure page: confirm an upgrade's payment with the bank",
        media_type=MediaType.HTML,
    )
    def authenticate_page(action_id: FromPath[str]) -> Template:
        if not fake.payment_action_open(action_id):
            return _page(
                "authenticate.html", "Nothing to confirm", stands_in_for=STANDS_IN_3DS, action=None
            )
        return _page(
            "authenticate.html",
            "Confirm the payment",
            stands_in_for=STANDS_IN_3DS,
            action=f"/sandbox/authenticate/{action_id}",
        )

    @post(
        "/authenticate/{action_id:str}",
        sync_to_thread=True,
        tags=["sandbox"],
        summary="Confirm an upgrade's payment (the form on the 3-D Secure page)",
    )
    def authenticate_confirm(action_id: FromPath[str]) -> Redirect:
        fake.confirm_payment_action(action_id)
        return Redirect("/?authenticated=1", status_code=303)

    @post(
        "/clock/advance",
        status_code=200,
        sync_to_thread=True,
        tags=["sandbox"],
        summary="Move the sandbox clock forward (renewals, scheduled changes, cancellations happen)",
        responses=examples.responses(200, schemas.ClockOut, {"now": "2026-04-01T09:00:00Z"}),
    )
    def advance_clock(
        data: Annotated[
            schemas.ClockAdvanceRequest, Body(examples=[examples.example({"days": 31})])
        ],
    ) -> schemas.ClockOut:
        return schemas.ClockOut(now=fake.advance(timedelta(days=data.days)))

    sandbox = Router(
        path="/sandbox",
        route_handlers=[
            checkout_page,
            checkout_complete,
            checkout_authenticate_page,
            checkout_authenticate,
            setup_page,
            setup_complete,
            portal_page,
            portal_change_plan,
            portal_cancel,
            portal_resume,
            portal_payment_method,
            authenticate_page,
            authenticate_confirm,
            invoice_document,
            advance_clock,
        ],
    )
    # The return page lives at the root: it is where the default return URLs point.
    return Router(
        path="/",
        route_handlers=[sandbox, return_page],
        exception_handlers={BillingError: sandbox_error},
    )
