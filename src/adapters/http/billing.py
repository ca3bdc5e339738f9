"""The `/billing` routes: thin handlers from request bodies to commands and use cases."""

from __future__ import annotations

import uuid
from typing import Annotated, Any
from urllib.parse import urlsplit

import attrs
from litestar import Controller, delete, get, post
from litestar.params import (
    Body,
    BodyKwarg,
    HeaderParameter,
    PathParameter,
    QueryParameter,
)
from litestar.response import Redirect

from responseiq_billing.adapters.config import Settings
from responseiq_billing.adapters.http import examples, schemas
from responseiq_billing.adapters.http import presenters as present
from responseiq_billing.adapters.http.deps import Dep
from responseiq_billing.adapters.read_cache import ReadCache
from responseiq_billing.application import commands, use_cases
from responseiq_billing.application.ports import Clock, PortalFlow, UiMode
from responseiq_billing.domain.plans import Catalog, Plan
from responseiq_billing.domain.subscription import Subscription

IdempotencyKey = Annotated[
    str | None,
    HeaderParameter(
        name="Idempotency-Key",
        required=False,
        min_length=1,
        max_length=100,
        pattern=r"^[A-Za-z0-9_.:-]+$",
        description=(
            "Repeat a request safely: the same key never charges or changes twice; "
            "a key reused for a different request is refused with 409."
        ),
    ),
]


def _id_parameter(kind: type[PathParameter] | type[QueryParameter], **more: Any) -> Any:
    return kind(min_length=1, max_length=schemas.ID_MAX_LENGTH, pattern=schemas.ID_PATTERN, **more)


PathId = Annotated[str, _id_parameter(PathParameter)]


def _request_id(key: str | None) -> str:
    return key or uuid.uuid4().hex


def _with_query(url: str, query: str) -> str:
    # Not urlencode: Stripe fills in the literal `{CHECKOUT_SESSION_ID}` placeholder.
    if urlsplit(url).path == "":
        url += "/"
    return f"{url}{'&' if '?' in url else '?'}{query}"


def _view(sub: Subscription, clock: Clock, catalog: Catalog) -> schemas.SubscriptionOut:
    access = sub.access_at(use_cases.now_from(clock), catalog)
    return present.subscription(use_cases.SubscriptionView(sub, access))


@attrs.frozen(kw_only=True)
class Reads:
    """What the read routes need, as one dependency resolved after `account_id` (app.py): one
    dependency per level lets Litestar resolve them in turn, not in a task group per request."""

    cache: ReadCache
    list_plans: use_cases.ListPlans
    get_subscription: use_cases.GetSubscription
    get_entitlements: use_cases.GetEntitlements


_PLANS: dict[int, tuple[tuple[Plan, ...], schemas.PlansOut]] = {}


def _presented_plans(plans: tuple[Plan, ...]) -> schemas.PlansOut:
    # The catalog is fixed for a process's life: present it once (the tuple is kept alive).
    held = _PLANS.get(id(plans))
    if held is None or held[0] is not plans:
        held = _PLANS[id(plans)] = (plans, present.plans(plans))
    return held[1]


def _body(example: dict[str, Any]) -> BodyKwarg:
    body: BodyKwarg = Body(examples=[examples.example(example)])
    return body


class BillingController(Controller):
    """Every route acts on the account in the bearer token; no account id appears anywhere else."""

    path = "/billing"
    tags = ["billing"]
    security = [{"BearerToken": []}]

    # The reads run on the event loop: the plans are presented once, and a subscription comes
    # from the read cache, which goes to a worker thread only for what it does not hold.
    @get(
        "/plans",
        sync_to_thread=False,
        summary="The plans on sale, with prices and features",
        responses=examples.responses(200, schemas.PlansOut, examples.PLANS, 401),
    )
    def plans(self, account_id: Dep[str], reads: Dep[Reads]) -> schemas.PlansOut:
        return _presented_plans(reads.list_plans())

    @get(
        "/subscription",
        summary="The account's subscription",
        responses=examples.responses(200, schemas.SubscriptionOut, examples.SUBSCRIPTION, 401, 404),
    )
    async def subscription(
        self, account_id: Dep[str], reads: Dep[Reads]
    ) -> schemas.SubscriptionOut:
        sub = await reads.cache.subscription(account_id)
        return present.subscription(reads.get_subscription.view(sub))

    @get(
        "/entitlements",
        summary="The features the account may use now, and until when",
        responses=examples.responses(200, schemas.EntitlementsOut, examples.ENTITLEMENTS, 401),
    )
    async def entitlements(
        self, account_id: Dep[str], reads: Dep[Reads]
    ) -> schemas.EntitlementsOut:
        sub = await reads.cache.subscription(account_id)
        return present.entitlements(reads.get_entitlements.access(sub))

    @post(
        "/checkout",
        status_code=201,
        sync_to_thread=True,
        summary="Start a checkout for a new subscription",
        description="Card details go from the browser to the payment gateway only.",
        responses=examples.responses(201, schemas.CheckoutOut, examples.CHECKOUT, 401, 409),
    )
    def checkout(
        self,
        account_id: Dep[str],
        settings: Dep[Settings],
        start_checkout: Dep[use_cases.StartCheckout],
        data: Annotated[
            schemas.CheckoutRequest,
            _body({"plan": "growth", "interval": "month", "ui_mode": "hosted"}),
        ],
        idempotency_key: IdempotencyKey = None,
    ) -> schemas.CheckoutOut:
        back = data.return_url or settings.public_url
        session = start_checkout(
            commands.StartCheckout(
                account_id=account_id,
                plan=data.plan,
                interval=data.interval,
                success_url=_with_query(back, "checkout=success&checkout_id={CHECKOUT_SESSION_ID}"),
                cancel_url=_with_query(back, "checkout=canceled"),
                ui_mode=UiMode(data.ui_mode),
                request_id=_request_id(idempotency_key),
            )
        )
        return present.checkout(session)

    @post(
        "/checkout/{checkout_id:str}/complete",
        status_code=200,
        sync_to_thread=True,
        summary="Record a finished checkout at once (the return from the gateway's page)",
        description=(
            "Call it when the customer lands on the success URL. It reads the checkout from the "
            "gateway and records the subscription exactly as the webhook does, so the billing "
            "page shows it even if the webhook is late. `status` is `open` while unpaid."
        ),
        responses=examples.responses(
            200, schemas.CheckoutResultOut, examples.CHECKOUT_RESULT, 401, 404
        ),
    )
    def checkout_complete(
        self,
        account_id: Dep[str],
        complete_checkout: Dep[use_cases.CompleteCheckout],
        clock: Dep[Clock],
        catalog: Dep[Catalog],
        checkout_id: PathId,
    ) -> schemas.CheckoutResultOut:
        sub = complete_checkout(
            commands.CompleteCheckout(account_id=account_id, checkout_id=checkout_id)
        )
        return present.checkout_result(sub, use_cases.now_from(clock), catalog)

    @post(
        "/portal",
        status_code=201,
        sync_to_thread=True,
        summary="Open Manage Billing (the customer portal)",
        responses=examples.responses(201, schemas.PortalOut, examples.PORTAL, 401, 404, 409),
    )
    def portal(
        self,
        account_id: Dep[str],
        settings: Dep[Settings],
        open_portal: Dep[use_cases.OpenPortal],
        data: Annotated[
            schemas.PortalRequest | None,
            _body({"return_url": "https://app.responseiq.com/settings/billing"}),
        ] = None,
        idempotency_key: IdempotencyKey = None,
    ) -> schemas.PortalOut:
        body = data or schemas.PortalRequest()
        session = open_portal(
            commands.OpenPortal(
                account_id=account_id,
                return_url=body.return_url or settings.public_url,
                flow=PortalFlow(body.flow) if body.flow else None,
                request_id=_request_id(idempotency_key),
            )
        )
        return present.portal(session)

    @post(
        "/subscription/preview",
        status_code=200,
        sync_to_thread=True,
        summary="Preview a plan change: when it applies and what it charges now",
        responses=examples.responses(200, schemas.PreviewOut, examples.PREVIEW, 401, 404, 409),
    )
    def preview(
        self,
        account_id: Dep[str],
        preview_plan_change: Dep[use_cases.PreviewPlanChange],
        data: Annotated[schemas.PlanChoice, _body({"plan": "business", "interval": "month"})],
    ) -> schemas.PreviewOut:
        quote = preview_plan_change(
            commands.PreviewPlanChange(
                account_id=account_id, plan=data.plan, interval=data.interval
            )
        )
        return present.preview(quote)

    @post(
        "/subscription/change",
        status_code=200,
        sync_to_thread=True,
        summary="Change the plan: upgrades now (prorated), downgrades at the period end",
        responses=examples.responses(
            200, schemas.SubscriptionOut, examples.SUBSCRIPTION, 401, 402, 404, 409
        ),
    )
    def change(
        self,
        account_id: Dep[str],
        change_plan: Dep[use_cases.ChangePlan],
        clock: Dep[Clock],
        catalog: Dep[Catalog],
        data: Annotated[
            schemas.ChangeRequest,
            _body({"plan": "business", "interval": "month", "quote_id": "qt_4f1c2e"}),
        ],
        idempotency_key: IdempotencyKey = None,
    ) -> schemas.SubscriptionOut:
        sub = change_plan(
            commands.ChangePlan(
                account_id=account_id,
                plan=data.plan,
                interval=data.interval,
                quote_id=data.quote_id,
                request_id=_request_id(idempotency_key),
            )
        )
        return _view(sub, clock, catalog)

    @delete(
        "/subscription/pending-change",
        status_code=200,
        sync_to_thread=True,
        summary="Withdraw a scheduled plan change",
        responses=examples.responses(
            200, schemas.SubscriptionOut, examples.SUBSCRIPTION, 401, 404, 409
        ),
    )
    def withdraw_change(
        self,
        account_id: Dep[str],
        cancel_pending_change: Dep[use_cases.CancelPendingChange],
        clock: Dep[Clock],
        catalog: Dep[Catalog],
        idempotency_key: IdempotencyKey = None,
    ) -> schemas.SubscriptionOut:
        sub = cancel_pending_change(
            commands.CancelPendingChange(
                account_id=account_id, request_id=_request_id(idempotency_key)
            )
        )
        return _view(sub, clock, catalog)

    @post(
        "/subscription/cancel",
        status_code=200,
        sync_to_thread=True,
        summary="Cancel at the end of the period; access continues until then",
        responses=examples.responses(
            200, schemas.SubscriptionOut, examples.SUBSCRIPTION_CANCELING, 401, 404, 409
        ),
    )
    def cancel(
        self,
        account_id: Dep[str],
        cancel_subscription: Dep[use_cases.CancelSubscription],
        clock: Dep[Clock],
        catalog: Dep[Catalog],
        idempotency_key: IdempotencyKey = None,
    ) -> schemas.SubscriptionOut:
        sub = cancel_subscription(
            commands.CancelSubscription(
                account_id=account_id, request_id=_request_id(idempotency_key)
            )
        )
        return _view(sub, clock, catalog)

    @post(
        "/subscription/resume",
        status_code=200,
        sync_to_thread=True,
        summary="Undo a cancellation before the period ends",
        responses=examples.responses(
            200, schemas.SubscriptionOut, examples.SUBSCRIPTION, 401, 404, 409
        ),
    )
    def resume(
        self,
        account_id: Dep[str],
        resume_subscription: Dep[use_cases.ResumeSubscription],
        clock: Dep[Clock],
        catalog: Dep[Catalog],
        idempotency_key: IdempotencyKey = None,
    ) -> schemas.SubscriptionOut:
        sub = resume_subscription(
            commands.ResumeSubscription(
                account_id=account_id, request_id=_request_id(idempotency_key)
            )
        )
        return _view(sub, clock, catalog)

    @post(
        "/payment-method/setup",
        status_code=201,
        sync_to_thread=True,
        summary="Start adding a new payment method in the gateway's own page",
        responses=examples.responses(201, schemas.SetupOut, examples.SETUP, 401, 404, 409),
    )
    def payment_method_setup(
        self,
        account_id: Dep[str],
        settings: Dep[Settings],
        start_payment_method_update: Dep[use_cases.StartPaymentMethodUpdate],
        data: Annotated[
            schemas.SetupRequest | None,
            _body({"return_url": "https://app.responseiq.com/settings/billing"}),
        ] = None,
        idempotency_key: IdempotencyKey = None,
    ) -> schemas.SetupOut:
        back = (data.return_url if data else None) or settings.public_url
        session = start_payment_method_update(
            commands.StartPaymentMethodUpdate(
                account_id=account_id,
                success_url=_with_query(back, "setup=success&setup_id={CHECKOUT_SESSION_ID}"),
                cancel_url=_with_query(back, "setup=canceled"),
                request_id=_request_id(idempotency_key),
            )
        )
        return present.setup(session)

    @post(
        "/payment-method/setup/{setup_id:str}/complete",
        status_code=200,
        sync_to_thread=True,
        summary="Make a newly added payment method the default (the return from the setup page)",
        description=(
            "Immediately: the next charge uses the new method. `status` stays `pending` until the "
            "customer has finished the setup page (and while the account has no subscription)."
        ),
        responses=examples.responses(
            200, schemas.PaymentMethodResultOut, examples.PAYMENT_METHOD_RESULT, 401, 404
        ),
    )
    def payment_method_setup_complete(
        self,
        account_id: Dep[str],
        complete_payment_method_update: Dep[use_cases.CompletePaymentMethodUpdate],
        setup_id: PathId,
    ) -> schemas.PaymentMethodResultOut:
        sub = complete_payment_method_update(
            commands.CompletePaymentMethodUpdate(account_id=account_id, setup_id=setup_id)
        )
        return present.payment_method_result(sub, done=sub is not None)

    @get(
        "/invoices",
        sync_to_thread=True,
        summary="The account's invoices, newest first",
        responses=examples.responses(200, schemas.InvoicesOut, examples.INVOICES, 401, 404),
    )
    def invoices(
        self,
        account_id: Dep[str],
        list_invoices: Dep[use_cases.ListInvoices],
        limit: Annotated[int, QueryParameter(ge=1, le=use_cases.MAX_INVOICE_PAGE)] = 10,
        starting_after: Annotated[
            str | None,
            _id_parameter(QueryParameter, description="The last invoice id of the previous page"),
        ] = None,
    ) -> schemas.InvoicesOut:
        page = list_invoices(
            commands.ListInvoices(account_id=account_id, limit=limit, starting_after=starting_after)
        )
        return present.invoices(page)

    @get(
        "/invoices/{invoice_id:str}/pdf",
        sync_to_thread=True,
        status_code=302,
        summary="Download an invoice as PDF (a redirect to the gateway's document)",
        responses={
            **examples.responses(302, None, None, 401, 404, description="Redirect to the PDF"),
        },
    )
    def invoice_pdf(
        self,
        account_id: Dep[str],
        get_invoice_pdf: Dep[use_cases.GetInvoicePdf],
        invoice_id: PathId,
    ) -> Redirect:
        invoice = get_invoice_pdf(
            commands.GetInvoicePdf(account_id=account_id, invoice_id=invoice_id)
        )
        assert invoice.pdf_url is not None  # the use case raises when there is none
        return Redirect(path=invoice.pdf_url, status_code=302)
