"""A local Stripe over real HTTP: stripe-python talks to it through `base_addresses`."""

from __future__ import annotations

import copy
import hashlib
import json
import re
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

import attrs
import stripe
import stripe.params as p
import stripe.params.billing_portal as bp
import stripe.params.checkout as co

from responseiq_billing.adapters.fake.clock import ControllableClock
from responseiq_billing.adapters.fake.pdf import render_text_pdf
from responseiq_billing.domain.plans import Catalog
from tests.stripe_double.fixtures import resource
from tests.stripe_double.params import check, decode_form
from tests.stripe_double.state import ApiError, Obj, StripeState

# stripe-python adds a random key in UUID layout (8-4-4-4-12 hex) to every POST that has none;
# a request carrying one was sent without a key derived from our command.
SDK_GENERATED_KEY = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
TEST_KEY = "sk_test_double_0000000000000000"
INVOICE_PDF_PATH = re.compile(r"^/invoice/acct_double/test_(?P<id>in_[0-9a-f]+)/pdf$")


@attrs.frozen
class Request:
    """One request as the double received it (for pinning request counts and contents)."""

    method: str
    route: str  # the path template, e.g. "POST /v1/subscriptions/{id}"
    path: str
    params: Obj
    idempotency_key: str | None
    status: int = 0

    @property
    def name(self) -> str:
        return self.route


Handler = Callable[[StripeState, Obj, str | None], Any]


@attrs.frozen
class Route:
    method: str
    template: str
    params: type
    handler: Handler

    @property
    def pattern(self) -> re.Pattern[str]:
        return re.compile("^" + re.sub(r"\{id\}", r"(?P<id>[^/]+)", self.template) + "$")


def _list(
    state: StripeState, objects: list[Obj], params: Obj, url: str, expand_prefix: str = "data."
) -> Obj:
    """A page of a newest-first list, honouring limit / starting_after like Stripe."""
    start = 0
    after = params.get("starting_after")
    if after is not None:
        ids = [o["id"] for o in objects]
        if after not in ids:
            raise ApiError(
                404, f"No such object: '{after}'", code="resource_missing", param="starting_after"
            )
        start = ids.index(after) + 1
    limit = int(params.get("limit") or 10)
    if not 1 <= limit <= 100:
        raise ApiError(400, "limit must be between 1 and 100.", param="limit")
    page = objects[start : start + limit]
    expand = [
        e.removeprefix(expand_prefix)
        for e in params.get("expand") or []
        if e.startswith(expand_prefix)
    ]
    return state.list_object(
        [state.render(o, expand) for o in page], url, has_more=start + limit < len(objects)
    )


def _obj(render_from: Callable[[StripeState, Obj, str | None], Obj]) -> Handler:
    def handler(state: StripeState, params: Obj, obj_id: str | None) -> Obj:
        return state.render(render_from(state, params, obj_id), params.get("expand") or [])

    return handler


def _preview(state: StripeState, params: Obj, _: str | None) -> Obj:
    sub = state.get(params.get("subscription") or "", "subscription")
    if params.get("customer") not in (None, sub["customer"]):
        raise ApiError(400, "The subscription does not belong to that customer.", param="customer")
    details = params.get("subscription_details") or {}
    items = details.get("items") or []
    at = int(details.get("proration_date") or state.now())
    if len(items) != 1 or items[0].get("id") != sub["items"]["data"][0]["id"]:
        raise ApiError(
            400, "Pass the existing subscription item's id.", param="subscription_details[items]"
        )
    if details.get("proration_behavior") != "always_invoice":
        raise ApiError(400, "The double previews proration_behavior=always_invoice only.")
    # A preview of the update names its price as the update would, and is refused the same way.
    price = state.usable_price(items[0].get("price") or "", "subscription_details[items][0][price]")
    lines, _resets = state.proration_lines(sub, price, at)
    invoice = state._invoice(sub, "subscription_update", lines, preview=True)
    return state.render(invoice)


def _portal_session(state: StripeState, params: Obj, _: str | None) -> Obj:
    customer = state.get(params.get("customer") or "", "customer")
    flow = params.get("flow_data")
    if flow is not None:
        kind = flow.get("type")
        if kind in ("subscription_update", "subscription_cancel", "subscription_update_confirm"):
            sub = state.get(flow[kind]["subscription"], "subscription")
            if sub["customer"] != customer["id"]:
                raise ApiError(400, "The subscription does not belong to this customer.")
    config = params.get("configuration")
    if config is not None:
        state.get(config, "billing_portal.configuration")
    session_id = state.new_id("bps")
    session = resource(
        "billing_portal.session",
        id=session_id,
        created=state.now(),
        customer=customer["id"],
        configuration=config or "bpc_default",
        return_url=params.get("return_url"),
        livemode=False,
        url=f"https://billing.stripe.com/p/session/test_{session_id}",
    )
    session["flow"] = (
        None
        if flow is None
        else {"type": flow["type"], **{k: v for k, v in flow.items() if k != "type"}}
    )
    return state.put(session)


def _portal_configuration(state: StripeState, params: Obj, config_id: str | None) -> Obj:
    if config_id is None:
        config = resource(
            "billing_portal.configuration",
            id=state.new_id("bpc"),
            created=state.now(),
            is_default=False,
            livemode=False,
            metadata={},
        )
        config["features"] = {}
    else:
        config = state.get(config_id, "billing_portal.configuration")
    for field in ("business_profile", "default_return_url", "name"):
        if field in params:
            config[field] = params[field]
    if "metadata" in params:
        config["metadata"] = {**(config.get("metadata") or {}), **params["metadata"]}
    if "active" in params:
        config["active"] = params["active"] == "true"
    if "features" in params:
        config["features"] = _normalise(params["features"])
    config["updated"] = state.now()
    return state.put(config)


def _normalise(value: Any) -> Any:
    """Form strings back to JSON types, as Stripe stores them."""
    if isinstance(value, dict):
        return {k: _normalise(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_normalise(v) for v in value]
    if value in ("true", "false"):
        return value == "true"
    return value


def _webhook_endpoint(state: StripeState, params: Obj, endpoint_id: str | None) -> Obj:
    if endpoint_id is None:
        endpoint = resource(
            "webhook_endpoint",
            id=state.new_id("we"),
            created=state.now(),
            api_version=params.get("api_version"),
            description=params.get("description"),
            metadata=dict(params.get("metadata") or {}),
            url=params["url"],
            enabled_events=list(params["enabled_events"]),
        )
        endpoint["secret"] = f"whsec_{state.new_id('double')}"
        state.put(endpoint)
        return endpoint
    endpoint = state.get(endpoint_id, "webhook_endpoint")
    for field in ("url", "description"):
        if field in params:
            endpoint[field] = params[field]
    if "enabled_events" in params:
        endpoint["enabled_events"] = list(params["enabled_events"])
    if "disabled" in params:
        endpoint["status"] = "disabled" if params["disabled"] == "true" else "enabled"
    if "metadata" in params:
        endpoint["metadata"].update(params["metadata"])
    return endpoint


def _without_secret(endpoint: Obj) -> Obj:
    return {k: v for k, v in endpoint.items() if k != "secret"}


ROUTES: list[Route] = [
    Route(
        "POST", "/v1/customers", p.CustomerCreateParams, _obj(lambda s, q, _: s.create_customer(q))
    ),
    Route(
        "GET",
        "/v1/customers/{id}",
        p.CustomerRetrieveParams,
        _obj(lambda s, q, i: s.get(i or "", "customer")),
    ),
    Route(
        "POST",
        "/v1/customers/{id}",
        p.CustomerUpdateParams,
        _obj(lambda s, q, i: s.update_customer(i or "", q)),
    ),
    Route(
        "GET",
        "/v1/payment_methods/{id}",
        p.PaymentMethodRetrieveParams,
        _obj(lambda s, q, i: s.get(i or "", "payment_method")),
    ),
    Route(
        "GET",
        "/v1/products",
        p.ProductListParams,
        lambda s, q, _: _list(
            s,
            s.all(
                "product",
                lambda o: q.get("active") is None or o["active"] == (q["active"] == "true"),
            ),
            q,
            "/v1/products",
        ),
    ),
    Route("POST", "/v1/products", p.ProductCreateParams, _obj(lambda s, q, _: s.create_product(q))),
    Route(
        "GET",
        "/v1/products/{id}",
        p.ProductRetrieveParams,
        _obj(lambda s, q, i: s.get(i or "", "product")),
    ),
    Route(
        "POST",
        "/v1/products/{id}",
        p.ProductUpdateParams,
        _obj(lambda s, q, i: s.update_product(i or "", q)),
    ),
    Route(
        "GET",
        "/v1/prices",
        p.PriceListParams,
        lambda s, q, _: _list(s, s.list_prices(q), q, "/v1/prices"),
    ),
    Route("POST", "/v1/prices", p.PriceCreateParams, _obj(lambda s, q, _: s.create_price(q))),
    Route(
        "GET",
        "/v1/prices/{id}",
        p.PriceRetrieveParams,
        _obj(lambda s, q, i: s.get(i or "", "price")),
    ),
    Route(
        "POST",
        "/v1/prices/{id}",
        p.PriceUpdateParams,
        _obj(lambda s, q, i: s.update_price(i or "", q)),
    ),
    Route(
        "POST",
        "/v1/checkout/sessions",
        co.SessionCreateParams,
        _obj(lambda s, q, _: s.create_checkout(q)),
    ),
    Route(
        "GET",
        "/v1/checkout/sessions/{id}",
        co.SessionRetrieveParams,
        _obj(lambda s, q, i: s.get(i or "", "checkout.session", "checkout.session")),
    ),
    Route(
        "POST",
        "/v1/checkout/sessions/{id}/expire",
        co.SessionExpireParams,
        _obj(lambda s, q, i: s.expire_checkout(i or "")),
    ),
    Route("POST", "/v1/billing_portal/sessions", bp.SessionCreateParams, _obj(_portal_session)),
    Route(
        "GET",
        "/v1/billing_portal/configurations",
        bp.ConfigurationListParams,
        lambda s, q, _: _list(
            s, s.all("billing_portal.configuration"), q, "/v1/billing_portal/configurations"
        ),
    ),
    Route(
        "POST",
        "/v1/billing_portal/configurations",
        bp.ConfigurationCreateParams,
        _obj(_portal_configuration),
    ),
    Route(
        "POST",
        "/v1/billing_portal/configurations/{id}",
        bp.ConfigurationUpdateParams,
        _obj(_portal_configuration),
    ),
    Route(
        "GET",
        "/v1/subscriptions",
        p.SubscriptionListParams,
        lambda s, q, _: _list(s, s.list_subscriptions(q), q, "/v1/subscriptions"),
    ),
    Route(
        "GET",
        "/v1/subscriptions/{id}",
        p.SubscriptionRetrieveParams,
        _obj(lambda s, q, i: s.get(i or "", "subscription")),
    ),
    Route(
        "POST",
        "/v1/subscriptions/{id}",
        p.SubscriptionUpdateParams,
        _obj(lambda s, q, i: s.update_subscription(i or "", q)),
    ),
    Route(
        "DELETE",
        "/v1/subscriptions/{id}",
        p.SubscriptionCancelParams,
        _obj(lambda s, q, i: s.cancel_subscription(i or "", q)),
    ),
    Route("POST", "/v1/refunds", p.RefundCreateParams, _obj(lambda s, q, _: s.create_refund(q))),
    Route(
        "POST",
        "/v1/subscription_schedules",
        p.SubscriptionScheduleCreateParams,
        _obj(lambda s, q, _: s.create_schedule(q)),
    ),
    Route(
        "GET",
        "/v1/subscription_schedules/{id}",
        p.SubscriptionScheduleRetrieveParams,
        _obj(lambda s, q, i: s.get(i or "", "subscription_schedule")),
    ),
    Route(
        "POST",
        "/v1/subscription_schedules/{id}",
        p.SubscriptionScheduleUpdateParams,
        _obj(lambda s, q, i: s.update_schedule(i or "", q)),
    ),
    Route(
        "POST",
        "/v1/subscription_schedules/{id}/release",
        p.SubscriptionScheduleReleaseParams,
        _obj(lambda s, q, i: s.release_schedule(i or "")),
    ),
    Route("POST", "/v1/invoices/create_preview", p.InvoiceCreatePreviewParams, _preview),
    Route(
        "GET",
        "/v1/invoices",
        p.InvoiceListParams,
        lambda s, q, _: _list(s, s.list_invoices(q), q, "/v1/invoices"),
    ),
    Route(
        "GET",
        "/v1/invoices/{id}",
        p.InvoiceRetrieveParams,
        _obj(lambda s, q, i: s.get(i or "", "invoice")),
    ),
    Route(
        "GET",
        "/v1/invoice_payments",
        p.InvoicePaymentListParams,
        lambda s, q, _: _list(
            s,
            s.all("invoice_payment", lambda o: q.get("invoice") in (None, o["invoice"])),
            q,
            "/v1/invoice_payments",
        ),
    ),
    Route(
        "GET",
        "/v1/webhook_endpoints",
        p.WebhookEndpointListParams,
        lambda s, q, _: _list(
            s, [_without_secret(e) for e in s.all("webhook_endpoint")], q, "/v1/webhook_endpoints"
        ),
    ),
    Route(
        "POST",
        "/v1/webhook_endpoints",
        p.WebhookEndpointCreateParams,
        lambda s, q, _: s.render(_webhook_endpoint(s, q, None)),
    ),
    Route(
        "POST",
        "/v1/webhook_endpoints/{id}",
        p.WebhookEndpointUpdateParams,
        lambda s, q, i: s.render(_without_secret(_webhook_endpoint(s, q, i))),
    ),
]


@attrs.define
class _Stored:
    route: str
    fingerprint: str
    status: int
    body: bytes
    at: int  # the double's clock when the key was first used


# Stripe prunes an idempotency key once it is at least 24 hours old; a request that reuses it
# afterwards is a new request (and may create a second object).
IDEMPOTENCY_KEY_TTL = 24 * 60 * 60


@attrs.define
class _Injected:
    status: int
    body: Obj
    headers: dict[str, str]


class StripeDouble:
    """Stripe, locally: state, request checks, idempotency, a request log and test controls.

    Every request is checked as Stripe would: a known method and path, parameter names and
    shapes allowed by Stripe's spec (stripe-python's typed params), and on POST an
    `Idempotency-Key` derived from our command (not the SDK's random one). A request Stripe
    would refuse is answered with Stripe's 400 and recorded in `violations`, which the test
    fixtures assert empty.
    """

    def __init__(self, clock: ControllableClock) -> None:
        self.clock = clock
        self.state = StripeState(lambda: int(clock.now().timestamp()))
        self.requests: list[Request] = []
        self.violations: list[str] = []
        self._idempotency: dict[str, _Stored] = {}
        self._inject: list[_Injected] = []
        # Webhook delivery as Stripe may do it: at least once, in no promised order.
        self._late_types: frozenset[str] = frozenset()
        self._duplicated = False
        self._held: list[Obj] = []
        self._lock = threading.RLock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> StripeDouble:
        double = self

        class _Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # One write per answer, sent at once: headers and body apart meet delayed ACKs.
            wbufsize = 1 << 16
            disable_nagle_algorithm = True

            def do_GET(self) -> None:
                double._serve(self, "GET")

            def do_POST(self) -> None:
                double._serve(self, "POST")

            def do_DELETE(self) -> None:
                double._serve(self, "DELETE")

            def log_message(self, format: str, *args: Any) -> None:  # quiet test output
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        self.state.files_base = self.url
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    @property
    def url(self) -> str:
        assert self._server is not None, "the double is not running"
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def client(self, *, max_network_retries: int = 0) -> stripe.StripeClient:
        """A StripeClient pointed at this double, as the composition root builds it."""
        return stripe.StripeClient(
            TEST_KEY,
            base_addresses={"api": self.url, "connect": self.url, "files": self.url},
            max_network_retries=max_network_retries,
        )

    # -- request log -------------------------------------------------------------------------

    def clear_log(self) -> None:
        with self._lock:
            self.requests.clear()

    def routes(self) -> list[str]:
        with self._lock:
            return [r.route for r in self.requests]

    def answer_to(self, idempotency_key: str) -> tuple[int, Obj]:
        """The status and body the double gave the POST with this key (stored, replayed)."""
        with self._lock:
            stored = self._idempotency[idempotency_key]
            return stored.status, json.loads(stored.body)

    @contextmanager
    def recording(self) -> Iterator[list[Request]]:
        """The requests made inside the block."""
        with self._lock:
            start = len(self.requests)
        seen: list[Request] = []
        yield seen
        with self._lock:
            seen.extend(self.requests[start:])

    # -- test controls -----------------------------------------------------------------------

    def complete_checkout(
        self, checkout_id: str, *, card: str = "visa", outcome: str = "succeeded"
    ) -> Obj:
        with self._lock:
            return self.state.complete_checkout(checkout_id, card=card, outcome=outcome)

    def seed_catalog(self, catalog: Catalog) -> dict[tuple[str, str], str]:
        """Products and prices with lookup keys `{plan}_{interval}`, as `billing stripe setup` makes."""
        ids: dict[tuple[str, str], str] = {}
        with self._lock:
            for plan in catalog.plans:
                product = self.state.create_product(
                    {
                        "id": f"responseiq_{plan.id}",
                        "name": plan.name,
                        "metadata": {"managed_by": "responseiq-billing", "plan_id": plan.id},
                    }
                )
                for interval, amount in plan.prices.items():
                    price = self.state.create_price(
                        {
                            "product": product["id"],
                            "currency": amount.currency.lower(),
                            "unit_amount": str(amount.amount),
                            "recurring": {"interval": interval.value},
                            "lookup_key": f"{plan.id}_{interval.value}",
                            "metadata": {"managed_by": "responseiq-billing", "plan_id": plan.id},
                        }
                    )
                    ids[(plan.id, interval.value)] = price["id"]
        return ids

    def decline_next_payment(self) -> None:
        with self._lock:
            self.state.next_payment.append("declined")

    def pay_open_invoice(self, invoice_id: str) -> Obj:
        """The customer pays an open invoice on its hosted page (see `StripeState`)."""
        with self._lock:
            return self.state.render(self.state.pay_open_invoice(invoice_id))

    def require_action_next_payment(self) -> None:
        with self._lock:
            self.state.next_payment.append("requires_action")

    def advance_to(self, moment: datetime) -> None:
        """Move time; renewals, schedule phases and period-end cancellations happen in order."""
        with self._lock:
            self.clock.set(moment)
            self.state.advance()

    def fail_next(
        self, status: int, error: Obj | None = None, *, headers: dict[str, str] | None = None
    ) -> None:
        """Answer the next request with `status` and `{"error": error}` without touching state."""
        body = error or {"type": "api_error", "message": "An unknown error occurred."}
        with self._lock:
            self._inject.append(_Injected(status, body, headers or {}))

    # What the customer does on the hosted portal, with the rules `billing stripe setup`
    # configures there. Only Stripe's state changes; the service learns of it by events.

    def portal_session(self, session_id: str) -> Obj:
        """A portal session as created (whose customer it shows, where it returns to)."""
        with self._lock:
            return self.state.render(self.state.get(session_id, "billing_portal.session"))

    def portal_change_price(self, subscription_id: str, price_id: str) -> bool:
        """The portal's plan change; False when the bank declined an upgrade (nothing changes).

        Upgrades apply now, invoiced at once (`proration_behavior=always_invoice`); a lower
        amount or a shorter interval is scheduled for the period end (`schedule_at_period_end`
        on `decreasing_item_amount` and `shortening_interval`).
        """
        with self._lock:
            return self.state.portal_change_price(subscription_id, price_id)

    def portal_cancel(self, subscription_id: str) -> Obj:
        """What the portal's cancel flow does: release a schedule, then cancel at period end."""
        with self._lock:
            sub = self.state.get(subscription_id, "subscription")
            if sub.get("schedule"):
                self.state.release_schedule(sub["schedule"])
            return self.state.update_subscription(subscription_id, {"cancel_at_period_end": "true"})

    def dashboard_cancel_at(self, subscription_id: str, moment: datetime) -> Obj:
        """An operator sets "Cancel on a custom date" in the Dashboard (`cancel_at`), with
        Stripe's default `proration_behavior=create_prorations`: a date inside the current
        period credits the time after it (a pending proration), and the subscription ends at
        that moment (`advance_to`). A schedule is released first, as the portal's cancel does."""
        with self._lock:
            sub = self.state.get(subscription_id, "subscription")
            if sub.get("schedule"):
                self.state.release_schedule(sub["schedule"])
            return self.state.update_subscription(
                subscription_id, {"cancel_at": str(int(moment.timestamp()))}
            )

    def portal_resume(self, subscription_id: str) -> Obj:
        """The portal's "Renew" button on a subscription set to cancel at period end."""
        with self._lock:
            return self.state.update_subscription(
                subscription_id, {"cancel_at_period_end": "false"}
            )

    def portal_update_payment_method(self, customer_id: str, card: str) -> Obj:
        """The portal's payment-method flow: the new card is attached and becomes the
        customer's `invoice_settings.default_payment_method`, and nothing more. A subscription
        with a default of its own (Checkout sets one) still charges that one until the service
        moves it (`customer.updated` -> `use_customer_payment_method`)."""
        with self._lock:
            pm = self.state.add_card(customer_id, card)
            self.state.update_customer(
                customer_id, {"invoice_settings": {"default_payment_method": pm["id"]}}
            )
            return pm

    def paid_with(self, invoice_id: str) -> Obj | None:
        """The card payment method that paid an invoice, if it was paid."""
        with self._lock:
            found = self.state.paid_with(invoice_id)
            return copy.deepcopy(found) if found is not None else None

    def subscription(self, subscription_id: str) -> Obj:
        with self._lock:
            return self.state.render(self.state.get(subscription_id, "subscription"))

    def customer(self, customer_id: str) -> Obj:
        """A customer as Stripe shows it (its `balance`: negative is credit for next invoices)."""
        with self._lock:
            return self.state.render(self.state.get(customer_id, "customer"))

    def refunded(self, invoice_id: str) -> int:
        """What has been refunded of an invoice's payments, in minor units."""
        with self._lock:
            return self.state.refunded(invoice_id)

    def invoices(self, customer_id: str) -> list[Obj]:
        with self._lock:
            return [
                self.state.render(i) for i in self.state.list_invoices({"customer": customer_id})
            ]

    def events_of(self, type: str) -> list[Obj]:
        with self._lock:
            return [e for e in self.state.events if e["type"] == type]

    def disorder_deliveries(self, *, late: Iterable[str] = (), duplicated: bool = False) -> None:
        """From now on `deliveries_since` holds events of the `late` types back until the next
        delivery (after the newer ones) and sends every event twice: Stripe's webhooks are
        at-least-once, retried with back-off, and not ordered."""
        with self._lock:
            self._late_types, self._duplicated = frozenset(late), duplicated

    def deliveries_since(self, count: int) -> list[Obj]:
        """What one webhook delivery round sends of the events after the first `count`, with
        `disorder_deliveries` applied; held-back events come after the newer ones, next round."""
        with self._lock:
            new = copy.deepcopy(self.state.events[count:])
            out = [e for e in new if e["type"] not in self._late_types] + self._held
            self._held = [e for e in new if e["type"] in self._late_types]
            if self._duplicated:
                out = [copy.deepcopy(e) for e in out for _ in (0, 1)]
            return out

    def events_since(self, count: int) -> list[Obj]:
        """The events emitted after the first `count`, oldest first (a webhook cursor)."""
        with self._lock:
            return copy.deepcopy(self.state.events[count:])

    # -- serving -------------------------------------------------------------------------------

    def render_invoice_pdf(self, invoice_id: str) -> bytes | None:
        """The invoice document at `invoice_pdf` (Stripe hosts it on pay.stripe.com).

        Not Stripe's layout: the facts Stripe's invoice and receipt carry, including the
        brand and last four digits of the card that paid.
        """
        with self._lock:
            invoice = self.state.objects.get(invoice_id)
            if invoice is None or invoice.get("object") != "invoice":
                return None
            currency = str(invoice["currency"]).upper()

            def amount(cents: int) -> str:
                return f"{currency} {cents / 100:,.2f}"

            created = datetime.fromtimestamp(invoice["created"], tz=UTC)
            lines = [
                f"Invoice number: {invoice['number']}",
                f"Status: {invoice['status']}",
                f"Date: {created:%Y-%m-%d %H:%M} UTC",
                f"Customer: {invoice['customer']}",
                f"Billing reason: {invoice['billing_reason']}",
                "",
                "Items:",
                *(
                    f"  {line['description']}: {amount(line['amount'])}"
                    for line in invoice["lines"]["data"]
                ),
                "",
                f"Amount due: {amount(invoice['amount_due'])}",
                f"Amount paid: {amount(invoice['amount_paid'])}",
            ]
            method = self.state.paid_with(invoice_id)
            if method is not None:
                card = method["card"]
                lines.append(f"Paid with: {card['brand']} ending in {card['last4']}")
            return render_text_pdf(
                title=f"Invoice {invoice['number']}",
                heading=f"Invoice {invoice['number']}",
                lines=lines,
                created=created,
            )

    def _serve_file(self, http: BaseHTTPRequestHandler, path: str) -> bool:
        """pay.stripe.com's side: invoice PDFs by their unguessable URL, no API key needed."""
        match = INVOICE_PDF_PATH.match(path)
        if match is None:
            return False
        document = self.render_invoice_pdf(match["id"])
        status, body, kind = (
            (200, document, "application/pdf")
            if document is not None
            else (404, b"Not found", "text/plain")
        )
        http.send_response(status)
        http.send_header("Content-Type", kind)
        http.send_header("Content-Length", str(len(body)))
        http.end_headers()
        http.wfile.write(body)
        return True

    def _serve(self, http: BaseHTTPRequestHandler, method: str) -> None:
        length = int(http.headers.get("Content-Length") or 0)
        raw = http.rfile.read(length).decode("utf-8") if length else ""
        split = urlsplit(http.path)
        if method == "GET" and self._serve_file(http, split.path):
            return
        params = decode_form(raw if method == "POST" else split.query)
        key = http.headers.get("Idempotency-Key")
        with self._lock:
            status, body, extra = self._answer(
                method, split.path, params, key, http.headers.get("Authorization")
            )
        payload = body if isinstance(body, bytes) else json.dumps(body).encode("utf-8")
        http.send_response(status)
        http.send_header("Content-Type", "application/json")
        http.send_header("Content-Length", str(len(payload)))
        http.send_header("Request-Id", f"req_{self.state.new_id('double')}")
        for name, value in extra.items():
            http.send_header(name, value)
        http.end_headers()
        http.wfile.write(payload)

    def _answer(
        self, method: str, path: str, params: Obj, key: str | None, auth: str | None
    ) -> tuple[int, Obj | bytes, dict[str, str]]:
        route, obj_id = self._route(method, path)
        record = Request(method, route.template if route else path, path, params, key)
        name = f"{method} {record.route}"
        self.requests.append(attrs.evolve(record, route=name))
        if self._inject:
            injected = self._inject.pop(0)
            return injected.status, {"error": injected.body}, injected.headers
        if auth != f"Bearer {TEST_KEY}":
            return (
                401,
                {
                    "error": {
                        "type": "invalid_request_error",
                        "message": "Invalid API Key provided.",
                    }
                },
                {},
            )
        if route is None:
            return self._refuse(404, f"Unrecognized request URL ({method}: {path}).")
        problems = check(params, route.params)
        if problems:
            return self._refuse(400, "; ".join(problems))
        if method == "POST":
            if key is None or SDK_GENERATED_KEY.match(key):
                return self._refuse(
                    400, f"{name} was sent without an idempotency key derived from our command."
                )
            fingerprint = hashlib.sha256(
                json.dumps([name, path, params], sort_keys=True).encode()
            ).hexdigest()
            stored = self._idempotency.get(key)
            if stored is not None and self.state.now() - stored.at >= IDEMPOTENCY_KEY_TTL:
                del self._idempotency[key]
                stored = None
            if stored is not None:
                if stored.fingerprint != fingerprint:
                    error = {
                        "type": "idempotency_error",
                        "message": "Keys for idempotent requests can only be used with the same parameters they were first used with.",
                    }
                    return 400, {"error": error}, {}
                return stored.status, stored.body, {"Idempotent-Replayed": "true"}
        try:
            status, body = 200, route.handler(self.state, params, obj_id)
        except ApiError as error:
            status, body = error.status, {"error": error.body}
        encoded = json.dumps(body).encode("utf-8")
        if method == "POST" and key is not None:
            self._idempotency[key] = _Stored(name, fingerprint, status, encoded, self.state.now())
        return status, encoded, {}

    def _refuse(self, status: int, message: str) -> tuple[int, Obj, dict[str, str]]:
        """A request real Stripe would refuse: answer like Stripe and fail the test."""
        self.violations.append(message)
        return status, {"error": {"type": "invalid_request_error", "message": message}}, {}

    @staticmethod
    def _route(method: str, path: str) -> tuple[Route | None, str | None]:
        for route in ROUTES:
            if route.method != method:
                continue
            match = route.pattern.match(path)
            if match:
                return route, match.groupdict().get("id")
        return None, None
