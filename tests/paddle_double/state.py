"""The Paddle double's model: customers, catalog, transactions, subscriptions, adjustments.

Behaviour modelled on Paddle Billing (API version 1) where the adapter relies on it:
- a checkout is a `ready` transaction; paying on its checkout page completes it and starts a
  subscription that copies the transaction's `custom_data`;
- item changes bill by `proration_billing_mode` (`prorated_immediately` charges the prorated
  difference at once, a price on another billing cycle from now with a new billing period, and
  refuses the change when the card declines, leaving no transaction; `do_not_bill` changes the
  price with no charge); Paddle has no scheduled item changes, only a scheduled `cancel`;
- no change is taken in the 30 minutes before a renewal (409 `subscription_locked_renewal`);
- renewals are `subscription_recurring` transactions at the items' price when the billing
  period ends; a declined renewal makes the transaction and the subscription `past_due`; a
  declined checkout only fails the attempt (the transaction stays `ready`);
- a card change is a `subscription_payment_method_change` transaction for zero;
- the customer portal cancels (at the period end), undoes a scheduled cancellation and
  changes the card; it does not change plans;
- totals are tax-inclusive; the double's tax rate is 0, so grand_total equals the price.
Every change is recorded as a notification event (`events`), for signed delivery.
"""

from __future__ import annotations

import copy
import secrets
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from responseiq_billing.adapters.fake.clock import ControllableClock
from responseiq_billing.domain.money import Money
from responseiq_billing.domain.periods import add_months
from responseiq_billing.domain.plans import Interval, PlanPrice
from responseiq_billing.domain.rules import Proration, prorate

Obj = dict[str, Any]
CARDS = {"visa": "4242", "mastercard": "4444", "amex": "8431"}
RENEWAL_LOCK = timedelta(minutes=30)  # no changes this close to a renewal (409)


class ApiError(Exception):
    def __init__(self, status: int, code: str, detail: str) -> None:
        super().__init__(detail)
        self.status, self.code, self.detail = status, code, detail


def new_id(prefix: str) -> str:
    alphabet = "0123456789abcdefghjkmnpqrstvwxyz"
    return f"{prefix}_01" + "".join(secrets.choice(alphabet) for _ in range(24))


def iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse(moment: str) -> datetime:
    return datetime.fromisoformat(moment.replace("Z", "+00:00"))


def _totals(amount: int, currency: str) -> Obj:
    a = str(amount)
    return {
        "subtotal": a, "discount": "0", "tax": "0", "total": a, "credit": "0",
        "credit_to_balance": "0", "balance": a, "grand_total": a, "grand_total_tax": "0",
        "fee": None, "earnings": None, "currency_code": currency,
    }  # fmt: skip


class PaddleState:
    """All objects of one double, guarded by one lock."""

    def __init__(self, clock: ControllableClock, base_url: str) -> None:
        self.clock = clock
        self.base_url = base_url
        self.lock = threading.RLock()
        self.products: dict[str, Obj] = {}
        self.prices: dict[str, Obj] = {}
        self.customers: dict[str, Obj] = {}
        self.transactions: dict[str, Obj] = {}
        self.subscriptions: dict[str, Obj] = {}
        self.adjustments: dict[str, Obj] = {}
        self.notification_settings: dict[str, Obj] = {}
        self.portal_sessions: dict[str, Obj] = {}
        self.cards: dict[str, str] = {}  # subscription id -> card brand it charges
        self.events: list[Obj] = []
        self.decline_next = False
        self._seq = 0
        self._invoice_number = 0
        self._at: datetime | None = None  # the boundary being processed while catching up

    def now(self) -> datetime:
        return self._at or self.clock.now().astimezone(UTC)

    def _stamp(self) -> tuple[str, int]:
        self._seq += 1
        return iso(self.now()) or "", self._seq

    @contextmanager
    def locked(self) -> Iterator[None]:
        with self.lock:
            self.catch_up(self.clock.now().astimezone(UTC))
            yield

    # -- events ------------------------------------------------------------------------------

    def emit(self, event_type: str, data: Obj) -> None:
        self.events.append(
            {
                "event_id": new_id("evt"),
                "event_type": event_type,
                "occurred_at": iso(self.now()),
                "notification_id": new_id("ntf"),
                "data": copy.deepcopy(data),
            }
        )

    # -- catalog -----------------------------------------------------------------------------

    def create_product(self, body: Obj) -> Obj:
        at, _ = self._stamp()
        product = {
            "id": new_id("pro"), "name": body["name"], "description": body.get("description"),
            "type": "standard", "tax_category": body["tax_category"], "image_url": None,
            "custom_data": body.get("custom_data"), "status": "active", "import_meta": None,
            "created_at": at, "updated_at": at,
        }  # fmt: skip
        self.products[product["id"]] = product
        return product

    def create_price(self, body: Obj) -> Obj:
        if body["product_id"] not in self.products:
            raise ApiError(404, "not_found", "Product not found")
        at, _ = self._stamp()
        price = {
            "id": new_id("pri"), "product_id": body["product_id"], "name": body.get("name"),
            "description": body["description"], "type": "standard",
            "billing_cycle": body.get("billing_cycle"), "trial_period": None,
            "tax_mode": body.get("tax_mode") or "account_setting",
            "unit_price": body["unit_price"], "unit_price_overrides": [],
            "quantity": body.get("quantity") or {"minimum": 1, "maximum": 1},
            "status": "active", "custom_data": body.get("custom_data"), "import_meta": None,
            "created_at": at, "updated_at": at,
        }  # fmt: skip
        self.prices[price["id"]] = price
        return price

    def seed_price(self, price: PlanPrice) -> str:
        plan = {"plan_id": price.plan_id}
        product = next(
            (p for p in self.products.values() if p["custom_data"] == plan), None
        ) or self.create_product(
            {"name": price.plan_id.title(), "tax_category": "saas", "custom_data": plan}
        )
        created = self.create_price(
            {
                "product_id": product["id"],
                "description": f"{price.plan_id} per {price.interval.value}",
                "billing_cycle": {"interval": price.interval.value, "frequency": 1},
                "unit_price": {
                    "amount": str(price.amount.amount),
                    "currency_code": price.amount.currency,
                },
                "custom_data": {"plan_id": price.plan_id, "interval": price.interval.value},
            }
        )
        return str(created["id"])

    def price(self, price_id: str) -> Obj:
        found = self.prices.get(price_id)
        if found is None or found["status"] != "active":
            raise ApiError(400, "price_not_found", f"Price {price_id} not found")
        return found

    # -- customers ---------------------------------------------------------------------------

    def create_customer(self, body: Obj) -> Obj:
        email = body["email"]
        if any(c["email"] == email for c in self.customers.values()):
            raise ApiError(409, "customer_already_exists", "customer email conflicts")
        at, _ = self._stamp()
        customer = {
            "id": new_id("ctm"), "name": body.get("name"), "email": email,
            "marketing_consent": False, "status": "active", "custom_data": body.get("custom_data"),
            "locale": body.get("locale") or "en", "import_meta": None,
            "created_at": at, "updated_at": at,
        }  # fmt: skip
        self.customers[customer["id"]] = customer
        self.emit("customer.created", customer)
        return customer

    def customer(self, customer_id: str) -> Obj:
        found = self.customers.get(customer_id)
        if found is None:
            raise ApiError(404, "not_found", f"Entity {customer_id} not found")
        return found

    # -- transactions ------------------------------------------------------------------------

    def _item(self, price_id: str, quantity: int = 1, proration: Obj | None = None) -> Obj:
        return {"price": self.price(price_id), "quantity": quantity, "proration": proration}

    def _transaction(
        self,
        *,
        customer_id: str,
        items: list[Obj],
        origin: str,
        status: str,
        amount: int,
        currency: str,
        subscription_id: str | None = None,
        custom_data: Obj | None = None,
        period: tuple[datetime, datetime] | None = None,
    ) -> Obj:
        at, seq = self._stamp()
        txn_id = new_id("txn")
        txn = {
            "id": txn_id, "status": status, "customer_id": customer_id,
            "address_id": None, "business_id": None, "custom_data": custom_data,
            "currency_code": currency, "origin": origin, "subscription_id": subscription_id,
            "invoice_id": None, "invoice_number": None, "collection_mode": "automatic",
            "discount_id": None, "billing_details": None,
            "billing_period": (
                {"starts_at": iso(period[0]), "ends_at": iso(period[1])} if period else None
            ),
            "items": items,
            "details": {
                "tax_rates_used": [{"tax_rate": "0", "totals": {
                    "subtotal": str(amount), "discount": "0", "tax": "0", "total": str(amount)}}],
                "totals": _totals(amount, currency), "adjusted_totals": None,
                "payout_totals": None, "adjusted_payout_totals": None, "line_items": [],
            },
            "payments": [],
            "checkout": {"url": f"{self.base_url}/pay?_ptxn={txn_id}"},
            "created_at": at, "updated_at": at, "billed_at": None,
            "_seq": seq,
        }  # fmt: skip
        self.transactions[txn_id] = txn
        self.emit("transaction.created", public(txn))
        return txn

    def create_transaction(self, body: Obj) -> Obj:
        customer = self.customer(body.get("customer_id") or "")
        items = [self._item(i["price_id"], i.get("quantity", 1)) for i in body["items"]]
        if not items:
            raise ApiError(400, "bad_request", "items must not be empty")
        currency = items[0]["price"]["unit_price"]["currency_code"]
        amount = sum(int(i["price"]["unit_price"]["amount"]) * i["quantity"] for i in items)
        return self._transaction(
            customer_id=customer["id"], items=items, origin="api", status="ready",
            amount=amount, currency=currency, custom_data=body.get("custom_data"),
        )  # fmt: skip

    def transaction(self, txn_id: str) -> Obj:
        found = self.transactions.get(txn_id)
        if found is None:
            raise ApiError(404, "not_found", f"Entity {txn_id} not found")
        return found

    def update_transaction(self, txn_id: str, body: Obj) -> Obj:
        txn = self.transaction(txn_id)
        if set(body) - {"status"} or body.get("status") != "canceled":
            raise ApiError(400, "bad_request", "the double only cancels transactions")
        if txn["status"] not in ("draft", "ready"):
            raise ApiError(
                400, "transaction_immutable", "only draft or ready transactions can be canceled"
            )
        txn["status"] = "canceled"
        txn["updated_at"], _ = self._stamp()
        self.emit("transaction.canceled", public(txn))
        return txn

    def _charge(self, txn: Obj, card: str, *, complete: bool = True) -> bool:
        """Capture (or decline) the transaction's payment with `card`. Returns success.

        A captured payment makes the transaction `paid`, then `completed` (each with its event);
        with `complete=False` the caller completes it (`_complete`) once what the payment
        starts exists: Paddle creates a checkout's subscription between the two events, so the
        `transaction.completed` of a checkout carries its `subscription_id`.
        """
        declined = self.decline_next
        self.decline_next = False
        at = iso(self.now())
        txn["payments"].insert(
            0,
            {
                "payment_attempt_id": new_id("pay"), "stored_payment_method_id": new_id("paymtd"),
                "payment_method_id": None,
                "amount": txn["details"]["totals"]["grand_total"],
                "status": "error" if declined else "captured",
                "error_code": "declined" if declined else None,
                "method_details": {"type": "card", "card": {
                    "type": card, "last4": CARDS[card], "expiry_month": 12, "expiry_year": 2034,
                    "cardholder_name": "Test"}},
                "created_at": at, "captured_at": None if declined else at,
            },
        )  # fmt: skip
        txn["updated_at"] = at
        if declined:
            if txn["origin"] == "subscription_recurring":
                # A renewal's payment failed: the transaction is billed and goes past due while
                # the subscription is in dunning.
                txn["billed_at"] = txn["billed_at"] or at
                txn["status"] = "past_due"
                self.emit("transaction.payment_failed", public(txn))
                self.emit("transaction.past_due", public(txn))
            else:
                # On a checkout (or the card page) only the attempt failed: the transaction
                # stays `ready`, to be paid again; `past_due` is a dunning state of renewals.
                self.emit("transaction.payment_failed", public(txn))
            return False
        txn["billed_at"] = txn["billed_at"] or at
        if txn["origin"] != "subscription_payment_method_change":
            self._invoice_number += 1
            txn["invoice_number"] = f"PADDLE-{self._invoice_number:05d}"
            txn["invoice_id"] = new_id("inv")
        txn["status"] = "paid"
        self.emit("transaction.paid", public(txn))
        if complete:
            self._complete(txn)
        return True

    def _complete(self, txn: Obj) -> None:
        txn["status"] = "completed"
        self.emit("transaction.completed", public(txn))

    def pay(self, txn_id: str, card: str) -> Obj:
        """The customer pays on Paddle's checkout: a checkout starts a subscription, a card
        change makes the card the subscription's."""
        txn = self.transaction(txn_id)
        if txn["status"] not in ("draft", "ready"):
            raise ValueError(f"transaction {txn_id} is {txn['status']} and takes no payment")
        if txn["origin"] == "subscription_payment_method_change":
            self._charge(txn, card)
            sub = self.subscriptions[txn["subscription_id"]]
            self.cards[sub["id"]] = card
            self.emit("payment_method.saved", {"customer_id": sub["customer_id"]})
            return txn
        price = txn["items"][0]["price"]
        start = self.now().replace(microsecond=0)
        end = _period_end(start, price, start.day)
        txn["billing_period"] = {"starts_at": iso(start), "ends_at": iso(end)}
        if not self._charge(txn, card, complete=False):
            return txn  # still `ready`: a declined checkout can be paid again
        sub = self._start_subscription(txn, start, end)
        txn["subscription_id"] = sub["id"]
        self.cards[sub["id"]] = card
        self._complete(txn)
        return txn

    # -- subscriptions ----------------------------------------------------------------------

    def _sub_item(self, price: Obj, start: datetime, end: datetime) -> Obj:
        product = self.products[price["product_id"]]
        return {
            "status": "active", "quantity": 1, "recurring": True,
            "created_at": iso(start), "updated_at": iso(start),
            "previously_billed_at": iso(start), "next_billed_at": iso(end), "trial_dates": None,
            "price": price, "product": product,
        }  # fmt: skip

    def _start_subscription(self, txn: Obj, start: datetime, end: datetime) -> Obj:
        price = txn["items"][0]["price"]
        at, seq = self._stamp()
        sub_id = new_id("sub")
        sub = {
            "id": sub_id, "status": "active", "customer_id": txn["customer_id"],
            "address_id": new_id("add"), "business_id": None,
            "currency_code": price["unit_price"]["currency_code"],
            "created_at": at, "updated_at": at, "started_at": iso(start),
            "first_billed_at": iso(start), "next_billed_at": iso(end), "paused_at": None,
            "canceled_at": None, "discount": None, "collection_mode": "automatic",
            "billing_details": None,
            "current_billing_period": {"starts_at": iso(start), "ends_at": iso(end)},
            "billing_cycle": price["billing_cycle"], "scheduled_change": None,
            "management_urls": {
                "update_payment_method": f"{self.base_url}/portal/{sub_id}/payment-method",
                "cancel": f"{self.base_url}/portal/{sub_id}/cancel"},
            "items": [self._sub_item(price, start, end)],
            "custom_data": txn["custom_data"], "import_meta": None,
            "next_transaction": None, "recurring_transaction_details": None,
            "consent_requirements": [], "_anchor": start.day, "_seq": seq,
        }  # fmt: skip
        self.subscriptions[sub_id] = sub
        self.emit("subscription.created", public(sub))
        self.emit("subscription.activated", public(sub))
        return sub

    def subscription(self, sub_id: str) -> Obj:
        found = self.subscriptions.get(sub_id)
        if found is None:
            raise ApiError(404, "not_found", f"Entity {sub_id} not found")
        return found

    def _touch(self, sub: Obj, event: str = "subscription.updated") -> None:
        sub["updated_at"], _ = self._stamp()
        self.emit(event, public(sub))

    def _proration(self, sub: Obj, new_price: Obj) -> Proration:
        """What replacing the item bills now, prorated at the moment of the request.

        Paddle "calculates proration to the minute": here the minute in progress counts as
        remaining (the instant is taken at the start of its minute); each line is then rounded
        to the cent as the domain's `prorate` does. A price on another billing cycle (monthly
        to yearly) is billed at its new interval from now: the unused time is credited, the
        whole new period charged, and a new billing period starts now.
        """
        old_price = sub["items"][0]["price"]
        period = sub["current_billing_period"]
        start = parse(period["starts_at"])
        at = self.now().replace(microsecond=0)
        return prorate(
            _plan_price(old_price), _plan_price(new_price),
            period_start=start, period_end_at=parse(period["ends_at"]),
            at=max(at.replace(second=0), start), anchor_day=at.day,
        )  # fmt: skip

    def _check_not_renewing(self, sub: Obj) -> None:
        """Paddle locks a subscription for changes in the 30 minutes before its renewal."""
        due = sub["next_billed_at"]
        if due is not None and parse(due) - self.now() < RENEWAL_LOCK:
            raise ApiError(
                409,
                "subscription_locked_renewal",
                "unable to update subscription 30m0s before renewal",
            )

    def _check_items(self, sub: Obj, body: Obj) -> Obj:
        if sub["status"] not in ("active", "trialing"):
            raise ApiError(400, "subscription_update_when_canceled", "subscription is not active")
        items = body.get("items") or []
        if len(items) != 1 or "price_id" not in items[0]:
            raise ApiError(400, "bad_request", "the double takes one catalog item")
        mode = body.get("proration_billing_mode")
        if mode not in ("prorated_immediately", "do_not_bill"):
            raise ApiError(400, "bad_request", f"the double does not bill with {mode!r}")
        return self.price(items[0]["price_id"])

    def preview_update(self, sub_id: str, body: Obj) -> Obj:
        sub = self.subscription(sub_id)
        price = self._check_items(sub, body)
        preview = public(sub)
        amount = (
            0
            if body["proration_billing_mode"] == "do_not_bill"
            else self._proration(sub, price).amount_due.amount
        )
        currency = sub["currency_code"]
        period = sub["current_billing_period"]
        preview["immediate_transaction"] = {
            "billing_period": period, "adjustments": [],
            "details": {"tax_rates_used": [], "totals": _totals(amount, currency), "line_items": []},
        }  # fmt: skip
        preview["update_summary"] = {
            "credit": {"amount": "0", "currency_code": currency},
            "charge": {"amount": str(amount), "currency_code": currency},
            "result": {"action": "charge", "amount": str(amount), "currency_code": currency},
        }
        return preview

    def update_subscription(self, sub_id: str, body: Obj) -> Obj:
        sub = self.subscription(sub_id)
        unknown = set(body) - {
            "items",
            "proration_billing_mode",
            "on_payment_failure",
            "scheduled_change",
        }
        if unknown:
            raise ApiError(400, "bad_request", f"the double does not update {sorted(unknown)}")
        self._check_not_renewing(sub)
        if "scheduled_change" in body:
            if body["scheduled_change"] is not None:
                raise ApiError(400, "bad_request", "scheduled_change can only be removed")
            if sub["status"] == "canceled":
                raise ApiError(400, "subscription_locked", "subscription is canceled")
            sub["scheduled_change"] = None
        if "items" in body:
            price = self._check_items(sub, body)
            if sub["scheduled_change"] is not None:
                raise ApiError(
                    400, "subscription_locked_pending_changes",
                    "remove the scheduled change before changing items",
                )  # fmt: skip
            period = sub["current_billing_period"]
            start, end = parse(period["starts_at"]), parse(period["ends_at"])
            previously_billed = sub["items"][0]["previously_billed_at"]
            if body["proration_billing_mode"] == "prorated_immediately":
                proration = self._proration(sub, price)
                at = proration.proration_at  # to the minute
                line = {
                    "rate": "1",
                    "billing_period": {
                        "starts_at": iso(at),
                        "ends_at": iso(proration.new_period_end),
                    },
                }
                logged = len(self.events)
                txn = self._transaction(
                    customer_id=sub["customer_id"], items=[self._item(price["id"], 1, line)],
                    origin="subscription_update", status="billed",
                    amount=proration.amount_due.amount, currency=sub["currency_code"],
                    subscription_id=sub_id, custom_data=sub["custom_data"],
                    period=(at, proration.new_period_end),
                )  # fmt: skip
                if not self._charge(txn, self.cards.get(sub_id, "visa")):
                    # on_payment_failure=prevent_change: the change is not made, and the API
                    # answers with the error; no transaction is left, nor any notification.
                    del self.transactions[txn["id"]]
                    del self.events[logged:]
                    raise ApiError(400, "subscription_payment_declined", "payment declined")
                if (proration.new_period_start, proration.new_period_end) != (start, end):
                    # Another billing cycle: billed at its new interval from now.
                    start, end, previously_billed = at, proration.new_period_end, iso(at)
                    sub["current_billing_period"] = {"starts_at": iso(start), "ends_at": iso(end)}
                    sub["next_billed_at"] = iso(end)
                    sub["billing_cycle"] = price["billing_cycle"]
                    sub["_anchor"] = at.day
            item = self._sub_item(price, start, end)
            item["previously_billed_at"] = previously_billed
            sub["items"] = [item]
        self._touch(sub)
        return sub

    def cancel(self, sub_id: str, body: Obj) -> Obj:
        sub = self.subscription(sub_id)
        if sub["status"] == "canceled":
            raise ApiError(400, "subscription_locked", "subscription is canceled")
        self._check_not_renewing(sub)
        if body.get("effective_from") == "immediately":
            self._end(sub, self.now().replace(microsecond=0))
        else:
            sub["scheduled_change"] = {
                "action": "cancel",
                "effective_at": sub["next_billed_at"],
                "resume_at": None,
            }
            self._touch(sub)
        return sub

    def portal_cancel(self, sub_id: str) -> Obj:
        """Cancel on the customer portal: like the email's cancel link, at the end of the
        billing period (the subscription stays active until then)."""
        return self.cancel(sub_id, {"effective_from": "next_billing_period"})

    def portal_remove_scheduled_cancel(self, sub_id: str) -> Obj:
        """The customer undoes a scheduled cancellation on the portal before it takes effect.

        Paddle's reference says the portal lets customers manage their subscriptions "including
        making changes or cancellations" without naming this action; merchants' help pages for
        Paddle's portal describe reversing a scheduled cancellation there. Modelled as the API's
        removal of the scheduled change, with its `subscription.updated`.
        """
        sub = self.subscription(sub_id)
        change = sub["scheduled_change"]
        if sub["status"] == "canceled" or change is None or change["action"] != "cancel":
            raise ValueError(f"subscription {sub_id} has no scheduled cancellation to undo")
        return self.update_subscription(sub_id, {"scheduled_change": None})

    def _end(self, sub: Obj, at: datetime) -> None:
        sub["status"] = "canceled"
        sub["canceled_at"] = iso(at)
        sub["scheduled_change"] = None
        sub["current_billing_period"] = None
        sub["next_billed_at"] = None
        self._touch(sub, "subscription.canceled")

    def payment_method_change_transaction(self, sub_id: str) -> Obj:
        sub = self.subscription(sub_id)
        if sub["status"] == "canceled":
            raise ApiError(400, "subscription_locked", "subscription is canceled")
        return self._transaction(
            customer_id=sub["customer_id"], items=[self._item(sub["items"][0]["price"]["id"])],
            origin="subscription_payment_method_change", status="ready", amount=0,
            currency=sub["currency_code"], subscription_id=sub_id,
        )  # fmt: skip

    # -- time --------------------------------------------------------------------------------

    def catch_up(self, moment: datetime) -> None:
        """Renewals and scheduled cancellations due by `moment`, in time order."""
        while True:
            due = [
                s for s in self.subscriptions.values()
                if s["status"] == "active" and s["next_billed_at"]
                and parse(s["next_billed_at"]) <= moment
            ]  # fmt: skip
            if not due:
                return
            sub = min(due, key=lambda s: parse(s["next_billed_at"]))
            at = parse(sub["next_billed_at"])
            self._at = at
            try:
                self._renew(sub, at)
            finally:
                self._at = None

    def _renew(self, sub: Obj, at: datetime) -> None:
        change = sub["scheduled_change"]
        if change is not None and change["action"] == "cancel":
            self._end(sub, at)
            return
        price = sub["items"][0]["price"]
        end = _period_end(at, price, sub["_anchor"])
        txn = self._transaction(
            # The price in place, archived or not: archiving stops a price being sold, not
            # renewing the subscriptions already on it.
            customer_id=sub["customer_id"],
            items=[{"price": self.prices[price["id"]], "quantity": 1, "proration": None}],
            origin="subscription_recurring", status="billed",
            amount=int(price["unit_price"]["amount"]), currency=sub["currency_code"],
            subscription_id=sub["id"], custom_data=sub["custom_data"], period=(at, end),
        )  # fmt: skip
        paid = self._charge(txn, self.cards.get(sub["id"], "visa"))
        sub["current_billing_period"] = {"starts_at": iso(at), "ends_at": iso(end)}
        sub["next_billed_at"] = iso(end)
        item = sub["items"][0]
        item["previously_billed_at"], item["next_billed_at"] = iso(at), iso(end)
        if not paid:
            sub["status"] = "past_due"
            self._touch(sub, "subscription.past_due")
        else:
            self._touch(sub)

    # -- refunds -----------------------------------------------------------------------------

    def create_adjustment(self, body: Obj) -> Obj:
        txn = self.transaction(body["transaction_id"])
        if body["action"] != "refund" or body.get("type") != "full":
            raise ApiError(400, "bad_request", "the double takes full refunds only")
        if txn["status"] != "completed":
            raise ApiError(
                400, "adjustment_transaction_invalid_status_for_refund",
                "only completed transactions can be refunded",
            )  # fmt: skip
        live = [
            a for a in self.adjustments.values()
            if a["transaction_id"] == txn["id"] and a["status"] not in ("rejected", "reversed")
        ]  # fmt: skip
        if live:
            raise ApiError(
                400, "adjustment_total_amount_exceeds_transaction_total",
                "the transaction has been refunded in full",
            )  # fmt: skip
        at, _ = self._stamp()
        total = txn["details"]["totals"]["grand_total"]
        adjustment = {
            "id": new_id("adj"), "action": "refund", "type": "full",
            "transaction_id": txn["id"], "subscription_id": txn["subscription_id"],
            "customer_id": txn["customer_id"], "reason": body["reason"],
            "credit_applied_to_balance": None, "currency_code": txn["currency_code"],
            "status": "approved", "items": [],
            "totals": {"subtotal": total, "tax": "0", "total": total, "fee": "0",
                       "earnings": "0", "currency_code": txn["currency_code"],
                       "retained_fee": "0"},
            "payout_totals": None, "tax_rates_used": [], "created_at": at, "updated_at": at,
        }  # fmt: skip
        self.adjustments[adjustment["id"]] = adjustment
        self.emit("adjustment.created", adjustment)
        return adjustment

    def refunded(self, txn_id: str) -> int:
        return sum(
            int(a["totals"]["total"])
            for a in self.adjustments.values()
            if a["transaction_id"] == txn_id and a["status"] == "approved"
        )


def public(obj: Obj) -> Obj:
    """An object as the API shows it (without the double's bookkeeping keys)."""
    return {k: copy.deepcopy(v) for k, v in obj.items() if not k.startswith("_")}


def _plan_price(price: Obj) -> PlanPrice:
    data = price["custom_data"] or {}
    unit = price["unit_price"]
    return PlanPrice(
        data.get("plan_id", price["id"]),
        Interval(price["billing_cycle"]["interval"]),
        Money(int(unit["amount"]), unit["currency_code"]),
    )


def _period_end(start: datetime, price: Obj, anchor_day: int) -> datetime:
    cycle = price["billing_cycle"]
    months = {"month": 1, "year": 12}[cycle["interval"]] * int(cycle["frequency"])
    return add_months(start, months, anchor_day)
