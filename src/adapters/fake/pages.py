"""Sandbox pages: the "hosted" checkout, setup and portal pages Stripe would serve, without money.

Plain server-rendered HTML, labelled as a sandbox. There are no card fields: test cards are
buttons, as the fake gateway never sees a card number. Mounted only with the sandbox gateway.
"""

from __future__ import annotations

import html
from collections.abc import Iterable
from datetime import timedelta
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

import msgspec
from litestar import MediaType, Request, Response, Router, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body, FromPath
from litestar.response import Redirect

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


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _page(
    title: str,
    *parts: str,
    status: int = 200,
    stands_in_for: str = "the payment gateway's own page",
) -> Response[str]:
    body = "\n".join(parts)
    document = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{_e(title)} · {_e(BANNER)}</title>
<style>
body {{ font-family: system-ui, sans-serif; max-width: 42rem; margin: 2rem auto; padding: 0 1rem; }}
.banner {{ background: #fff3cd; border: 1px solid #e0c36a; padding: .6rem 1rem; font-weight: 600; }}
.notice {{ background: #f8d7da; border: 1px solid #e4a1a8; padding: .6rem 1rem; }}
.info {{ background: #dbe9f6; border: 1px solid #9fbfdf; padding: .6rem 1rem; }}
form {{ display: inline-block; margin: .2rem .3rem .2rem 0; }}
table {{ border-collapse: collapse; width: 100%; }} td, th {{ border-bottom: 1px solid #ddd; padding: .3rem; text-align: left; }}
</style></head>
<body><p class="banner" role="note">{_e(BANNER)}. This page stands in for {_e(stands_in_for)}; no card is charged.</p>
<h1>{_e(title)}</h1>
{body}
</body></html>"""
    return Response(document, media_type=MediaType.HTML, status_code=status)


def _button(action: str, label: str, **fields: str) -> str:
    hidden = "".join(
        f'<input type="hidden" name="{_e(k)}" value="{_e(v)}">' for k, v in fields.items()
    )
    return f'<form method="post" action="{_e(action)}">{hidden}<button type="submit">{_e(label)}</button></form>'


def _card_buttons(action: str, outcome: str | None, verb: str) -> str:
    buttons = []
    for name, card in TEST_CARDS.items():
        fields = {"card": name} if outcome is None else {"outcome": outcome, "card": name}
        label = f"{verb} with test {card.brand} •••• {card.last4}"
        if card == AUTHENTICATION_CARD:
            label += " (requires authentication)"
        buttons.append(_button(action, label, **fields))
    return "\n".join(buttons)


STANDS_IN_3DS = "Stripe's hosted invoice page, where the bank's 3-D Secure check runs"


def _notice(request: Request[Any, Any, Any]) -> str:
    if request.query_params.get("declined"):
        return (
            '<p class="notice" role="alert">'
            "The test card was declined. Nothing was charged; try another.</p>"
        )
    return ""


def _path(url: str) -> str:
    """A sandbox URL (absolute, on BILLING_PUBLIC_URL) as a path on this server."""
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def _info(text: str) -> str:
    return f'<p class="info" role="status">{_e(text)}</p>'


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


def _rows(rows: Iterable[tuple[str, object]]) -> str:
    cells = "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in rows)
    return f"<table>{cells}</table>"


def sandbox_error(_: Request[Any, Any, Any], error: BillingError) -> Response[str]:
    """Sandbox pages show a refused action as a page, not as API JSON."""
    status = 404 if error.kind.value == "not_found" else 409
    return _page(
        "That did not work",
        f"<p>{_e(error.message)} <code>{_e(error.code)}</code></p>",
        '<p><a href="javascript:history.back()">Back</a></p>',
        status=status,
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
    def checkout_page(checkout_id: FromPath[str], request: Request[Any, Any, Any]) -> Response[str]:
        outcome = fake.get_checkout(checkout_id)
        price = fake.checkout_price(checkout_id)
        summary = _rows(
            [
                ("Plan", price.plan_id),
                ("Billed", f"per {price.interval.value}"),
                ("Price", price.amount),
            ]
        )
        if outcome.status is not CheckoutStatus.OPEN:
            closed = (
                "This checkout has expired and can no longer be paid: a newer checkout was "
                "started for this account, or it was left open for 24 hours. Nothing was charged."
                if outcome.status is CheckoutStatus.EXPIRED
                else f"This checkout is {outcome.status.value}."
            )
            return _page(
                "Checkout",
                summary,
                f"<p>{_e(closed)}</p>",
                f'<p><a href="{_e(fake.checkout_return_url(checkout_id))}">Return to ResponseIQ</a></p>',
            )
        action = f"/sandbox/checkout/{checkout_id}/complete"
        return _page(
            "Checkout",
            summary,
            _notice(request),
            "<p>Pay with a test card:</p>",
            _card_buttons(action, "succeeded", "Pay"),
            "<p>Or try a card that the bank declines:</p>",
            _button(action, "Pay with a declined test card", outcome="declined", card="visa"),
            f'<p><a href="{_e(fake.checkout_return_url(checkout_id))}">Cancel and return</a></p>',
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
    def checkout_authenticate_page(checkout_id: FromPath[str]) -> Response[str]:
        fake.get_checkout(checkout_id)  # an unknown checkout is a 404 page
        action = f"/sandbox/checkout/{checkout_id}/authenticate"
        card = AUTHENTICATION_CARD
        return _page(
            "Confirm the payment",
            f"<p>Your bank asks you to confirm this payment with {_e(card.brand)} "
            f"•••• {_e(card.last4)} (3-D Secure).</p>",
            _button(action, "Confirm with the bank", outcome="succeeded", card="authenticate"),
            _button(action, "Fail the bank's check", outcome="declined", card="authenticate"),
            stands_in_for="the bank's 3-D Secure window in Stripe Checkout",
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
    def setup_page(setup_id: FromPath[str], request: Request[Any, Any, Any]) -> Response[str]:
        action = f"/sandbox/setup/{setup_id}/complete"
        cancel = fake.setup_return_url(setup_id)
        return _page(
            "Add a payment method",
            _notice(request),
            "<p>Choose a test card to save for the next charge:</p>",
            _card_buttons(action, "succeeded", "Save"),
            _button(action, "Try a declined test card", outcome="declined", card="visa"),
            f'<p><a href="{_e(cancel)}">Cancel and return</a></p>',
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
    def portal_page(portal_id: FromPath[str], catalog: Dep[Catalog]) -> Response[str]:
        customer = fake.portal_session_customer(portal_id)
        sub = fake.customer_subscription(customer)
        method = fake.customer_payment_method(customer)
        base = f"/sandbox/portal/{portal_id}"
        parts = [
            f'<p><a href="{_e(fake.portal_return_url(portal_id))}">← Return to ResponseIQ</a></p>'
        ]
        if sub is None:
            parts.append("<p>No subscription yet.</p>")
        else:
            pending = sub.pending_change
            end = f"{sub.current_period_end:%Y-%m-%d}"
            # What the last action did, read from the state: a person sees the result at once.
            if sub.status.is_live and sub.cancel_at_period_end:
                parts.append(
                    _info(
                        f"Canceled: access continues until {end}, then the plan ends. Renew below to keep it."
                    )
                )
            if pending is not None:
                parts.append(
                    _info(
                        f"Your plan changes to {pending.plan_id} ({pending.interval.value}ly) on "
                        f"{pending.effective_at:%Y-%m-%d}; {sub.plan_id} stays until then."
                    )
                )
            parts += [
                "<h2>Current plan</h2>",
                _rows(
                    [
                        ("Plan", f"{sub.plan_id} ({sub.interval.value}ly)"),
                        ("Status", sub.status.value),
                        ("Current period", f"{sub.current_period_start:%Y-%m-%d} to {end}"),
                        ("Cancels at period end", "yes" if sub.cancel_at_period_end else "no"),
                        (
                            "Scheduled change",
                            f"{pending.plan_id} ({pending.interval.value}ly) on {pending.effective_at:%Y-%m-%d}"
                            if pending
                            else "none",
                        ),
                    ]
                ),
            ]
            if sub.status.is_live:
                parts.append(
                    "<h2>Change plan</h2><p>Upgrades apply now with a prorated charge; downgrades at the period end.</p>"
                )
                current = catalog.price(sub.plan_id, sub.interval)
                scheduled = (pending.plan_id, pending.interval) if pending else None
                for price in catalog.all_prices():
                    # The current price is no change; the scheduled one is already chosen.
                    if (price.plan_id, price.interval) in ((sub.plan_id, sub.interval), scheduled):
                        continue
                    parts.append(
                        _button(
                            f"{base}/change-plan",
                            _change_label(current, price),
                            plan=price.plan_id,
                            interval=price.interval.value,
                        )
                    )
                parts.append("<h2>Cancel</h2>")
                if sub.cancel_at_period_end:
                    parts.append(_button(f"{base}/resume", "Renew plan (undo the cancellation)"))
                else:
                    parts.append(_button(f"{base}/cancel", "Cancel at the end of the period"))
        parts.append("<h2>Payment method</h2>")
        parts.append(
            f"<p>Default: {_e(f'{method.brand} •••• {method.last4}') if method else 'none'}</p>"
        )
        parts.append(_card_buttons(f"{base}/payment-method", None, "Use"))
        parts.append("<h2>Invoices</h2>")
        invoices = fake.customer_invoices(customer)
        if not invoices:
            parts.append("<p>No invoices yet.</p>")
        for invoice in invoices:
            link = f'<a href="{_e(invoice.pdf_url)}">PDF</a>' if invoice.pdf_url else "draft"
            refund = fake.invoice_refund(invoice.id)
            refunded = f" · refunded {_e(refund.amount)}" if refund is not None else ""
            parts.append(
                f"<p>{_e(invoice.number or invoice.id)} · {_e(invoice.created.date())} · "
                f"{_e(invoice.amount_due)} · {_e(invoice.status.value)}{refunded} · {link}</p>"
            )
        return _page("Manage billing", *parts)

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
        refund = fake.invoice_refund(name)
        return _page(
            f"Invoice {invoice.number or invoice.id}",
            _rows(
                [
                    ("Status", invoice.status.value),
                    ("Amount due", invoice.amount_due),
                    ("Amount paid", invoice.amount_paid),
                    ("Refunded", refund.amount if refund is not None else "nothing"),
                    ("Period", f"{invoice.period_start:%Y-%m-%d} to {invoice.period_end:%Y-%m-%d}"),
                ]
            ),
            f'<p><a href="{_e(invoice.pdf_url)}">Download PDF</a></p>' if invoice.pdf_url else "",
        )

    @get(
        "/",
        sync_to_thread=True,
        tags=["sandbox"],
        media_type=MediaType.HTML,
        summary="Where the sandbox's default return URLs land",
    )
    def return_page(request: Request[Any, Any, Any], catalog: Dep[Catalog]) -> Response[str]:
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
            title,
            _info(text),
            '<p>The API and its examples: <a href="/schema">/schema</a>.</p>',
            stands_in_for="ResponseIQ's billing page (BILLING_PUBLIC_URL)",
        )

    @get(
        "/authenticate/{action_id:str}",
        sync_to_thread=True,
        tags=["sandbox"],
        summary="The sandbox's 3-D Secure page: confirm an upgrade's payment with the bank",
        media_type=MediaType.HTML,
    )
    def authenticate_page(action_id: FromPath[str]) -> Response[str]:
        if not fake.payment_action_open(action_id):
            body = _info("This payment is no longer waiting; nothing was charged here.")
            return _page("Nothing to confirm", body, stands_in_for=STANDS_IN_3DS)
        return _page(
            "Confirm the payment",
            "<p>Your bank asks you to confirm this payment (3-D Secure).</p>",
            _button(f"/sandbox/authenticate/{action_id}", "Confirm with the bank"),
            stands_in_for=STANDS_IN_3DS,
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
