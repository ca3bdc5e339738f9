"""A local Paddle Billing API over real HTTP: paddle-python-sdk talks to it via `PADDLE_API_BASE`.

Every request is checked against the SDK's operation classes (body fields, required fields,
enum values; query names against the list operation's parameters) and refused with Paddle's
error shape when it does not fit; refusals are kept in `violations`. Every request is logged
in `requests` for pinning request counts.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import attrs
import paddle_billing.Resources.Adjustments.Operations as adj
import paddle_billing.Resources.CustomerPortalSessions.Operations as cps
import paddle_billing.Resources.Customers.Operations as cus
import paddle_billing.Resources.NotificationSettings.Operations as ns
import paddle_billing.Resources.Prices.Operations as pri
import paddle_billing.Resources.Products.Operations as pro
import paddle_billing.Resources.Subscriptions.Operations as sub
import paddle_billing.Resources.Transactions.Operations as txn
from paddle_billing import Client
from paddle_billing.Entities.Shared import Action, Status, TransactionStatus
from paddle_billing.Resources.Shared.Operations import Pager
from paddle_billing.Resources.Transactions.Operations.List.Origin import Origin

from responseiq_billing.adapters.fake.clock import ControllableClock
from responseiq_billing.adapters.fake.pdf import render_text_pdf
from responseiq_billing.adapters.paddle.client import build_client
from responseiq_billing.domain.plans import Catalog
from tests.paddle_double.checks import allowed_query, check
from tests.paddle_double.state import ApiError, Obj, PaddleState, new_id, parse, public

TEST_KEY = "pdl_sdbx_apikey_double_000000000000000000"
WEBHOOK_SECRET = "pdl_ntfset_double_secret_0000000000"


@attrs.frozen
class Request:
    method: str
    route: str  # e.g. "PATCH /subscriptions/{id}"
    path: str
    body: Obj | None
    status: int = 0


Handler = Callable[[PaddleState, Obj, dict[str, list[str]], str | None], Any]


@attrs.frozen
class Route:
    method: str
    template: str
    operation: type | None  # the SDK operation the body must fit
    query: frozenset[str]  # the query names the SDK's list operation may send
    handler: Handler

    @property
    def pattern(self) -> re.Pattern[str]:
        return re.compile("^" + self.template.replace("{id}", "(?P<id>[^/]+)") + "$")


def _pager() -> Pager:
    return Pager(after="x")


_LIST_TXN = allowed_query(
    txn.ListTransactions(
        pager=_pager(), customer_ids=["x"], subscription_ids=["x"], ids=["x"],
        statuses=[TransactionStatus.Completed], origins=[Origin.Web], invoice_numbers=["x"],
    )
)  # fmt: skip
_LIST_SUB = allowed_query(sub.ListSubscriptions(pager=_pager(), customer_ids=["x"], ids=["x"]))
_LIST_CUS = allowed_query(cus.ListCustomers(pager=_pager(), emails=["x"], ids=["x"]))
_LIST_PRI = allowed_query(
    pri.ListPrices(pager=_pager(), statuses=[Status.Active], product_ids=["x"], ids=["x"])
)
_LIST_PRO = allowed_query(pro.ListProducts(pager=_pager(), statuses=[Status.Active], ids=["x"]))
_LIST_ADJ = allowed_query(
    adj.ListAdjustments(pager=_pager(), transaction_ids=["x"], action=Action.Refund)
)
_INCLUDE = frozenset({"include"})


def _one(values: dict[str, list[str]], name: str) -> list[str]:
    raw = values.get(name)
    return raw[0].split(",") if raw else []


def _page(
    state: PaddleState, objects: list[Obj], query: dict[str, list[str]], path: str
) -> tuple[list[Obj], Obj]:
    """Paddle's cursor pages: `order_by`, `after` (an id), `per_page`; `next` is a full URL."""
    order = (query.get("order_by") or ["id[asc]"])[0]
    field, _, direction = order.partition("[")
    reverse = direction.rstrip("]") == "desc"
    key = (
        (lambda o: (o[field], o.get("_seq", 0), o["id"])) if field != "id" else (lambda o: o["id"])
    )
    ordered = sorted(objects, key=key, reverse=reverse)
    after = (query.get("after") or [None])[0]
    start = 0
    if after is not None:
        ids = [o["id"] for o in ordered]
        if after not in ids:
            raise ApiError(400, "bad_request", "after is not an id in this list")
        start = ids.index(after) + 1
    per_page = int((query.get("per_page") or ["50"])[0])
    if not 1 <= per_page <= 200:
        raise ApiError(400, "bad_request", "per_page must be between 1 and 200")
    page = ordered[start : start + per_page]
    has_more = start + per_page < len(ordered)
    following = {k: v[0] for k, v in query.items()}
    if page:
        following["after"] = page[-1]["id"]
    meta = {
        "per_page": per_page, "has_more": has_more, "estimated_total": len(ordered),
        "next": f"{state.base_url}{path}?{urlencode(following)}",
    }  # fmt: skip
    return [public(o) for o in page], meta


def _filter(objects: list[Obj], query: dict[str, list[str]], **fields: str) -> list[Obj]:
    for name, attr in fields.items():
        wanted = _one(query, name)
        if wanted:
            objects = [o for o in objects if str(o.get(attr)) in wanted]
    return objects


def _list_transactions(s: PaddleState, _: Obj, q: dict[str, list[str]], __: str | None) -> Any:
    found = _filter(
        list(s.transactions.values()), q, customer_id="customer_id",
        subscription_id="subscription_id", status="status", origin="origin", id="id",
    )  # fmt: skip
    return _page(s, found, q, "/transactions")


def _list_subscriptions(s: PaddleState, _: Obj, q: dict[str, list[str]], __: str | None) -> Any:
    found = _filter(list(s.subscriptions.values()), q, customer_id="customer_id", id="id")
    return _page(s, found, q, "/subscriptions")


def _list_customers(s: PaddleState, _: Obj, q: dict[str, list[str]], __: str | None) -> Any:
    return _page(s, _filter(list(s.customers.values()), q, email="email", id="id"), q, "/customers")


def _list_prices(s: PaddleState, _: Obj, q: dict[str, list[str]], __: str | None) -> Any:
    found = _filter(list(s.prices.values()), q, status="status", product_id="product_id", id="id")
    return _page(s, found, q, "/prices")


def _list_products(s: PaddleState, _: Obj, q: dict[str, list[str]], __: str | None) -> Any:
    return _page(s, _filter(list(s.products.values()), q, status="status", id="id"), q, "/products")


def _list_adjustments(s: PaddleState, _: Obj, q: dict[str, list[str]], __: str | None) -> Any:
    found = _filter(
        list(s.adjustments.values()), q, transaction_id="transaction_id", action="action"
    )
    return _page(s, found, q, "/adjustments")


def _update(objects: Callable[[PaddleState], dict[str, Obj]], kind: str) -> Handler:
    def handler(s: PaddleState, body: Obj, _: dict[str, list[str]], obj_id: str | None) -> Obj:
        found = objects(s).get(obj_id or "")
        if found is None:
            raise ApiError(404, "not_found", f"{kind} {obj_id} not found")
        found.update(body)
        return found

    return handler


def _portal_session(
    s: PaddleState, body: Obj, _: dict[str, list[str]], customer_id: str | None
) -> Obj:
    customer = s.customer(customer_id or "")
    token = new_id("cpls")
    subs = []
    for sub_id in body.get("subscription_ids") or []:
        owned = s.subscription(sub_id)
        if owned["customer_id"] != customer["id"]:
            raise ApiError(400, "bad_request", "subscription belongs to another customer")
        subs.append(
            {
                "id": sub_id,
                "cancel_subscription": f"{s.base_url}/portal/{token}/{sub_id}/cancel",
                "update_subscription_payment_method": f"{s.base_url}/portal/{token}/{sub_id}/payment-method",
            }
        )
    session = {
        "id": token, "customer_id": customer["id"],
        "urls": {"general": {"overview": f"{s.base_url}/portal/{token}"}, "subscriptions": subs},
        "created_at": s.now().strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
    }  # fmt: skip
    s.portal_sessions[token] = session
    return session


def _invoice_pdf(s: PaddleState, _: Obj, __: dict[str, list[str]], txn_id: str | None) -> Obj:
    found = s.transaction(txn_id or "")
    if found["status"] not in ("billed", "paid", "completed", "past_due"):
        raise ApiError(400, "transaction_invoice_not_available", "no invoice for this transaction")
    # Paddle signs a short-lived link per request (its PDF is refused once the link expires).
    # The double's link lasts an hour of its clock and is the same within one clock second,
    # so a listed invoice and one fetched at the same moment compare equal.
    expires = int(s.now().timestamp()) + PDF_LINK_SECONDS
    return {"url": f"{s.base_url}/invoices/{found['id']}.pdf?{_pdf_query(found['id'], expires)}"}


PDF_LINK_SECONDS = 3600


def _pdf_query(txn_id: str, expires: int) -> str:
    signature = hashlib.sha256(f"{txn_id}:{expires}".encode()).hexdigest()[:16]
    return f"expires={expires}&signature={signature}"


def _notification_setting(
    s: PaddleState, body: Obj, _: dict[str, list[str]], __: str | None
) -> Obj:
    setting = {
        "id": new_id("ntfset"), "description": body["description"], "type": body["type"],
        "destination": body["destination"], "active": True, "api_version": 1,
        "include_sensitive_fields": body.get("include_sensitive_fields", False),
        "subscribed_events": [{"name": n, "description": n, "group": n.split(".")[0],
                               "available_versions": [1]} for n in body["subscribed_events"]],
        "endpoint_secret_key": WEBHOOK_SECRET, "traffic_source": body.get("traffic_source", "all"),
    }  # fmt: skip
    s.notification_settings[setting["id"]] = setting
    return setting


def _update_notification_setting(
    s: PaddleState, body: Obj, _: dict[str, list[str]], i: str | None
) -> Obj:
    found = s.notification_settings.get(i or "")
    if found is None:
        raise ApiError(404, "not_found", "notification setting not found")
    for key, value in body.items():
        if key == "subscribed_events":
            value = [{"name": n, "description": n, "group": n.split(".")[0],
                      "available_versions": [1]} for n in value]  # fmt: skip
        found[key] = value
    return found


def _nothing_query(f: Callable[..., Any]) -> Handler:
    return lambda s, body, q, i: f(s, i, body) if body is not None else f(s, i)


ROUTES = [
    Route("GET", "/prices", None, _LIST_PRI, _list_prices),
    Route("POST", "/prices", pri.CreatePrice, frozenset(), lambda s, b, q, i: s.create_price(b)),
    Route("PATCH", "/prices/{id}", pri.UpdatePrice, frozenset(), _update(lambda s: s.prices, "price")),
    Route("GET", "/products", None, _LIST_PRO, _list_products),
    Route("POST", "/products", pro.CreateProduct, frozenset(), lambda s, b, q, i: s.create_product(b)),
    Route("PATCH", "/products/{id}", pro.UpdateProduct, frozenset(), _update(lambda s: s.products, "product")),
    Route("GET", "/customers", None, _LIST_CUS, _list_customers),
    Route("POST", "/customers", cus.CreateCustomer, frozenset(), lambda s, b, q, i: s.create_customer(b)),
    Route("POST", "/customers/{id}/portal-sessions", cps.CreateCustomerPortalSession, frozenset(), _portal_session),
    Route("GET", "/transactions", None, _LIST_TXN, _list_transactions),
    Route("POST", "/transactions", txn.CreateTransaction, _INCLUDE, lambda s, b, q, i: s.create_transaction(b)),
    Route("GET", "/transactions/{id}", None, _INCLUDE, lambda s, b, q, i: s.transaction(i or "")),
    Route("PATCH", "/transactions/{id}", txn.UpdateTransaction, frozenset(), lambda s, b, q, i: s.update_transaction(i or "", b)),
    Route("GET", "/transactions/{id}/invoice", None, frozenset({"disposition"}), _invoice_pdf),
    Route("GET", "/subscriptions", None, _LIST_SUB, _list_subscriptions),
    Route("GET", "/subscriptions/{id}", None, _INCLUDE, lambda s, b, q, i: s.subscription(i or "")),
    Route("PATCH", "/subscriptions/{id}", sub.UpdateSubscription, frozenset(), lambda s, b, q, i: s.update_subscription(i or "", b)),
    Route("PATCH", "/subscriptions/{id}/preview", sub.PreviewUpdateSubscription, frozenset(), lambda s, b, q, i: s.preview_update(i or "", b)),
    Route("POST", "/subscriptions/{id}/cancel", sub.CancelSubscription, frozenset(), lambda s, b, q, i: s.cancel(i or "", b)),
    Route("GET", "/subscriptions/{id}/update-payment-method-transaction", None, frozenset(), lambda s, b, q, i: s.payment_method_change_transaction(i or "")),
    Route("GET", "/adjustments", None, _LIST_ADJ, _list_adjustments),
    Route("POST", "/adjustments", adj.CreateAdjustment, frozenset(), lambda s, b, q, i: s.create_adjustment(b)),
    Route("GET", "/notification-settings", None, frozenset(), lambda s, b, q, i: (list(s.notification_settings.values()), None)),
    Route("POST", "/notification-settings", ns.CreateNotificationSetting, frozenset(), _notification_setting),
    Route("PATCH", "/notification-settings/{id}", ns.UpdateNotificationSetting, frozenset(), _update_notification_setting),
]  # fmt: skip


class PaddleDouble:
    """Start with `start()`, point the SDK at `url` (or use `client()`), stop with `stop()`.

    Test controls: `pay(transaction_id, card)` (the customer on Paddle's checkout),
    `decline_next_payment()`, `advance_to(moment)` (renewals and scheduled cancellations),
    `refunded(transaction_id)`, `events` and `signed(event, at)` for notifications; the
    customer portal's `portal_cancel`, `portal_remove_scheduled_cancel` and
    `portal_update_payment_method`.
    """

    def __init__(self, clock: ControllableClock) -> None:
        self.clock = clock
        self.requests: list[Request] = []
        self.violations: list[str] = []
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.state = PaddleState(clock, "http://127.0.0.1:0")

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self, port: int = 0) -> PaddleDouble:
        """Serve on `port` of 127.0.0.1 (0: any free port), in a thread."""
        double = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # One write per answer, sent at once: headers and body apart meet delayed ACKs
            # (40 ms a request on Linux), which the Gherkin suite's Paddle driver multiplies.
            wbufsize = 1 << 16
            disable_nagle_algorithm = True

            def do_GET(self) -> None:
                double._serve(self, "GET")

            def do_POST(self) -> None:
                double._serve(self, "POST")

            def do_PATCH(self) -> None:
                double._serve(self, "PATCH")

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self._server.daemon_threads = True
        self.state.base_url = self.url
        # A short poll, so that `stop()` (which waits for the next poll) takes no half second.
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    @property
    def url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def client(self) -> Client:
        return build_client(TEST_KEY, api_base=self.url, retries=0)

    # -- controls -----------------------------------------------------------------------------

    def seed_catalog(self, catalog: Catalog) -> dict[tuple[str, str], str]:
        with self.state.locked():
            return {
                (p.plan_id, p.interval.value): self.state.seed_price(p)
                for p in catalog.all_prices()
            }

    def pay(self, transaction_id: str, card: str = "visa") -> Obj:
        with self.state.locked():
            return public(self.state.pay(transaction_id, card))

    def decline_next_payment(self) -> None:
        with self.state.locked():
            self.state.decline_next = True

    def advance_to(self, moment: datetime) -> None:
        self.clock.set(moment)
        with self.state.locked():
            pass

    def refunded(self, transaction_id: str) -> int:
        with self.state.locked():
            return self.state.refunded(transaction_id)

    # -- the customer on Paddle's customer portal ---------------------------------------------
    # Paddle's portal lists payments and invoices, changes a subscription's card, cancels it (at
    # the end of the billing period) and undoes that cancellation; it does not change plans, so
    # there is no control for that. Each control is what the customer's click does to Paddle's state, with the
    # notifications Paddle sends for it.

    def portal_session(self, token: str) -> Obj:
        """A portal session as Paddle created it (its customer; Paddle's has no return URL)."""
        with self.state.lock:
            return public(self.state.portal_sessions[token])

    def portal_cancel(self, subscription_id: str) -> Obj:
        """The portal's Cancel: a cancellation scheduled for the next billing date."""
        with self.state.locked():
            return public(self.state.portal_cancel(subscription_id))

    def portal_remove_scheduled_cancel(self, subscription_id: str) -> Obj:
        """Undoing a scheduled cancellation on the portal's subscription page."""
        with self.state.locked():
            return public(self.state.portal_remove_scheduled_cancel(subscription_id))

    def portal_update_payment_method(self, subscription_id: str, card: str) -> Obj:
        """The portal's Update payment method: Paddle's card page for the subscription (a
        zero-amount payment-method-change transaction), paid with `card`."""
        with self.state.locked():
            txn = self.state.payment_method_change_transaction(subscription_id)
            return public(self.state.pay(txn["id"], card))

    @property
    def events(self) -> list[Obj]:
        with self.state.lock:
            return list(self.state.events)

    @staticmethod
    def signed(payload: str, at: int, secret: str = WEBHOOK_SECRET) -> str:
        """The `Paddle-Signature` header Paddle sends with a notification body."""
        digest = hmac.new(secret.encode(), f"{at}:{payload}".encode(), hashlib.sha256).hexdigest()
        return f"ts={at};h1={digest}"

    @contextmanager
    def recording(self) -> Iterator[list[Request]]:
        start = len(self.requests)
        seen: list[Request] = []
        yield seen
        seen.extend(self.requests[start:])

    def render_invoice_pdf(self, txn_id: str) -> bytes | None:
        with self.state.lock:
            found = self.state.transactions.get(txn_id)
            if found is None or found["status"] not in ("billed", "paid", "completed", "past_due"):
                return None
            totals = found["details"]["totals"]
            number = found["invoice_number"] or found["id"]
            lines = [
                "Paddle.com Market Ltd - merchant of record",
                f"Status: {found['status']}",
                f"Total (tax included): {int(totals['grand_total']) / 100:.2f} {found['currency_code']}",
            ]
            # Paddle's invoice names how it was paid (the payment method of the captured
            # payment), as its invoice page does.
            captured = [p for p in found["payments"] if p["status"] == "captured"]
            card = captured[0]["method_details"]["card"] if captured else None
            if card is not None:
                lines.append(f"Payment method: {card['type'].title()} ending in {card['last4']}")
            created = parse(found["billed_at"] or found["created_at"])
        return render_text_pdf(
            title=f"Invoice {number}", heading=f"Invoice {number}", lines=lines, created=created
        )

    # -- HTTP -----------------------------------------------------------------------------------

    def _serve(self, http: BaseHTTPRequestHandler, method: str) -> None:
        parts = urlsplit(http.path)
        length = int(http.headers.get("Content-Length") or 0)
        raw = http.rfile.read(length) if length else b""
        if method == "GET" and self._serve_page(http, parts.path, parse_qs(parts.query)):
            return
        status, payload = self._answer(http, method, parts.path, parts.query, raw)
        body = json.dumps(payload).encode()
        http.send_response(status)
        http.send_header("Content-Type", "application/json")
        http.send_header("Content-Length", str(len(body)))
        http.end_headers()
        http.wfile.write(body)

    def _serve_page(
        self, http: BaseHTTPRequestHandler, path: str, query: dict[str, list[str]]
    ) -> bool:
        match = re.match(r"^/invoices/(txn_[0-9a-z]+)\.pdf$", path)
        if match:
            expires = (query.get("expires") or ["0"])[0]
            signed = expires.isdigit() and urlencode(
                {"expires": expires, "signature": (query.get("signature") or [""])[0]}
            ) == _pdf_query(match.group(1), int(expires))
            if not signed or int(expires) < self.clock.now().timestamp():
                # A signed link past its time, as the storage behind Paddle's links answers.
                body, kind, status = b"Request has expired", "text/plain", 403
            else:
                pdf = self.render_invoice_pdf(match.group(1))
                body, kind, status = (
                    (pdf, "application/pdf", 200) if pdf else (b"gone", "text/plain", 404)
                )
        elif path in ("/pay",) or path.startswith("/portal/"):
            text = f"Paddle double page {path} {query.get('_ptxn', [''])[0]}"
            body, kind, status = text.encode(), "text/html; charset=utf-8", 200
        else:
            return False
        http.send_response(status)
        http.send_header("Content-Type", kind)
        http.send_header("Content-Length", str(len(body)))
        http.end_headers()
        http.wfile.write(body)
        return True

    def _answer(
        self, http: BaseHTTPRequestHandler, method: str, path: str, query_string: str, raw: bytes
    ) -> tuple[int, Obj]:
        request_id = new_id("req")
        route, obj_id = _route(method, path)
        body: Obj | None = json.loads(raw) if raw else None
        template = route.template if route else path
        try:
            if http.headers.get("Authorization") != f"Bearer {TEST_KEY}":
                raise ApiError(403, "forbidden", "invalid API key")
            if http.headers.get("Paddle-Version") != "1":
                raise ApiError(400, "invalid_field", "Paddle-Version must be 1")
            if route is None:
                raise ApiError(404, "not_found", f"no route {method} {path}")
            query = parse_qs(query_string, keep_blank_values=True)
            problems = [f"unknown query parameter {k}" for k in query if k not in route.query]
            if route.operation is not None:
                problems += check(body or {}, route.operation)
            elif body:
                problems.append("this request takes no body")
            if problems:
                self.violations.extend(f"{method} {template}: {p}" for p in problems)
                raise ApiError(400, "invalid_field", "; ".join(problems))
            with self.state.locked():
                result = route.handler(self.state, body or {}, query, obj_id)
            if isinstance(result, tuple):
                data, pagination = result
                meta: Obj = {"request_id": request_id}
                if pagination is not None:
                    meta["pagination"] = pagination
                answer: tuple[int, Obj] = (200, {"data": data, "meta": meta})
            else:
                status = 201 if method == "POST" and path.count("/") == 1 else 200
                answer = (status, {"data": public(result), "meta": {"request_id": request_id}})
        except ApiError as error:
            answer = (
                error.status,
                {
                    "error": {
                        "type": "request_error", "code": error.code, "detail": error.detail,
                        "documentation_url": f"https://developer.paddle.com/errors/{error.code}",
                    },
                    "meta": {"request_id": request_id},
                },
            )  # fmt: skip
        self.requests.append(Request(method, f"{method} {template}", path, body, answer[0]))
        return answer


def _route(method: str, path: str) -> tuple[Route | None, str | None]:
    for route in ROUTES:
        if route.method != method:
            continue
        match = route.pattern.match(path)
        if match:
            return route, match.groupdict().get("id")
    return None, None
