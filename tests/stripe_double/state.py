"""The Stripe double's memory: just enough of Stripe's objects and rules for the adapter's suite."""

from __future__ import annotations

import copy
import itertools
import secrets
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

from tests.stripe_double.fixtures import resource

Obj = dict[str, Any]

DAY = 86_400
PENDING_UPDATE_TTL = 23 * 3600  # Stripe expires a pending update after 23 hours

# Stripe's test cards by the name the double's controls use.
CARDS: dict[str, tuple[str, str]] = {
    "visa": ("visa", "4242"),
    "mastercard": ("mastercard", "4444"),
    "amex": ("amex", "8431"),
}


class ApiError(Exception):
    """An error answer, shaped like Stripe's `{"error": {...}}` body."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
        decline_code: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.body: Obj = {"type": type, "message": message}
        if code:
            self.body["code"] = code
        if param:
            self.body["param"] = param
        if decline_code:
            self.body["decline_code"] = decline_code


def missing(kind: str, obj_id: str, param: str = "id") -> ApiError:
    return ApiError(404, f"No such {kind}: '{obj_id}'", code="resource_missing", param=param)


# What Stripe answers when a request names an archived price where it sells one (Checkout line
# items, subscription items, schedule phases, an invoice preview's items): 400
# `invalid_request_error`, no `code`, `param` the field that named it.
INACTIVE_PRICE = "The price specified is inactive. This field only accepts active prices."
ONE_TIME_PRICE = (
    "The price specified is set to `type=one_time` but this field only accepts prices with "
    "`type=recurring`."
)


def add_months(moment: int, months: int) -> int:
    """Stripe's anchored month arithmetic on a unix timestamp (day clamped to month end)."""
    import calendar

    start = datetime.fromtimestamp(moment, tz=UTC)
    index = start.month - 1 + months
    year, month = start.year + index // 12, index % 12 + 1
    day = min(start.day, calendar.monthrange(year, month)[1])
    return int(start.replace(year=year, month=month, day=day).timestamp())


def interval_months(price: Obj) -> int:
    recurring = price.get("recurring") or {}
    count = int(recurring.get("interval_count") or 1)
    return count * (12 if recurring.get("interval") == "year" else 1)


def share(amount: int, part: int, whole: int) -> int:
    """amount * part / whole, rounded half away from zero, in integers."""
    sign = -1 if amount < 0 else 1
    return sign * ((2 * abs(amount) * part + whole) // (2 * whole))


class StripeState:
    """Objects by id, plus the rules the adapter relies on. Callers hold the double's lock."""

    def __init__(self, now: Callable[[], int]) -> None:
        self._clock_now = now
        self._at: int | None = None  # while catching up, the instant being caught up
        self.objects: dict[str, Obj] = {}
        self._order: dict[str, int] = {}
        self._seq = itertools.count()
        self.next_payment: list[str] = []  # queued outcomes: "declined" / "requires_action"
        self.events: list[Obj] = []
        # Where invoice PDFs are served (Stripe: pay.stripe.com); the running double serves them.
        self.files_base = "https://pay.stripe.com"

    def now(self) -> int:
        """The current unix time; while time is caught up, the moment each change happens at
        (a test clock moved past two renewals bills each on its own date)."""
        return self._at if self._at is not None else self._clock_now()

    # -- storage -------------------------------------------------------------------------

    def new_id(self, prefix: str) -> str:
        return f"{prefix}_{secrets.token_hex(8)}"

    def put(self, obj: Obj) -> Obj:
        self.objects[obj["id"]] = obj
        self._order.setdefault(obj["id"], next(self._seq))
        return obj

    def get(self, obj_id: str, kind: str, label: str | None = None) -> Obj:
        obj = self.objects.get(obj_id)
        if obj is None or obj.get("object") != kind:
            raise missing(label or kind, obj_id)
        return obj

    def all(self, kind: str, where: Callable[[Obj], bool] = lambda _: True) -> list[Obj]:
        """Every object of a kind, newest first (Stripe's list order)."""
        found = [o for o in self.objects.values() if o.get("object") == kind and where(o)]
        return sorted(
            found, key=lambda o: (o.get("created", 0), self._order[o["id"]]), reverse=True
        )

    def emit(self, type: str, obj: Obj, previous: Obj | None = None) -> None:
        """Record the event Stripe would send (snapshot of the object at this instant)."""
        data: Obj = {"object": copy.deepcopy(self._public(obj))}
        if previous is not None:
            data["previous_attributes"] = previous
        self.events.append(
            resource(
                "event",
                id=self.new_id("evt"),
                type=type,
                # Stamped when sent, as a test clock's catch-up sends them once it is done;
                # the objects inside carry the moments their changes happened at.
                created=self._clock_now(),
                data=data,
                api_version="2026-10-28.endive",
            )
        )

    # -- customers and payment methods -----------------------------------------------------

    def create_customer(self, params: Obj) -> Obj:
        customer = resource(
            "customer",
            id=self.new_id("cus"),
            created=self.now(),
            metadata=dict(params.get("metadata") or {}),
            email=params.get("email"),
            name=params.get("name"),
            invoice_prefix=secrets.token_hex(4).upper(),
            next_invoice_sequence=1,
            test_clock=None,
            discount=None,
        )
        customer["invoice_settings"]["default_payment_method"] = None
        self.emit("customer.created", customer)
        return self.put(customer)

    def update_customer(self, customer_id: str, params: Obj) -> Obj:
        customer = self.get(customer_id, "customer")
        settings = params.get("invoice_settings") or {}
        previous: Obj = {}
        if "default_payment_method" in settings:
            pm_id = settings["default_payment_method"] or None
            if pm_id is not None:
                pm = self.get(pm_id, "payment_method")
                if pm.get("customer") != customer_id:
                    raise ApiError(
                        400,
                        f"The payment method `{pm_id}` must be attached to the customer.",
                        param="invoice_settings[default_payment_method]",
                    )
            before = customer["invoice_settings"]["default_payment_method"]
            if before != pm_id:
                # Stripe names each changed field's old value in `previous_attributes`.
                previous["invoice_settings"] = {"default_payment_method": before}
            customer["invoice_settings"]["default_payment_method"] = pm_id
        if "metadata" in params:
            previous["metadata"] = copy.deepcopy(customer["metadata"])
            customer["metadata"].update(params["metadata"] or {})
        self.emit("customer.updated", customer, previous)
        return customer

    def add_card(self, customer_id: str, card: str) -> Obj:
        brand, last4 = CARDS[card]
        pm = resource(
            "payment_method",
            id=self.new_id("pm"),
            created=self.now(),
            customer=customer_id,
            metadata={},
            type="card",
        )
        pm["card"].update(brand=brand, display_brand=brand, last4=last4)
        pm["card"]["networks"]["available"] = [brand]
        self.put(pm)
        self.emit("payment_method.attached", pm)
        return pm

    def _charge(self) -> str:
        """The outcome of the next payment attempt: succeeded unless a failure was queued."""
        return self.next_payment.pop(0) if self.next_payment else "succeeded"

    # -- catalog -------------------------------------------------------------------------

    def create_product(self, params: Obj) -> Obj:
        product = resource(
            "product",
            id=params.get("id") or self.new_id("prod"),
            created=self.now(),
            updated=self.now(),
            name=params["name"],
            description=params.get("description"),
            metadata=dict(params.get("metadata") or {}),
            default_price=None,
            active=params.get("active", "true") == "true",
            type="service",
            package_dimensions=None,
        )
        if product["id"] in self.objects:
            raise ApiError(400, "Product already exists.", code="resource_already_exists")
        return self.put(product)

    def update_product(self, product_id: str, params: Obj) -> Obj:
        product = self.get(product_id, "product")
        for field in ("name", "description"):
            if field in params:
                product[field] = params[field]
        if "metadata" in params:
            product["metadata"].update(params["metadata"] or {})
        if "active" in params:
            product["active"] = params["active"] == "true"
        product["updated"] = self.now()
        return product

    def _take_lookup_key(self, key: str, transfer: bool, keep: str | None = None) -> None:
        holder = [p for p in self.all("price") if p.get("lookup_key") == key and p["id"] != keep]
        if holder and not transfer:
            raise ApiError(
                400,
                f"A price (`{holder[0]['id']}`) already uses that lookup key.",
                param="lookup_key",
            )
        for price in holder:
            price["lookup_key"] = None

    def create_price(self, params: Obj) -> Obj:
        product_id = params.get("product")
        if product_id is None:
            raise ApiError(400, "Missing required param: product.", param="product")
        self.get(product_id, "product")
        recurring = params.get("recurring") or None
        key = params.get("lookup_key")
        if key:
            self._take_lookup_key(key, params.get("transfer_lookup_key") == "true")
        amount = int(params["unit_amount"])
        price = resource(
            "price",
            id=self.new_id("price"),
            created=self.now(),
            currency=params["currency"].lower(),
            unit_amount=amount,
            unit_amount_decimal=str(amount),
            product=product_id,
            lookup_key=key or None,
            nickname=params.get("nickname"),
            metadata=dict(params.get("metadata") or {}),
            active=params.get("active", "true") == "true",
            transform_quantity=None,
            type="recurring" if recurring else "one_time",
        )
        if recurring:
            price["recurring"] = {
                "interval": recurring["interval"],
                "interval_count": int(recurring.get("interval_count") or 1),
                "meter": None,
                "usage_type": "licensed",
                "trial_period_days": None,
            }
        else:
            price["recurring"] = None
        return self.put(price)

    def update_price(self, price_id: str, params: Obj) -> Obj:
        price = self.get(price_id, "price")
        if "lookup_key" in params:
            key = params["lookup_key"] or None
            if key:
                self._take_lookup_key(key, params.get("transfer_lookup_key") == "true", price_id)
            price["lookup_key"] = key
        if "active" in params:
            price["active"] = params["active"] == "true"
        for field in ("nickname",):
            if field in params:
                price[field] = params[field] or None
        if "metadata" in params:
            price["metadata"].update(params["metadata"] or {})
        return price

    def list_prices(self, params: Obj) -> list[Obj]:
        keys = params.get("lookup_keys")
        active = params.get("active")
        product = params.get("product")

        def keep(p: Obj) -> bool:
            return (
                (keys is None or p.get("lookup_key") in keys)
                and (active is None or p["active"] == (active == "true"))
                and (product is None or p["product"] == product)
            )

        return self.all("price", keep)

    def usable_price(self, price_id: str, param: str, *, in_place: Iterable[str] = ()) -> Obj:
        """A price named by a request parameter, checked as Stripe checks one it would sell.

        An unknown id is 400 `resource_missing` on that parameter (a body reference, not a
        path: 400, not 404); an archived one (`active: false`) is 400 with Stripe's message,
        unless it is already in place (`in_place`: the price the subscription or the
        schedule's phases already carry, which their subscribers keep paying); a one-time
        price is refused where a recurring one is needed.
        """
        price = self.objects.get(price_id)
        if price is None or price.get("object") != "price":
            raise ApiError(
                400, f"No such price: '{price_id}'", code="resource_missing", param=param
            )
        if not price["active"] and price_id not in set(in_place):
            raise ApiError(400, INACTIVE_PRICE, param=param)
        if price.get("recurring") is None:
            raise ApiError(400, ONE_TIME_PRICE, param=param)
        return price

    # -- checkout ------------------------------------------------------------------------

    def create_checkout(self, params: Obj) -> Obj:
        mode = params.get("mode")
        ui_mode = params.get("ui_mode", "hosted_page")
        if ui_mode not in ("hosted_page", "embedded_page", "elements", "form"):
            raise ApiError(400, f"Invalid ui_mode: {ui_mode}", param="ui_mode")
        if ui_mode == "hosted_page" and "return_url" in params:
            raise ApiError(
                400, "return_url is not allowed with ui_mode=hosted_page.", param="return_url"
            )
        if ui_mode != "hosted_page":
            for field in ("success_url", "cancel_url"):
                if field in params:
                    raise ApiError(
                        400, f"{field} is not allowed with ui_mode={ui_mode}.", param=field
                    )
            if ui_mode == "embedded_page" and "return_url" not in params:
                raise ApiError(400, "return_url is required for embedded_page.", param="return_url")
        customer_id = params.get("customer")
        if customer_id:
            self.get(customer_id, "customer")
        session_id = f"cs_test_{secrets.token_hex(16)}"
        session = resource(
            "checkout.session",
            id=session_id,
            created=self.now(),
            expires_at=self.now() + DAY,
            mode=mode,
            ui_mode=ui_mode,
            customer=customer_id,
            client_reference_id=params.get("client_reference_id"),
            success_url=params.get("success_url"),
            cancel_url=params.get("cancel_url"),
            return_url=params.get("return_url"),
            url=f"https://checkout.stripe.com/c/pay/{session_id}"
            if ui_mode == "hosted_page"
            else None,
            client_secret=None
            if ui_mode == "hosted_page"
            else f"{session_id}_secret_{secrets.token_hex(8)}",
            payment_intent=None,
            setup_intent=None,
            subscription=None,
            invoice=None,
            status="open",
            payment_status="unpaid",
            currency=params.get("currency"),
            metadata=dict(params.get("metadata") or {}),
            amount_subtotal=None,
            amount_total=None,
            shipping_address_collection=None,
            shipping_cost=None,
            total_details=None,
            currency_conversion=None,
        )
        if mode == "subscription":
            items = params.get("line_items") or []
            if len(items) != 1:
                raise ApiError(
                    400, "The double supports exactly one line item.", param="line_items"
                )
            price = self.usable_price(items[0].get("price") or "", "line_items[0][price]")
            if customer_id is None:
                raise ApiError(
                    400, "The double needs `customer` in subscription mode.", param="customer"
                )
            session["_line_price"] = price["id"]
            session["_subscription_metadata"] = dict(
                (params.get("subscription_data") or {}).get("metadata") or {}
            )
            session["currency"] = price["currency"]
            session["amount_total"] = session["amount_subtotal"] = price["unit_amount"]
        elif mode == "setup":
            if not params.get("currency"):
                raise ApiError(400, "currency is required in setup mode.", param="currency")
            intent = self.put(
                resource(
                    "setup_intent",
                    id=self.new_id("seti"),
                    created=self.now(),
                    customer=customer_id,
                    status="requires_payment_method",
                    payment_method=None,
                    last_setup_error=None,
                    next_action=None,
                    usage="off_session",
                )
            )
            intent["client_secret"] = f"{intent['id']}_secret_{secrets.token_hex(8)}"
            session["setup_intent"] = intent["id"]
        else:
            raise ApiError(
                400, "The double supports mode=subscription and mode=setup.", param="mode"
            )
        return self.put(session)

    def complete_checkout(self, session_id: str, *, card: str, outcome: str) -> Obj:
        """The customer pays (or saves a card) on Stripe's page."""
        session = self.get(session_id, "checkout.session")
        if session["status"] != "open":
            raise ValueError(f"checkout {session_id} is {session['status']}, not open")
        if session["mode"] == "subscription" and outcome == "succeeded":
            outcome = self._charge()  # the first payment is taken on the page
        if outcome != "succeeded":
            return session  # Checkout shows the decline; the session stays open
        pm = self.add_card(session["customer"], card)
        if session["mode"] == "setup":
            intent = self.get(session["setup_intent"], "setup_intent")
            intent.update(status="succeeded", payment_method=pm["id"])
        else:
            sub = self._start_subscription(session, pm)
            session.update(
                subscription=sub["id"], invoice=sub["latest_invoice"], payment_status="paid"
            )
        session["status"] = "complete"
        self.emit("checkout.session.completed", self._public(session))
        return session

    def expire_checkout(self, session_id: str) -> Obj:
        """`POST /v1/checkout/sessions/{id}/expire`: only an open session can be expired; an
        expired one can no longer be completed (`complete_checkout` refuses it)."""
        session = self.get(session_id, "checkout.session")
        if session["status"] != "open":
            raise ApiError(
                400,
                'Only Checkout Sessions with a status in ["open"] can be expired. '
                f"This Checkout Session has a status of {session['status']}.",
            )
        session["status"] = "expired"
        self.emit("checkout.session.expired", self._public(session))
        return session

    def _start_subscription(self, session: Obj, pm: Obj) -> Obj:
        price = self.get(session["_line_price"], "price")
        now = self.now()
        sub_id = self.new_id("sub")
        item: Obj = {
            "id": self.new_id("si"),
            "object": "subscription_item",
            "created": now,
            "discounts": [],
            "metadata": {},
            "price": price["id"],  # a reference, shown as the price is now (`_public`)
            "quantity": 1,
            "subscription": sub_id,
            "tax_rates": [],
            "current_period_start": now,
            "current_period_end": add_months(now, interval_months(price)),
            "billing_thresholds": None,
        }
        sub = resource(
            "subscription",
            id=sub_id,
            created=now,
            start_date=now,
            billing_cycle_anchor=now,
            billing_cycle_anchor_config=None,
            customer=session["customer"],
            currency=price["currency"],
            metadata=session["_subscription_metadata"],
            status="active",
            cancel_at_period_end=False,
            cancel_at=None,
            canceled_at=None,
            ended_at=None,
            trial_start=None,
            trial_end=None,
            pending_update=None,
            pending_setup_intent=None,
            next_pending_invoice_item_invoice=None,
            pause_collection=None,
            pending_invoice_item_interval=None,
            transfer_data=None,
            schedule=None,
            default_payment_method=pm["id"],
            latest_invoice=None,
            billing_schedules=[],
            test_clock=None,
        )
        sub["items"] = {
            "object": "list",
            "data": [item],
            "has_more": False,
            "url": f"/v1/subscription_items?subscription={sub_id}",
        }
        self.put(sub)
        lines = [
            self._line(
                sub,
                price["unit_amount"],
                price,
                item["current_period_start"],
                item["current_period_end"],
                False,
            )
        ]
        invoice = self._invoice(sub, "subscription_create", lines)
        self._pay(invoice, "succeeded")
        sub["latest_invoice"] = invoice["id"]
        self.emit("customer.subscription.created", sub)
        return sub

    # -- invoices ------------------------------------------------------------------------

    def _line(
        self, sub: Obj, amount: int, price: Obj, start: int, end: int, proration: bool
    ) -> Obj:
        return {
            "id": self.new_id("il"),
            "object": "line_item",
            "amount": amount,
            "currency": price["currency"],
            "description": f"{'Remaining time on' if amount >= 0 else 'Unused time on'} {price.get('lookup_key')}",
            "period": {"start": start, "end": end},
            "quantity": 1,
            "livemode": False,
            "metadata": {},
            "discountable": not proration,
            "discounts": [],
            "discount_amounts": [],
            "pricing": {
                "type": "price_details",
                "price_details": {"price": price["id"], "product": price["product"]},
                "unit_amount_decimal": str(price["unit_amount"]),
            },
            "parent": {
                "type": "subscription_item_details",
                "subscription_item_details": {
                    "invoice_item": None,
                    "proration": proration,
                    "proration_details": {"credited_items": None},
                    "subscription": sub["id"],
                    "subscription_item": sub["items"]["data"][0]["id"],
                },
                "invoice_item_details": None,
            },
            "subtotal": amount,
            "taxes": [],
            "pretax_credit_amounts": [],
        }

    def _invoice(self, sub: Obj, reason: str, lines: list[Obj], *, preview: bool = False) -> Obj:
        """An invoice of `lines`, finalized (a preview is a draft and changes nothing).

        The customer's balance applies at finalization: a credit (negative balance) lowers
        the amount due, and a negative total is not paid out but added to the balance as
        credit for the next invoice (Stripe's customer invoice balance).
        """
        customer = self.get(sub["customer"], "customer")
        total = sum(line["amount"] for line in lines)
        balance = int(customer.get("balance") or 0)
        due = max(total + balance, 0)
        inv_id = f"upcoming_{self.new_id('in')}" if preview else self.new_id("in")
        number = None
        if not preview:
            number = f"{customer['invoice_prefix']}-{customer['next_invoice_sequence']:04d}"
            customer["next_invoice_sequence"] += 1
        for line in lines:
            line["invoice"] = inv_id
        invoice = resource(
            "invoice",
            id=inv_id,
            created=self.now(),
            customer=sub["customer"],
            currency=sub["currency"],
            billing_reason=reason,
            number=number,
            status="draft" if preview else "open",
            amount_due=due,
            amount_paid=0,
            amount_remaining=due,
            amount_overpaid=0,
            subtotal=total,
            subtotal_excluding_tax=total,
            total=total,
            total_excluding_tax=total,
            starting_balance=balance,
            ending_balance=min(total + balance, 0) if not preview else None,
            attempted=False,
            attempt_count=0,
            auto_advance=not preview,
            due_date=None,
            effective_at=None if preview else self.now(),
            period_start=self.now(),
            period_end=self.now(),
            last_finalization_error=None,
            from_invoice=None,
            shipping_cost=None,
            next_payment_attempt=None,
            webhooks_delivered_at=None,
            invoice_pdf=None
            if preview
            else f"{self.files_base}/invoice/acct_double/test_{inv_id}/pdf",
            hosted_invoice_url=None
            if preview
            else f"https://invoice.stripe.com/i/acct_double/test_{inv_id}",
            parent={
                "type": "subscription_details",
                "quote_details": None,
                "subscription_details": {
                    "metadata": dict(sub.get("metadata") or {}),
                    "subscription": sub["id"],
                },
            },
            status_transitions={
                "finalized_at": None if preview else self.now(),
                "marked_uncollectible_at": None,
                "paid_at": None,
                "voided_at": None,
            },
        )
        invoice.pop("subscription", None)  # moved to parent.subscription_details in this API
        invoice["lines"] = {
            "object": "list",
            "data": lines,
            "has_more": False,
            "url": f"/v1/invoices/{inv_id}/lines",
        }
        if not preview:
            self.put(invoice)
            self.emit("invoice.finalized", invoice)
            if invoice["ending_balance"] != balance:
                customer["balance"] = invoice["ending_balance"]
                self.emit("customer.updated", customer, {"balance": balance})
        return invoice

    def _settle_nothing_due(self, invoice: Obj) -> None:
        """An invoice with nothing due is paid at finalization, with no payment at all."""
        invoice.update(status="paid", attempted=True, amount_paid=0, amount_remaining=0)
        invoice["status_transitions"]["paid_at"] = self.now()
        self.emit("invoice.paid", invoice)

    def _pay(self, invoice: Obj, outcome: str | None = None) -> str:
        """Attempt to pay an open invoice; returns the payment intent status."""
        outcome = outcome or self._charge()
        invoice["attempted"] = True
        invoice["attempt_count"] += 1
        if invoice["amount_due"] == 0:
            outcome = "succeeded"
        status = {
            "succeeded": "succeeded",
            "declined": "requires_payment_method",
            "requires_action": "requires_action",
        }[outcome]
        intent = self.put(
            resource(
                "payment_intent",
                id=self.new_id("pi"),
                created=self.now(),
                amount=invoice["amount_due"],
                amount_received=invoice["amount_due"] if status == "succeeded" else 0,
                currency=invoice["currency"],
                customer=invoice["customer"],
                status=status,
                last_payment_error=None
                if status != "requires_payment_method"
                else {
                    "type": "card_error",
                    "code": "card_declined",
                    "decline_code": "generic_decline",
                    "message": "Your card was declined.",
                },
                next_action=None if status != "requires_action" else {"type": "use_stripe_sdk"},
                canceled_at=None,
                transfer_data=None,
                payment_method=self._paying_method(invoice),
            )
        )
        intent["client_secret"] = f"{intent['id']}_secret_{secrets.token_hex(8)}"
        payment = self.put(
            resource(
                "invoice_payment",
                id=self.new_id("inpay"),
                created=self.now(),
                invoice=invoice["id"],
                currency=invoice["currency"],
                amount_requested=invoice["amount_due"],
                amount_paid=invoice["amount_due"] if status == "succeeded" else None,
                is_default=True,
                livemode=False,
                payment={"type": "payment_intent", "payment_intent": intent["id"]},
                status="paid" if status == "succeeded" else "open",
                status_transitions={
                    "canceled_at": None,
                    "paid_at": self.now() if status == "succeeded" else None,
                },
            )
        )
        del payment  # stored; listed through /v1/invoice_payments
        if status == "succeeded":
            invoice.update(status="paid", amount_paid=invoice["amount_due"], amount_remaining=0)
            invoice["status_transitions"]["paid_at"] = self.now()
            self.emit("invoice.paid", invoice)
        elif status == "requires_action":
            self.emit("invoice.payment_action_required", invoice)
        else:
            self.emit("invoice.payment_failed", invoice)
        return status

    def _paying_method(self, invoice: Obj) -> str | None:
        """The card a subscription invoice is charged to: the subscription's own default
        payment method wins over the customer's `invoice_settings.default_payment_method`."""
        sub = self.objects.get(invoice["parent"]["subscription_details"]["subscription"])
        own = sub.get("default_payment_method") if sub is not None else None
        if own:
            return str(own)
        customer = self.get(invoice["customer"], "customer")
        found = customer["invoice_settings"].get("default_payment_method")
        return str(found) if found else None

    def paid_with(self, invoice_id: str) -> Obj | None:
        """The card payment method that paid an invoice, if it was paid."""
        for payment in self.all("invoice_payment", lambda p: p["invoice"] == invoice_id):
            if payment["status"] != "paid":
                continue
            intent = self.get(payment["payment"]["payment_intent"], "payment_intent")
            if intent.get("payment_method"):
                return self.get(intent["payment_method"], "payment_method")
        return None

    def list_invoices(self, params: Obj) -> list[Obj]:
        customer, sub = params.get("customer"), params.get("subscription")
        status = params.get("status")

        def keep(inv: Obj) -> bool:
            return (
                (customer is None or inv["customer"] == customer)
                and (sub is None or inv["parent"]["subscription_details"]["subscription"] == sub)
                and (status is None or inv["status"] == status)
            )

        return self.all("invoice", keep)

    # -- subscriptions -------------------------------------------------------------------

    def _price_of(self, sub: Obj) -> Obj:
        return self.get(sub["items"]["data"][0]["price"], "price")

    @staticmethod
    def _next_renewal(sub: Obj, price: Obj, after: int) -> int:
        """The first renewal after `after`, counted from the billing cycle anchor: a cycle
        anchored on the 31st renews on Feb 28, then on Mar 31 (not Mar 28)."""
        anchor, months, n = int(sub["billing_cycle_anchor"]), interval_months(price), 1
        while add_months(anchor, n * months) <= after:
            n += 1
        return add_months(anchor, n * months)

    def _period(self, sub: Obj) -> tuple[int, int]:
        item = sub["items"]["data"][0]
        return int(item["current_period_start"]), int(item["current_period_end"])

    # -- a cancellation date and its prorations ----------------------------------------------
    #
    # `cancel_at` (API reference, stripe-python 16.1 at 2026-10-28.endive): "If set to a date
    # before the current period ends, this will cause a proration if prorations have been
    # enabled using `proration_behavior`" (default `create_prorations`, which adds prorations
    # to the next invoice as pending invoice items). "If set during a future period, this
    # will always cause a proration for that period." At the date the subscription ends, and
    # "if you've set the subscription to cancel at the end of the period, any pending
    # prorations will also be left in place and collected" then (Cancel a subscription): a
    # final invoice whose negative total goes to the customer's balance, never to the card
    # ("If you set a custom cancellation date, you can't provide a refund. A credit proration
    # is always generated", Cancel subscriptions guide).

    def _cut_short_at(self, sub: Obj) -> int | None:
        """The instant a cancellation date cuts the current period short; None if none does."""
        at = sub.get("cancel_at")
        start, end = self._period(sub)
        return int(at) if at is not None and start < int(at) < end else None

    def _ends_on_its_date(self, sub: Obj) -> bool:
        return self._cut_short_at(sub) is not None

    def _prorate_cancellation(self, sub: Obj, cut_before: int | None) -> None:
        """Prorations for a moved cancellation date (`create_prorations`): the time a date
        used to cut off is charged back, the time the new one cuts off is credited."""
        cut_after = self._cut_short_at(sub)
        if cut_after == cut_before:
            return
        if cut_before is not None:
            self._pending_proration(sub, cut_before, credit=False)
        if cut_after is not None:
            self._pending_proration(sub, cut_after, credit=True)

    def _pending_proration(self, sub: Obj, cut: int, *, credit: bool) -> Obj:
        """A pending proration invoice item for the current period's time after `cut`."""
        price = self._price_of(sub)
        start, end = self._period(sub)
        amount = share(price["unit_amount"], end - cut, end - start) * (-1 if credit else 1)
        since = datetime.fromtimestamp(cut, tz=UTC).strftime("%d %b %Y")
        item = resource(
            "invoiceitem",
            id=self.new_id("ii"),
            amount=amount,
            currency=price["currency"],
            customer=sub["customer"],
            customer_account=None,
            date=self.now(),
            description=f"{'Unused' if credit else 'Remaining'} time on "
            f"{price.get('lookup_key') or price['id']} after {since}",
            discountable=False,
            discounts=[],
            invoice=None,
            livemode=False,
            metadata={},
            net_amount=amount,
            period={"start": cut, "end": end},
            proration=True,
            proration_details={"credited_items": None},
            quantity=1,
            quantity_decimal="1",
            test_clock=None,
            parent={
                "type": "subscription_details",
                "subscription_details": {
                    "subscription": sub["id"],
                    "subscription_item": sub["items"]["data"][0]["id"],
                },
            },
            pricing={
                "type": "price_details",
                "price_details": {"price": price["id"], "product": price["product"]},
                "unit_amount_decimal": str(price["unit_amount"]),
            },
        )
        self.put(item)
        self.emit("invoiceitem.created", item)
        return item

    def _pending_items(self, sub: Obj) -> list[Obj]:
        """The subscription's invoice items not yet on an invoice, oldest first."""
        found = self.all(
            "invoiceitem",
            lambda i: (
                i["invoice"] is None
                and i["parent"]["subscription_details"]["subscription"] == sub["id"]
            ),
        )
        return list(reversed(found))

    def _item_line(self, item: Obj) -> Obj:
        """An invoice line for a pending invoice item, as the invoice that collects it shows it."""
        return {
            "id": self.new_id("il"),
            "object": "line_item",
            "amount": item["amount"],
            "currency": item["currency"],
            "description": item["description"],
            "period": dict(item["period"]),
            "quantity": 1,
            "livemode": False,
            "metadata": {},
            "discountable": False,
            "discounts": [],
            "discount_amounts": [],
            "pricing": copy.deepcopy(item["pricing"]),
            "parent": {
                "type": "invoice_item_details",
                "invoice_item_details": {
                    "invoice_item": item["id"],
                    "proration": item["proration"],
                    "proration_details": {"credited_items": None},
                    "subscription": item["parent"]["subscription_details"]["subscription"],
                },
                "subscription_item_details": None,
            },
            "subtotal": item["amount"],
            "taxes": [],
            "pretax_credit_amounts": [],
        }

    def _invoice_with_pending(self, sub: Obj, reason: str, lines: list[Obj]) -> Obj:
        """An invoice of `lines` that also collects the subscription's pending items."""
        items = self._pending_items(sub)
        invoice = self._invoice(sub, reason, lines + [self._item_line(i) for i in items])
        for item in items:
            item["invoice"] = invoice["id"]
        return invoice

    def proration_lines(self, sub: Obj, new_price: Obj, at: int) -> tuple[list[Obj], bool]:
        """Stripe's proration of an immediate price change at `at`: credit and charge lines."""
        old = self._price_of(sub)
        start, end = self._period(sub)
        if not start <= at <= end:
            raise ApiError(
                400,
                "proration_date must be within the current billing period.",
                param="proration_date",
            )
        whole, remaining = end - start, end - at
        credit = self._line(sub, -share(old["unit_amount"], remaining, whole), old, at, end, True)
        resets = interval_months(new_price) != interval_months(old)
        if resets:
            now = self.now()
            charge = self._line(
                sub,
                new_price["unit_amount"],
                new_price,
                now,
                add_months(now, interval_months(new_price)),
                True,
            )
        else:
            charge = self._line(
                sub, share(new_price["unit_amount"], remaining, whole), new_price, at, end, True
            )
        return [credit, charge], resets

    def list_subscriptions(self, params: Obj) -> list[Obj]:
        customer, status = params.get("customer"), params.get("status")

        def keep(sub: Obj) -> bool:
            if customer is not None and sub["customer"] != customer:
                return False
            if status == "all":
                return True
            if status is None:
                return bool(sub["status"] != "canceled")
            return bool(sub["status"] == status)

        return self.all("subscription", keep)

    def cancel_subscription(self, sub_id: str, params: Obj) -> Obj:
        """`DELETE /v1/subscriptions/{id}`: the subscription ends now and never bills again."""
        sub = self.get(sub_id, "subscription")
        if sub["status"] in ("canceled", "incomplete_expired"):
            # Stripe answers a second cancel as if the subscription no longer existed.
            raise missing("subscription", sub_id)
        if params.get("invoice_now") == "true" or params.get("prorate") == "true":
            raise ApiError(400, "The double cancels without a final invoice or proration.")
        now = self.now()
        schedule = self.objects.get(sub.get("schedule") or "")
        if schedule is not None:
            schedule.update(status="canceled", canceled_at=now, current_phase=None)
            self.emit("subscription_schedule.canceled", schedule)
            sub["schedule"] = None
        sub.update(
            status="canceled",
            canceled_at=now,
            ended_at=now,
            cancel_at=None,
            pending_update=None,
        )
        self.emit("customer.subscription.deleted", sub)
        # "If the subscription is set to cancel immediately, pending prorations will be removed."
        for item in self._pending_items(sub):
            del self.objects[item["id"]]
            self.emit("invoiceitem.deleted", item)
        return sub

    # -- refunds -------------------------------------------------------------------------

    def create_refund(self, params: Obj) -> Obj:
        """`POST /v1/refunds` for a payment intent: what is left of its amount, or `amount`."""
        intent_id = params.get("payment_intent")
        if not intent_id:
            raise ApiError(
                400, "The double refunds by payment_intent only.", param="payment_intent"
            )
        intent = self.get(intent_id, "payment_intent")
        if intent["status"] != "succeeded":
            raise ApiError(
                400,
                f"This PaymentIntent ({intent_id}) does not have a successful charge to refund.",
                param="payment_intent",
            )
        left = int(intent["amount_received"]) - int(intent.get("_amount_refunded", 0))
        if left <= 0:
            raise ApiError(
                400,
                f"Charge for PaymentIntent {intent_id} has already been refunded.",
                code="charge_already_refunded",
            )
        amount = int(params.get("amount") or left)
        if not 0 < amount <= left:
            raise ApiError(
                400, f"Refund amount ({amount}) is more than what is left ({left}).", param="amount"
            )
        intent["_amount_refunded"] = int(intent.get("_amount_refunded", 0)) + amount
        refund = resource(
            "refund",
            id=self.new_id("re"),
            created=self.now(),
            amount=amount,
            currency=intent["currency"],
            charge=None,  # the double keeps no charge objects; the intent names the payment
            payment_intent=intent_id,
            customer=intent.get("customer"),
            payment_method=intent.get("payment_method"),
            metadata=dict(params.get("metadata") or {}),
            reason=params.get("reason"),
            status="succeeded",
        )
        self.put(refund)
        self.emit("refund.created", refund)
        return refund

    def refunded(self, invoice_id: str) -> int:
        """What has been refunded of an invoice's payments, in minor units."""
        total = 0
        for payment in self.all("invoice_payment", lambda p: p["invoice"] == invoice_id):
            intent = self.objects.get(payment["payment"].get("payment_intent") or "")
            if intent is not None:
                total += int(intent.get("_amount_refunded", 0))
        return total

    def update_subscription(self, sub_id: str, params: Obj) -> Obj:
        sub = self.get(sub_id, "subscription")
        if sub["status"] in ("canceled", "incomplete_expired"):
            raise ApiError(
                400,
                "A canceled subscription can only update its cancellation_details and metadata.",
            )
        cancellation = "cancel_at_period_end" in params or "cancel_at" in params
        if sub.get("schedule") and ("items" in params or cancellation):
            raise ApiError(
                400,
                f"The subscription is managed by the subscription schedule `{sub['schedule']}`, and "
                "updating any cancelation behavior or items directly is not allowed. Please update the schedule instead.",
            )
        behavior = params.get("proration_behavior", "create_prorations")
        if cancellation and "items" not in params and behavior == "always_invoice":
            raise ApiError(
                400, "The double prorates a cancellation date with create_prorations or none."
            )
        at = params.get("cancel_at")
        if at not in (None, "") and (not str(at).isdigit() or int(at) <= self.now()):
            raise ApiError(400, "cancel_at must be a timestamp in the future.", param="cancel_at")
        for i, item in enumerate(params.get("items") or []):
            # Checked before anything changes: a refused price leaves the subscription as it was.
            self.usable_price(item.get("price") or "", f"items[{i}][price]")
        previous: Obj = {}
        cut_before = self._cut_short_at(sub)
        held = {field: sub[field] for field in ("cancel_at", "cancel_at_period_end")}
        if "cancel_at_period_end" in params:
            flag = params["cancel_at_period_end"] == "true"
            sub["cancel_at_period_end"] = flag
            sub["cancel_at"] = self._period(sub)[1] if flag else None
            sub["canceled_at"] = self.now() if flag else None
        if at is not None:
            if at == "":
                sub["cancel_at"] = None
                sub["canceled_at"] = None if not sub["cancel_at_period_end"] else sub["canceled_at"]
            else:
                # A date replaces a cancellation at the period end: one or the other.
                sub["cancel_at"] = int(at)
                sub["cancel_at_period_end"] = False
                sub["canceled_at"] = self.now()
        # `previous_attributes` names the fields that changed, with their old values.
        previous.update({k: v for k, v in held.items() if sub[k] != v})
        if cancellation and behavior != "none":
            self._prorate_cancellation(sub, cut_before)
        if "default_payment_method" in params:
            pm_id = params["default_payment_method"] or None
            if (
                pm_id is not None
                and self.get(pm_id, "payment_method").get("customer") != sub["customer"]
            ):
                raise ApiError(
                    400,
                    "The payment method must be attached to the customer.",
                    param="default_payment_method",
                )
            previous["default_payment_method"] = sub["default_payment_method"]
            sub["default_payment_method"] = pm_id
        if "metadata" in params:
            sub["metadata"].update(params["metadata"] or {})
        if "items" in params:
            self._change_price(sub, params, previous)
        self.emit("customer.subscription.updated", sub, previous)
        return sub

    def _change_price(self, sub: Obj, params: Obj, previous: Obj) -> None:
        items = params["items"]
        item = sub["items"]["data"][0]
        if len(items) != 1 or items[0].get("id") != item["id"]:
            raise ApiError(
                400, "Pass the existing subscription item's id to change its price.", param="items"
            )
        new_price = self.usable_price(items[0].get("price") or "", "items[0][price]")
        behavior = params.get("proration_behavior", "create_prorations")
        at = int(params.get("proration_date") or self.now())
        lines, _resets = self.proration_lines(sub, new_price, at)
        pending = params.get("payment_behavior") == "pending_if_incomplete"
        if behavior != "always_invoice":
            raise ApiError(
                400, "The double only models proration_behavior=always_invoice for price changes."
            )
        invoice = self._invoice(sub, "subscription_update", lines)
        sub["latest_invoice"] = invoice["id"]
        status = self._pay(invoice)
        if status != "succeeded" and pending:
            sub["pending_update"] = {
                "billing_cycle_anchor": None,
                "expires_at": self.now() + PENDING_UPDATE_TTL,
                "subscription_items": [copy.deepcopy(item) | {"price": new_price["id"]}],
                "trial_end": None,
                "trial_from_plan": None,
                "discounts": None,
                "metadata": None,
            }
            return
        previous["items"] = self._public(sub)["items"]
        self._set_price(sub, new_price)
        if status != "succeeded":
            sub["status"] = "past_due"

    def pay_open_invoice(self, invoice_id: str) -> Obj:
        """The customer pays an open invoice on its hosted page (confirming 3-D Secure).

        Paying the invoice of a pending update applies it
        (`customer.subscription.pending_update_applied`); once the update has expired the
        invoice can still be paid, but the price stays (Stripe voids nothing by itself).
        """
        invoice = self.get(invoice_id, "invoice")
        if invoice["status"] != "open":
            raise ValueError(f"invoice {invoice_id} is {invoice['status']}, not open")
        now = self.now()
        for payment in self.all(
            "invoice_payment", lambda p: p["invoice"] == invoice_id and p["status"] == "open"
        ):
            intent = self.get(payment["payment"]["payment_intent"], "payment_intent")
            intent.update(status="succeeded", amount_received=intent["amount"], next_action=None)
            payment.update(status="paid", amount_paid=invoice["amount_due"])
            payment["status_transitions"]["paid_at"] = now
        invoice.update(status="paid", amount_paid=invoice["amount_due"], amount_remaining=0)
        invoice["status_transitions"]["paid_at"] = now
        self.emit("invoice.paid", invoice)
        sub = self.get(invoice["parent"]["subscription_details"]["subscription"], "subscription")
        pending = sub.get("pending_update")
        if pending and sub.get("latest_invoice") == invoice_id:
            previous: Obj = {"items": self._public(sub)["items"], "pending_update": pending}
            new_price = self.get(pending["subscription_items"][0]["price"], "price")
            self._set_price(sub, new_price)
            sub["pending_update"] = None
            if sub["status"] == "past_due":
                sub["status"] = "active"
            self.emit("customer.subscription.pending_update_applied", sub, previous)
            self.emit("customer.subscription.updated", sub, previous)
        return invoice

    def _set_price(self, sub: Obj, new_price: Obj) -> None:
        item = sub["items"]["data"][0]
        resets = interval_months(new_price) != interval_months(self._price_of(sub))
        item["price"] = new_price["id"]
        if resets:
            now = self.now()
            item["current_period_start"] = now
            item["current_period_end"] = add_months(now, interval_months(new_price))
            sub["billing_cycle_anchor"] = now

    def portal_change_price(self, sub_id: str, price_id: str) -> bool:
        """The portal's plan change (see `StripeDouble.portal_change_price`)."""
        sub = self.get(sub_id, "subscription")
        if sub["status"] not in ("active", "trialing", "past_due"):
            raise ApiError(400, "Only a live subscription can change plans in the portal.")
        old, new = self._price_of(sub), self.get(price_id, "price")
        if old["id"] == new["id"]:
            raise ApiError(400, "The subscription is already on that price.")
        shorter = interval_months(new) < interval_months(old)
        if shorter or new["unit_amount"] < old["unit_amount"]:
            start, end = self._period(sub)
            schedule = self.objects.get(sub.get("schedule") or "")
            if schedule is None:
                schedule = self.create_schedule({"from_subscription": sub_id})
            phases = [
                {"items": [{"price": old["id"]}], "start_date": start, "end_date": end},
                {"items": [{"price": new["id"]}], "proration_behavior": "none"},
            ]
            self.update_schedule(schedule["id"], {"end_behavior": "release", "phases": phases})
            return True
        if sub.get("schedule"):
            self.release_schedule(sub["schedule"])
        item_id = sub["items"]["data"][0]["id"]
        self.update_subscription(
            sub_id,
            {
                "items": [{"id": item_id, "price": new["id"]}],
                "proration_behavior": "always_invoice",
                "payment_behavior": "pending_if_incomplete",
            },
        )
        return sub.get("pending_update") is None

    # -- schedules -----------------------------------------------------------------------

    def create_schedule(self, params: Obj) -> Obj:
        sub_id = params.get("from_subscription")
        if not sub_id:
            raise ApiError(
                400,
                "The double only creates schedules from_subscription.",
                param="from_subscription",
            )
        sub = self.get(sub_id, "subscription")
        if sub.get("schedule"):
            raise ApiError(
                400,
                f"You cannot migrate a subscription that is already attached to a schedule: `{sub['schedule']}`.",
                param="from_subscription",
            )
        if sub["status"] not in ("active", "trialing", "past_due"):
            raise ApiError(400, "Only a live subscription can be moved to a schedule.")
        start, end = self._period(sub)
        price = self._price_of(sub)
        schedule = resource(
            "subscription_schedule",
            id=self.new_id("sub_sched"),
            created=self.now(),
            customer=sub["customer"],
            subscription=sub["id"],
            status="active",
            end_behavior="release",
            canceled_at=None,
            completed_at=None,
            released_at=None,
            released_subscription=None,
            metadata={},
            current_phase={"start_date": start, "end_date": end},
            test_clock=None,
        )
        schedule["phases"] = [self._phase(price["id"], start, end, "create_prorations")]
        sub["schedule"] = schedule["id"]
        self.put(schedule)
        self.emit("subscription_schedule.created", schedule)
        return schedule

    def _phase(self, price_id: str, start: int, end: int, proration: str) -> Obj:
        phase: Obj = resource("subscription_schedule")["phases"][0]
        phase.update(
            start_date=start,
            end_date=end,
            proration_behavior=proration,
            currency=self.get(price_id, "price")["currency"],
            transfer_data=None,
            billing_thresholds=None,
            invoice_settings=None,
        )
        phase["items"] = [
            {
                "discounts": [],
                "metadata": {},
                "price": price_id,
                "quantity": 1,
                "tax_rates": [],
                "billing_thresholds": None,
            }
        ]
        return phase

    def update_schedule(self, schedule_id: str, params: Obj) -> Obj:
        schedule = self.get(schedule_id, "subscription_schedule")
        if schedule["status"] not in ("active", "not_started"):
            raise ApiError(
                400, f"You cannot update a subscription schedule that is {schedule['status']}."
            )
        if "phases" in params:
            current = schedule["current_phase"]
            # A phase may keep a price already in place (the subscription's own, or one the
            # schedule already holds) though it has been archived since; a new one must be active.
            held = {p["items"][0]["price"] for p in schedule["phases"] if p.get("items")}
            sub = self.objects.get(schedule.get("subscription") or "")
            if sub is not None:
                held.add(sub["items"]["data"][0]["price"])
            phases: list[Obj] = []
            cursor: int | None = None
            for i, given in enumerate(params["phases"]):
                items = given.get("items") or []
                if len(items) != 1:
                    raise ApiError(
                        400, "The double supports one item per phase.", param=f"phases[{i}][items]"
                    )
                price = self.usable_price(
                    items[0].get("price") or "", f"phases[{i}][items][0][price]", in_place=held
                )
                start = int(given["start_date"]) if "start_date" in given else cursor
                if start is None:
                    raise ApiError(
                        400, "The first phase needs a start_date.", param="phases[0][start_date]"
                    )
                if i == 0 and start != current["start_date"]:
                    raise ApiError(
                        400,
                        "You can not modify the start date of the current phase.",
                        param="phases[0][start_date]",
                    )
                if "end_date" in given:
                    end = int(given["end_date"])
                elif i == len(params["phases"]) - 1:
                    end = add_months(start, interval_months(price))
                else:
                    raise ApiError(
                        400,
                        "Every phase but the last needs an end_date.",
                        param=f"phases[{i}][end_date]",
                    )
                if end <= start:
                    raise ApiError(
                        400, "A phase must end after it starts.", param=f"phases[{i}][end_date]"
                    )
                phases.append(
                    self._phase(
                        price["id"],
                        start,
                        end,
                        given.get("proration_behavior", "create_prorations"),
                    )
                )
                cursor = end
            schedule["phases"] = phases
        # Only a request that passed every check changes anything (Stripe is atomic).
        if "end_behavior" in params:
            schedule["end_behavior"] = params["end_behavior"]
        self.emit("subscription_schedule.updated", schedule)
        return schedule

    def release_schedule(self, schedule_id: str) -> Obj:
        schedule = self.get(schedule_id, "subscription_schedule")
        if schedule["status"] not in ("active", "not_started"):
            raise ApiError(
                400,
                f"You cannot release a subscription schedule that is currently in the `{schedule['status']}` status.",
            )
        sub = self.get(schedule["subscription"], "subscription")
        sub["schedule"] = None
        schedule.update(
            status="released",
            released_at=self.now(),
            released_subscription=sub["id"],
            subscription=None,
            current_phase=None,
        )
        self.emit("subscription_schedule.released", schedule)
        return schedule

    # -- time ------------------------------------------------------------------------------

    def advance(self) -> None:
        """Apply everything due by now: pending-update expiry, renewals, phases, cancellations."""
        now = self.now()
        for sub in self.all("subscription"):
            pending = sub.get("pending_update")
            if pending and pending["expires_at"] <= now:
                sub["pending_update"] = None
                self.emit("customer.subscription.pending_update_expired", sub)
        while True:
            due = [
                s
                for s in self.all("subscription")
                if s["status"] in ("active", "trialing", "past_due") and self._boundary(s) <= now
            ]
            if not due:
                return
            sub = min(due, key=self._boundary)
            self._at = self._boundary(sub)
            try:
                if self._ends_on_its_date(sub):
                    self._end(sub, int(sub["cancel_at"]))
                else:
                    self._period_end(sub)
            finally:
                self._at = None

    def _boundary(self, sub: Obj) -> int:
        """The next moment time changes a subscription: its cancellation date inside the
        current period, else the period end (a renewal, a phase, or the end)."""
        cut = self._cut_short_at(sub)
        return cut if cut is not None else self._period(sub)[1]

    def _end(self, sub: Obj, at: int) -> None:
        """The subscription ends at `at` (its period end, or a `cancel_at` inside the period):
        `customer.subscription.deleted`, then a final invoice collecting pending prorations
        (a negative total credits the customer's balance; nothing is paid back to the card)."""
        schedule = self.objects.get(sub.get("schedule") or "")
        if schedule is not None:
            schedule.update(status="canceled", canceled_at=at, current_phase=None)
            self.emit("subscription_schedule.canceled", schedule)
            sub["schedule"] = None
        sub.update(
            status="canceled",
            ended_at=at,
            canceled_at=sub.get("canceled_at") or at,
            pending_update=None,
        )
        self.emit("customer.subscription.deleted", sub)
        if not self._pending_items(sub):
            return
        invoice = self._invoice_with_pending(sub, "subscription_cycle", [])
        sub["latest_invoice"] = invoice["id"]
        if invoice["amount_due"] > 0:
            self._pay(invoice)
        else:
            self._settle_nothing_due(invoice)

    def _period_end(self, sub: Obj) -> None:
        _, end = self._period(sub)
        item = sub["items"]["data"][0]
        if sub["cancel_at_period_end"] or (sub.get("cancel_at") and sub["cancel_at"] <= end):
            self._end(sub, end)
            return
        price = self._price_of(sub)
        schedule = self.objects.get(sub.get("schedule") or "")
        if schedule is not None:
            upcoming = [p for p in schedule["phases"] if p["start_date"] == end]
            if upcoming:
                phase = upcoming[0]
                price = self.get(phase["items"][0]["price"], "price")
                schedule["current_phase"] = {
                    "start_date": phase["start_date"],
                    "end_date": phase["end_date"],
                }
                self.emit("subscription_schedule.updated", schedule)
            else:
                # The last phase ended: `end_behavior=release` hands the subscription back.
                sub["schedule"] = None
                schedule.update(
                    status="released",
                    released_at=end,
                    released_subscription=sub["id"],
                    subscription=None,
                    current_phase=None,
                )
                self.emit("subscription_schedule.released", schedule)
        if interval_months(price) != interval_months(self._price_of(sub)):
            sub["billing_cycle_anchor"] = end  # a phase with another interval restarts the cycle
        item["price"] = price["id"]
        item["current_period_start"] = end
        item["current_period_end"] = next_end = self._next_renewal(sub, price, end)
        amount, until = price["unit_amount"], next_end
        cut = self._cut_short_at(sub)
        if cut is not None:
            # A cancellation date inside the new period: "If set during a future period, this
            # will always cause a proration for that period": only the time until it is billed.
            amount, until = share(price["unit_amount"], cut - end, next_end - end), cut
        invoice = self._invoice_with_pending(
            sub, "subscription_cycle", [self._line(sub, amount, price, end, until, cut is not None)]
        )
        sub["latest_invoice"] = invoice["id"]
        status = self._pay(invoice)
        sub["status"] = "active" if status == "succeeded" else "past_due"
        self.emit("customer.subscription.updated", sub)

    # -- rendering -------------------------------------------------------------------------

    def _public(self, obj: Obj) -> Obj:
        """What Stripe shows of an object now. A subscription item's price is stored as a
        reference and shown as the price is at read time (Stripe always expands it): a price
        retired since the subscription started shows `active: false` and no lookup key."""
        out = {k: v for k, v in obj.items() if not k.startswith("_")}
        if obj.get("object") == "subscription":
            out = copy.deepcopy(out)
            items = list(out["items"]["data"])
            pending = out.get("pending_update") or {}
            items += pending.get("subscription_items") or []
            for item in items:
                if isinstance(item.get("price"), str):
                    item["price"] = copy.deepcopy(self.get(item["price"], "price"))
        return out

    def render(self, obj: Obj, expand: Iterable[str] = ()) -> Obj:
        """A response body: a deep copy without internal fields, with `expand` paths applied."""
        out = copy.deepcopy(self._public(obj))
        for path in expand:
            self._expand(out, path.split("."), path)
        return out

    def _includable(self, obj: Obj, field: str) -> Obj | None:
        if obj.get("object") == "customer" and field == "subscriptions":
            subs = self.list_subscriptions({"customer": obj["id"]})
            return self.list_object(
                [self._public(s) for s in subs], f"/v1/customers/{obj['id']}/subscriptions"
            )
        if obj.get("object") == "invoice" and field == "payments":
            pays = self.all("invoice_payment", lambda p: p["invoice"] == obj["id"])
            return self.list_object(pays, "/v1/invoice_payments")
        return None

    def _expand(self, node: Any, parts: list[str], path: str) -> None:
        if not parts or node is None:
            return
        if isinstance(node, list):
            for entry in node:
                self._expand(entry, parts, path)
            return
        field, rest = parts[0], parts[1:]
        if not isinstance(node, dict):
            raise ApiError(400, f"This property cannot be expanded ({path}).", param="expand")
        if field == "data" and node.get("object") == "list":
            self._expand(node["data"], rest, path)
            return
        value = node.get(field)
        included = self._includable(node, field)
        if included is not None:
            node[field] = value = included
        elif isinstance(value, str):
            target = self.objects.get(value)
            if target is None:
                raise ApiError(400, f"This property cannot be expanded ({path}).", param="expand")
            node[field] = value = copy.deepcopy(self._public(target))
        elif value is None and field in node:
            return
        elif not isinstance(value, dict):
            raise ApiError(400, f"This property cannot be expanded ({path}).", param="expand")
        self._expand(value, rest, path)

    @staticmethod
    def list_object(data: list[Obj], url: str, has_more: bool = False) -> Obj:
        return {"object": "list", "data": data, "has_more": has_more, "url": url}
