"""The Stripe payment gateway: `application.ports.PaymentGateway` on one injected StripeClient."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, TypeVar

import attrs
import stripe
from stripe.params import (
    CustomerUpdateParams,
    InvoiceListParams,
    SubscriptionScheduleUpdateParamsPhase,
    SubscriptionUpdateParams,
)
from stripe.params.billing_portal import SessionCreateParams as PortalSessionCreateParams
from stripe.params.checkout import SessionCreateParams as CheckoutSessionCreateParams

from responseiq_billing.adapters.stripe import translate
from responseiq_billing.application.ports import (
    CheckoutOutcome,
    CheckoutSession,
    CheckoutStatus,
    Clock,
    PaymentGateway,
    PortalFlow,
    PortalSession,
    Refund,
    ScheduledChanges,
    SetupSession,
    UiMode,
)
from responseiq_billing.domain.errors import (
    CheckoutNotFound,
    GatewayRejected,
    InvoiceNotFound,
    PaymentActionRequired,
    PaymentDeclined,
    QuoteMismatch,
    SubscriptionNotFound,
)
from responseiq_billing.domain.invoices import Invoice, InvoicePage
from responseiq_billing.domain.money import Money
from responseiq_billing.domain.plans import Catalog, Interval, PlanPrice
from responseiq_billing.domain.subscription import GatewaySubscription, PaymentMethodSummary

# What a subscription read expands so one request yields the whole view: the schedule (for
# the pending change) and the payment method the next charge uses (the subscription's own
# default wins over the customer's, so both are needed).
SUBSCRIPTION_EXPAND = [
    "schedule",
    "default_payment_method",
    "customer.invoice_settings.default_payment_method",
]
# Stripe's list endpoints return at most 100 objects per page.
MAX_PAGE = 100
# How long the catalog's current price ids are trusted before they are listed again: a run of
# `billing stripe setup` elsewhere moves a lookup key to a new price.
PRICE_MAP_MAX_AGE = timedelta(hours=1)

T = TypeVar("T")


@attrs.frozen
class StripeOptions:
    """Settings of the adapter that are not the client's (which holds key, base and retries)."""

    portal_configuration: str | None = None


class StripeGateway:
    """Implements `application.ports.PaymentGateway` against Stripe's API.

    Request counts per action are pinned by `tests/stripe/test_request_log.py` and listed in
    `docs/adr/0005-stripe-adapter.md`.
    """

    # Stripe schedules a downgrade itself (a subscription schedule's second phase).
    scheduled_changes = ScheduledChanges.GATEWAY
    invoice_links_expire = False  # an invoice's `invoice_pdf` lasts

    def __init__(
        self,
        client: stripe.StripeClient,
        catalog: Catalog,
        clock: Clock,
        options: StripeOptions | None = None,
    ) -> None:
        self._client = client
        self._catalog = catalog
        self._clock = clock
        self._options = options or StripeOptions()
        self._prices = translate.PriceMap(
            plans=[plan.id for plan in catalog.plans], resolve=self._retrieve_price
        )
        self._prices_loaded_at: datetime | None = None
        # Stripe's `created` of each current price: a quote made before it was for another one.
        self._created: dict[str, int] = {}
        self._generation = 0  # how many times the current prices have been listed
        self._lock = threading.RLock()

    # -- prices ----------------------------------------------------------------------------

    @property
    def prices(self) -> translate.PriceMap:
        """The price map, loaded on first use (webhook translation reads it too)."""
        self._load_prices()
        return self._prices

    def _load_prices(self, *, force: bool = False) -> None:
        """The catalog's current prices by lookup key, reloaded once older than
        `PRICE_MAP_MAX_AGE` (another process may have run `billing stripe setup`)."""
        with self._lock:
            now = self._clock.now()
            loaded = self._prices_loaded_at
            if not force and loaded is not None and now - loaded < PRICE_MAP_MAX_AGE:
                return
            keys = [translate.lookup_key(p.plan_id, p.interval) for p in self._catalog.all_prices()]
            current: dict[tuple[str, Interval], str] = {}
            created: dict[str, int] = {}
            with translate.translated():
                for start in range(0, len(keys), 10):  # Stripe takes at most 10 lookup keys
                    page = self._client.v1.prices.list(
                        {"lookup_keys": keys[start : start + 10], "active": True, "limit": 100}
                    )
                    for price in page.data:
                        parsed = translate.parse_lookup_key(price.lookup_key)
                        if parsed is not None:
                            current[parsed] = price.id
                            created[price.id] = int(price.created)
            self._prices.replace_current(current)
            self._created = created
            self._prices_loaded_at = now
            self._generation += 1

    def _retrieve_price(self, price_id: str) -> Mapping[str, Any] | None:
        """A price the map has not seen (a schedule phase names prices by id only)."""
        try:
            with translate.translated():
                return self._client.v1.prices.retrieve(price_id).to_dict()
        except GatewayRejected:
            return None

    def _price_id(self, price: PlanPrice) -> str:
        self._load_prices()
        found = self._prices.price_id(price.plan_id, price.interval)
        if found is None:
            self._load_prices(force=True)  # a miss: setup may have added it since
            found = self._prices.price_id(price.plan_id, price.interval)
        if found is None:
            raise GatewayRejected(
                f"Stripe has no active price with lookup key "
                f"{translate.lookup_key(price.plan_id, price.interval)!r}; run `billing stripe setup`."
            )
        return found

    def _priced(self, first: str, send: Callable[[str], T], *, since: int, where: str) -> T:
        """`send(price_id)`: a write that names `first`, a catalog price, at the parameter
        `where`. When Stripe refuses that price as inactive or missing, the map that gave it is
        stale (`billing stripe setup` has moved its lookup key since): that is a miss. The
        current prices are listed again, at most once per call (not when they have been listed
        since `since`, the call's starting `_generation`), and the write is sent once more with
        the entry's current price. `send` names the price in the write's idempotency key, so
        the retry is its own Stripe request and a retry of the whole command meets the same two.
        """
        try:
            return send(first)
        except GatewayRejected as error:
            fresh = self._replacement(first, error, since=since, where=where)
            if fresh is None:
                raise
        return send(fresh)

    def _replacement(
        self, refused: str, error: GatewayRejected, *, since: int, where: str
    ) -> str | None:
        """The current price of `refused`'s catalog entry when Stripe refused `refused` as
        inactive or missing at `where` and the entry now has another one; else None."""
        if not translate.refused_price(error, where):
            return None
        try:
            entry = self._prices.entry(refused)
        except GatewayRejected:
            return None  # not a price of ours: nothing to replace it with
        with self._lock:
            if self._generation == since:
                self._load_prices(force=True)
            fresh = self._prices.price_id(*entry)
        return fresh if fresh != refused else None

    def _check_quote(self, price_id: str, proration_at: datetime) -> None:
        """A quote charges what it showed or nothing: the price an upgrade would charge was made
        after the quote's instant (setup repriced the plan since the preview), so the preview's
        amount is not what Stripe would charge now; the customer previews again."""
        created = self._created.get(price_id)
        if created is not None and created > int(proration_at.timestamp()):
            raise QuoteMismatch(
                "The price of this plan changed after the preview; preview the change again."
            )

    # -- helpers ---------------------------------------------------------------------------

    def _view(self, sub: Mapping[str, Any], schedule: object = None) -> GatewaySubscription:
        # No price listing here: an item's price object names its plan itself (`price_entry`).
        # Stripe stamps events in whole seconds: a read stamped 12:00:00.7 would make a change
        # at 12:00:00 (really later) look older and be skipped. Whole seconds make it a tie,
        # and a tie that differs is re-read from Stripe (`ApplyGatewayEvent`).
        as_of = self._clock.now().replace(microsecond=0)
        return translate.subscription_view(sub, self._prices, as_of=as_of, schedule=schedule)

    def _read_subscription(self, subscription_ref: str) -> dict[str, Any]:
        with translate.translated(not_found=SubscriptionNotFound):
            sub = self._client.v1.subscriptions.retrieve(
                subscription_ref, {"expand": SUBSCRIPTION_EXPAND}
            )
        return sub.to_dict()

    def _update_subscription(
        self, subscription_ref: str, params: SubscriptionUpdateParams, key: str
    ) -> dict[str, Any]:
        params["expand"] = [*SUBSCRIPTION_EXPAND, *params.get("expand", [])]
        with translate.translated(not_found=SubscriptionNotFound):
            sub = self._client.v1.subscriptions.update(
                subscription_ref, params, {"idempotency_key": key}
            )
        return sub.to_dict()

    def _release_schedule(self, sub: Mapping[str, Any], key: str) -> None:
        schedule = translate.ref(sub.get("schedule"))
        if schedule is None:
            return
        with translate.translated():
            self._client.v1.subscription_schedules.release(
                schedule, options={"idempotency_key": f"{key}:release"}
            )

    # -- customers and checkout ------------------------------------------------------------

    def ensure_customer(self, account_id: str, *, idempotency_key: str) -> str:
        with translate.translated():
            customer = self._client.v1.customers.create(
                {"metadata": {"account_id": account_id}},
                {"idempotency_key": idempotency_key},
            )
        return customer.id

    def start_checkout(
        self,
        *,
        customer_ref: str,
        account_id: str,
        price: PlanPrice,
        success_url: str,
        cancel_url: str,
        ui_mode: UiMode,
        idempotency_key: str,
    ) -> CheckoutSession:
        price_id = self._price_id(price)
        since = self._generation

        def create(price_id: str) -> stripe.checkout.Session:
            params: CheckoutSessionCreateParams = {
                "mode": "subscription",
                "customer": customer_ref,
                "client_reference_id": account_id,
                "line_items": [{"price": price_id, "quantity": 1}],
                "subscription_data": {
                    "metadata": {"account_id": account_id},
                    # At the pinned API version a new subscription defaults to `flexible`
                    # billing; our preview and the domain's proration (ADR 0002) are `classic`
                    # arithmetic, so the mode is chosen here, not left to the default (ADR 0005).
                    "billing_mode": {"type": "classic"},
                },
            }
            if ui_mode is UiMode.HOSTED:
                params["ui_mode"] = "hosted_page"
                params["success_url"] = success_url
                params["cancel_url"] = cancel_url
            else:
                # An embedded page has no cancel button of ours; Stripe returns to `return_url`.
                params["ui_mode"] = "embedded_page"
                params["return_url"] = success_url
            with translate.translated():
                return self._client.v1.checkout.sessions.create(
                    params, {"idempotency_key": f"{idempotency_key}:{price_id}"}
                )

        session = self._priced(price_id, create, since=since, where="line_items")
        return CheckoutSession(
            id=session.id,
            url=session.url if ui_mode is UiMode.HOSTED else None,
            client_secret=session.client_secret if ui_mode is UiMode.EMBEDDED else None,
            expires_at=translate.ts(session.expires_at) if session.expires_at else None,
        )

    def get_checkout(self, checkout_id: str) -> CheckoutOutcome:
        with translate.translated(not_found=CheckoutNotFound):
            session = self._client.v1.checkout.sessions.retrieve(
                checkout_id,
                {"expand": [f"subscription.{field}" for field in SUBSCRIPTION_EXPAND]},
            ).to_dict()
        sub = translate.expanded(session.get("subscription"))
        return CheckoutOutcome(
            id=str(session["id"]),
            status=CheckoutStatus(session.get("status") or "open"),
            account_id=session.get("client_reference_id"),
            customer_ref=translate.ref(session.get("customer")),
            subscription=self._view(sub) if sub is not None else None,
        )

    def expire_checkout(self, checkout_id: str, *, idempotency_key: str) -> CheckoutStatus:
        try:
            with translate.translated(not_found=CheckoutNotFound):
                session = self._client.v1.checkout.sessions.expire(
                    checkout_id, options={"idempotency_key": idempotency_key}
                )
            return CheckoutStatus(session.status or "expired")
        except GatewayRejected:
            # Stripe expires only open sessions: one completed or expired already is read, and
            # left as it is.
            with translate.translated(not_found=CheckoutNotFound):
                status = self._client.v1.checkout.sessions.retrieve(checkout_id).status
            if status is None or status == "open":
                raise
            return CheckoutStatus(status)

    def open_portal(
        self,
        *,
        customer_ref: str,
        return_url: str,
        flow: PortalFlow | None,
        subscription_ref: str | None,
        idempotency_key: str,
    ) -> PortalSession:
        params: PortalSessionCreateParams = {"customer": customer_ref, "return_url": return_url}
        if self._options.portal_configuration:
            params["configuration"] = self._options.portal_configuration
        if flow is PortalFlow.PAYMENT_METHOD_UPDATE:
            params["flow_data"] = {"type": "payment_method_update"}
        elif flow is PortalFlow.SUBSCRIPTION_UPDATE and subscription_ref:
            params["flow_data"] = {
                "type": "subscription_update",
                "subscription_update": {"subscription": subscription_ref},
            }
        elif flow is PortalFlow.SUBSCRIPTION_CANCEL and subscription_ref:
            params["flow_data"] = {
                "type": "subscription_cancel",
                "subscription_cancel": {"subscription": subscription_ref},
            }
        # A subscription deep link without a subscription opens the portal's home page.
        with translate.translated():
            session = self._client.v1.billing_portal.sessions.create(
                params, {"idempotency_key": idempotency_key}
            )
        return PortalSession(id=session.id, url=session.url)

    # -- payment methods ---------------------------------------------------------------------

    def start_payment_method_setup(
        self, *, customer_ref: str, success_url: str, cancel_url: str, idempotency_key: str
    ) -> SetupSession:
        with translate.translated():
            session = self._client.v1.checkout.sessions.create(
                {
                    "mode": "setup",
                    "customer": customer_ref,
                    "currency": self._currency(),
                    "ui_mode": "hosted_page",
                    "success_url": success_url,
                    "cancel_url": cancel_url,
                },
                {"idempotency_key": idempotency_key},
            )
        return SetupSession(id=session.id, url=session.url, client_secret=None)

    def _currency(self) -> str:
        return next(iter(self._catalog.all_prices())).amount.currency.lower()

    def complete_payment_method_setup(
        self, setup_id: str, *, customer_ref: str, idempotency_key: str
    ) -> PaymentMethodSummary | None:
        with translate.translated(not_found=CheckoutNotFound):
            session = self._client.v1.checkout.sessions.retrieve(
                setup_id, {"expand": ["setup_intent.payment_method"]}
            ).to_dict()
        if translate.ref(session.get("customer")) != customer_ref:
            raise CheckoutNotFound()  # another customer's session does not exist for this one
        if session.get("mode") != "setup":
            raise GatewayRejected("That checkout session did not collect a payment method.")
        intent = translate.expanded(session.get("setup_intent"))
        if session.get("status") != "complete" or intent is None:
            return None
        method = translate.expanded(intent.get("payment_method"))
        summary = translate.card_summary(method)
        if method is None or summary is None:
            return None
        customer = customer_ref
        params: CustomerUpdateParams = {
            "invoice_settings": {"default_payment_method": str(method["id"])},
            "expand": ["subscriptions"],
        }
        with translate.translated():
            updated = self._client.v1.customers.update(
                customer, params, {"idempotency_key": f"{idempotency_key}:customer"}
            ).to_dict()
        # Checkout sets the subscription's own default, which wins over the customer's:
        # move every live subscription that has one to the new method as well.
        subs = (translate.expanded(updated.get("subscriptions")) or {}).get("data") or []
        for sub in subs:
            own = translate.ref(sub.get("default_payment_method"))
            if own is not None and own != method["id"]:
                with translate.translated():
                    self._client.v1.subscriptions.update(
                        str(sub["id"]),
                        {"default_payment_method": str(method["id"])},
                        {"idempotency_key": f"{idempotency_key}:subscription:{sub['id']}"},
                    )
        return summary

    def use_customer_payment_method(
        self, *, subscription_ref: str, idempotency_key: str
    ) -> GatewaySubscription:
        # The portal's card update sets only the customer's `invoice_settings` default, while
        # Checkout gave the subscription a default of its own, which wins: without this the
        # next renewal would still charge the old card. Clearing the subscription's own (not
        # copying the new one into it) lets later portal updates apply by themselves.
        sub = self._read_subscription(subscription_ref)
        customer = translate.expanded(sub.get("customer")) or {}
        wanted = translate.ref(
            (translate.expanded(customer.get("invoice_settings")) or {}).get(
                "default_payment_method"
            )
        )
        own = translate.ref(sub.get("default_payment_method"))
        if (
            wanted is None
            or own is None
            or own == wanted
            or not translate.subscription_is_live(sub)
        ):
            return self._view(sub)
        updated = self._update_subscription(
            subscription_ref, {"default_payment_method": ""}, f"{idempotency_key}:follow"
        )
        return self._view(updated)

    # -- plan changes ------------------------------------------------------------------------

    def preview_plan_change(
        self, *, subscription_ref: str, target: PlanPrice, proration_at: datetime
    ) -> Money:
        sub = self._read_subscription(subscription_ref)
        item = translate.first_item(sub)
        current, price_id = translate.ref(item["price"]), self._price_id(target)
        since = self._generation
        at = int(proration_at.timestamp())

        def preview(price_id: str) -> stripe.Invoice:
            # A preview changes nothing, but it is a POST: its key names everything the quote
            # depends on, so a replay can only return the same quote.
            key = f"preview:{subscription_ref}:{item['id']}:{current}:{price_id}:{at}"
            with translate.translated():
                return self._client.v1.invoices.create_preview(
                    {
                        "customer": translate.ref(sub.get("customer")) or "",
                        "subscription": subscription_ref,
                        "subscription_details": {
                            "items": [{"id": str(item["id"]), "price": price_id}],
                            "proration_behavior": "always_invoice",
                            "proration_date": at,
                        },
                    },
                    {"idempotency_key": key},
                )

        found = self._priced(price_id, preview, since=since, where="subscription_details")
        return translate.money(found.amount_due, found.currency)

    def upgrade(
        self,
        *,
        subscription_ref: str,
        target: PlanPrice,
        proration_at: datetime,
        idempotency_key: str,
    ) -> GatewaySubscription:
        sub = self._read_subscription(subscription_ref)
        item = translate.first_item(sub)
        if sub.get("pending_update") is None and self._prices.entry(item["price"]) == (
            target.plan_id,
            target.interval,
        ):
            # Already on the target (an earlier attempt of this command went through, maybe at
            # a price since retired): nothing to change and nothing more to charge.
            return self._view(sub)
        price_id = self._price_id(target)
        since = self._generation
        self._check_quote(price_id, proration_at)
        # Stripe refuses to change the items of a scheduled subscription, so a scheduled
        # downgrade is released first; if the upgrade then does not happen (not paid, or the
        # price refused), it is scheduled again.
        waiting = self._scheduled_price(sub)
        self._release_schedule(sub, idempotency_key)

        def update(price_id: str) -> dict[str, Any]:
            self._check_quote(price_id, proration_at)  # the retry's price may be newer
            return self._update_subscription(
                subscription_ref,
                {
                    "items": [{"id": str(item["id"]), "price": price_id}],
                    "proration_behavior": "always_invoice",
                    "proration_date": int(proration_at.timestamp()),
                    "payment_behavior": "pending_if_incomplete",
                    "expand": ["latest_invoice"],
                },
                f"{idempotency_key}:update:{price_id}",
            )

        try:
            updated = self._priced(price_id, update, since=since, where="items")
            latest = translate.expanded(updated.get("latest_invoice"))
            if updated.get("pending_update") is not None or (
                latest is not None and latest.get("status") not in ("paid", "void")
            ):
                self._raise_payment_failure(latest)
        except (PaymentDeclined, PaymentActionRequired, QuoteMismatch, GatewayRejected):
            # Each leaves the items as they were (a refused request changes nothing; an unpaid
            # one is only a pending update), so the released downgrade is put back.
            if waiting is not None:
                self._schedule_price(
                    subscription_ref, None, waiting, f"{idempotency_key}:reschedule", since=since
                )
            raise
        return self._view(updated)

    def _scheduled_price(self, sub: Mapping[str, Any]) -> str | None:
        """The price an attached schedule moves to at the period end, if any."""
        schedule = translate.expanded(sub.get("schedule"))
        if schedule is None or schedule.get("status") not in ("not_started", "active"):
            return None
        current = translate.expanded(schedule.get("current_phase")) or {}
        for phase in schedule.get("phases") or []:
            if int(phase.get("start_date") or 0) > int(current.get("start_date") or 0):
                items = phase.get("items") or []
                return translate.ref(items[0]["price"]) if items else None
        return None

    def _raise_payment_failure(self, latest: Mapping[str, Any] | None) -> None:
        """The proration invoice was not paid: declined, or the bank wants the customer, who
        finishes on the invoice's hosted page (or with the payment's client secret)."""
        if latest is not None:
            with translate.translated():
                payments = self._client.v1.invoice_payments.list(
                    {"invoice": str(latest["id"]), "expand": ["data.payment.payment_intent"]}
                ).to_dict()
            for payment in payments.get("data") or []:
                intent = translate.expanded(
                    (translate.expanded(payment.get("payment")) or {}).get("payment_intent")
                )
                if intent is not None and intent.get("status") == "requires_action":
                    raise PaymentActionRequired(
                        hosted_invoice_url=latest.get("hosted_invoice_url"),
                        client_secret=intent.get("client_secret"),
                    )
        raise PaymentDeclined()

    def schedule_downgrade(
        self, *, subscription_ref: str, target: PlanPrice, idempotency_key: str
    ) -> GatewaySubscription:
        sub = self._read_subscription(subscription_ref)
        price_id = self._price_id(target)
        sub["schedule"] = self._schedule_price(
            subscription_ref,
            translate.expanded(sub.get("schedule")),
            price_id,
            idempotency_key,
            since=self._generation,
        )
        return self._view(sub)

    def _schedule_price(
        self,
        subscription_ref: str,
        schedule: Mapping[str, Any] | None,
        new_price: str,
        idempotency_key: str,
        *,
        since: int,
    ) -> dict[str, Any]:
        """Two phases: the current price to the period end, then `new_price` (or, when Stripe
        refuses it as retired, its plan's current price: `_priced`)."""
        with translate.translated():
            if schedule is None:
                schedule = self._client.v1.subscription_schedules.create(
                    {"from_subscription": subscription_ref},
                    {"idempotency_key": f"{idempotency_key}:schedule"},
                ).to_dict()
        phases = list(schedule.get("phases") or [])
        current = translate.expanded(schedule.get("current_phase")) or phases[0]
        now_phase = next(
            (p for p in phases if p.get("start_date") == current.get("start_date")), phases[0]
        )
        # The subscriber's own price, retired or not: they keep paying it to the period end.
        current_price = translate.ref(now_phase["items"][0]["price"]) or ""
        schedule_id = str(schedule["id"])

        def set_phases(price_id: str) -> dict[str, Any]:
            new_phases: list[SubscriptionScheduleUpdateParamsPhase] = [
                {
                    "items": [{"price": current_price, "quantity": 1}],
                    "start_date": int(current["start_date"]),
                    "end_date": int(current["end_date"]),
                },
                {"items": [{"price": price_id, "quantity": 1}], "proration_behavior": "none"},
            ]
            with translate.translated():
                return self._client.v1.subscription_schedules.update(
                    schedule_id,
                    {"end_behavior": "release", "phases": new_phases},
                    {"idempotency_key": f"{idempotency_key}:phases:{price_id}"},
                ).to_dict()

        return self._priced(new_price, set_phases, since=since, where="phases[1]")

    def withdraw_scheduled_change(
        self, *, subscription_ref: str, idempotency_key: str
    ) -> GatewaySubscription:
        sub = self._read_subscription(subscription_ref)
        self._release_schedule(sub, idempotency_key)
        sub["schedule"] = None
        return self._view(sub)

    def apply_plan_for_renewal(
        self, *, subscription_ref: str, target: PlanPrice, idempotency_key: str
    ) -> GatewaySubscription:
        # GATEWAY-scheduling: the core never applies a downgrade itself on Stripe.
        raise GatewayRejected("Stripe schedules downgrades itself (a subscription schedule).")

    def cancel_at_period_end(
        self, *, subscription_ref: str, idempotency_key: str
    ) -> GatewaySubscription:
        sub = self._read_subscription(subscription_ref)
        self._release_schedule(sub, idempotency_key)
        updated = self._update_subscription(
            subscription_ref, {"cancel_at_period_end": True}, f"{idempotency_key}:update"
        )
        return self._view(updated)

    def resume(self, *, subscription_ref: str, idempotency_key: str) -> GatewaySubscription:
        # `cancel_at: ""` unsets a cancellation set by date too (the Dashboard's).
        updated = self._update_subscription(
            subscription_ref, {"cancel_at_period_end": False, "cancel_at": ""}, idempotency_key
        )
        return self._view(updated)

    def cancel_now(self, *, subscription_ref: str, idempotency_key: str) -> GatewaySubscription:
        # A DELETE takes no idempotency key at Stripe (it has no effect there); repeating it is
        # safe by itself, and Stripe answers a second cancel with 404 (`resource_missing`), as
        # if the canceled subscription were gone, so that case is read instead.
        del idempotency_key
        try:
            with translate.translated(not_found=SubscriptionNotFound):
                sub = self._client.v1.subscriptions.cancel(
                    subscription_ref,
                    {"expand": SUBSCRIPTION_EXPAND, "invoice_now": False, "prorate": False},
                ).to_dict()
        except SubscriptionNotFound:
            sub = self._read_subscription(subscription_ref)  # SubscriptionNotFound if unknown
            if translate.subscription_is_live(sub):
                raise
        return self._view(sub)

    def refund_invoice(self, *, invoice_id: str, idempotency_key: str) -> Refund:
        # In this API generation an invoice names its payments, not a charge: the paid
        # invoice payment gives the payment intent that Stripe refunds.
        with translate.translated():
            payments = self._client.v1.invoice_payments.list(
                {"invoice": invoice_id, "status": "paid"}
            ).to_dict()
        intent = next(
            (
                translate.ref(payment["payment"].get("payment_intent"))
                for payment in payments.get("data") or []
                if (payment.get("payment") or {}).get("type") == "payment_intent"
            ),
            None,
        )
        if intent is None:
            raise GatewayRejected("That invoice has no card payment to refund.")
        with translate.translated():
            refund = self._client.v1.refunds.create(
                {"payment_intent": intent, "metadata": {"invoice": invoice_id}},
                {"idempotency_key": idempotency_key},
            )
        return Refund(
            id=refund.id,
            invoice_id=invoice_id,
            amount=translate.money(refund.amount, refund.currency),
        )

    # -- reading -----------------------------------------------------------------------------

    def get_subscription(self, subscription_ref: str) -> GatewaySubscription:
        return self._view(self._read_subscription(subscription_ref))

    def list_subscriptions(self, customer_ref: str) -> Sequence[GatewaySubscription]:
        with translate.translated():
            page = self._client.v1.subscriptions.list(
                {
                    "customer": customer_ref,
                    "status": "all",
                    "limit": MAX_PAGE,
                    "expand": [f"data.{field}" for field in SUBSCRIPTION_EXPAND],
                }
            )
            subs = [sub.to_dict() for sub in page.auto_paging_iter()]
        return [self._view(sub) for sub in subs]

    def list_invoices(
        self, *, customer_ref: str, limit: int, starting_after: str | None
    ) -> InvoicePage:
        collected: list[Invoice] = []
        cursor, has_more = starting_after, True
        with translate.translated(not_found=InvoiceNotFound):
            while has_more and len(collected) < limit:
                params: InvoiceListParams = {
                    "customer": customer_ref,
                    "limit": min(limit - len(collected), MAX_PAGE),
                }
                if cursor is not None:
                    params["starting_after"] = cursor
                page = self._client.v1.invoices.list(params).to_dict()
                data = page.get("data") or []
                collected.extend(translate.invoice(inv) for inv in data)
                has_more = bool(page.get("has_more")) and bool(data)
                cursor = collected[-1].id if collected else cursor
        return InvoicePage(items=tuple(collected), has_more=has_more)

    def get_invoice(self, invoice_id: str) -> Invoice:
        with translate.translated(not_found=InvoiceNotFound):
            inv = self._client.v1.invoices.retrieve(invoice_id).to_dict()
        return translate.invoice(inv)


def _implements_port(gateway: StripeGateway) -> PaymentGateway:
    """Never called: mypy checks here that StripeGateway keeps every signature of the port."""
    return gateway
