"""The sandbox payment gateway: an in-memory Stripe, stateful, with a clock and failure injection."""

from __future__ import annotations

import copy
import enum
import logging
import threading
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import TypeVar

import attrs

from responseiq_billing.adapters.fake.clock import ControllableClock
from responseiq_billing.adapters.fake.pdf import render_text_pdf
from responseiq_billing.application.ids import new_id
from responseiq_billing.application.ports import (
    CheckoutOutcome,
    CheckoutSession,
    CheckoutStatus,
    GatewayEvent,
    GatewayEventKind,
    PaymentGateway,
    PortalFlow,
    PortalSession,
    Refund,
    ScheduledChanges,
    SetupSession,
    UiMode,
)
from responseiq_billing.domain.errors import (
    BillingError,
    CheckoutNotFound,
    CurrencyMismatch,
    CustomerNotFound,
    GatewayRejected,
    GatewayUnavailable,
    InvoiceNotFound,
    PaymentActionRequired,
    PaymentDeclined,
    SubscriptionNotFound,
    UnknownInterval,
    UnknownPlan,
)
from responseiq_billing.domain.invoices import BillingReason, Invoice, InvoicePage, InvoiceStatus
from responseiq_billing.domain.money import Money
from responseiq_billing.domain.periods import period_end
from responseiq_billing.domain.plans import Catalog, Interval, PlanPrice
from responseiq_billing.domain.rules import ChangeTiming, classify_change, prorate
from responseiq_billing.domain.subscription import (
    GatewaySubscription,
    PaymentMethodSummary,
    PendingChange,
    Status,
)

log = logging.getLogger(__name__)

T = TypeVar("T")

# Stripe's test cards, by the brand/last4 they produce. The sandbox never sees a card number:
# the sandbox checkout page offers these as buttons, as Stripe's test mode offers test tokens.
TEST_CARDS: dict[str, PaymentMethodSummary] = {
    "visa": PaymentMethodSummary("visa", "4242"),
    "mastercard": PaymentMethodSummary("mastercard", "4444"),
    "amex": PaymentMethodSummary("amex", "8431"),
    # Stripe's 4000 0027 6000 3184: the bank asks for 3-D Secure on every charge. A page the
    # customer is on (checkout, setup) runs the check there; a charge made without them (an
    # upgrade, a renewal) waits for them on the authentication page.
    "authenticate": PaymentMethodSummary("visa", "3184"),
}
AUTHENTICATION_CARD = TEST_CARDS["authenticate"]

# Stripe Checkout sessions expire 24 hours after creation unless `expires_at` says otherwise.
CHECKOUT_TTL = timedelta(hours=24)
MAX_PAGE = 100  # Stripe's list endpoints accept limit 1..100

# Statuses whose subscription Stripe still lets you update (items, schedules, cancellation).
_UPDATABLE = (Status.ACTIVE, Status.TRIALING, Status.PAST_DUE)


@attrs.frozen
class Call:
    """One call made to the gateway, for assertions (`fake.calls`)."""

    name: str
    kwargs: dict[str, object]


class _Failure(enum.Enum):
    DECLINE = "invoice.payment_failed"
    ACTION = "invoice.payment_action_required"


def _new_id(prefix: str) -> str:
    return new_id(prefix)


@attrs.define
class _Customer:
    id: str
    account_id: str
    created: datetime
    default_payment_method: PaymentMethodSummary | None = None
    # Stripe's customer balance in minor units: negative is credit applied to the next invoice.
    balance: int = 0


@attrs.define
class _Checkout:
    id: str
    customer_ref: str
    account_id: str
    price: PlanPrice
    success_url: str
    cancel_url: str
    ui_mode: UiMode
    created: datetime
    expires_at: datetime
    client_secret: str | None
    status: CheckoutStatus = CheckoutStatus.OPEN
    subscription_ref: str | None = None


@attrs.define
class _Portal:
    id: str
    customer_ref: str
    return_url: str
    flow: PortalFlow | None
    subscription_ref: str | None
    created: datetime


@attrs.define
class _Setup:
    id: str
    customer_ref: str
    success_url: str
    cancel_url: str
    created: datetime
    status: CheckoutStatus = CheckoutStatus.OPEN
    payment_method: PaymentMethodSummary | None = None


@attrs.define
class _Sub:
    id: str
    customer_ref: str
    account_id: str
    plan_id: str
    interval: Interval
    status: Status
    period_start: datetime
    period_end: datetime
    # Stripe's billing_cycle_anchor, as the day of month: a cycle started on the 31st renews on
    # the last day of shorter months and returns to the 31st afterwards.
    anchor_day: int
    created: datetime
    seq: int
    cancel_at_period_end: bool = False
    pending: PendingChange | None = None
    ended_at: datetime | None = None
    # Stripe's `cancel_at`: a cancellation on a date (set in the Dashboard), not at period end.
    cancel_at: datetime | None = None
    # Stripe's pending proration invoice items: the lines the next invoice of this
    # subscription collects (a renewal, or the final invoice when it ends on a date).
    prorations: list[_Line] = attrs.field(factory=list)


def _boundary(sub: _Sub) -> datetime:
    """The next moment the sandbox must act on a subscription: its renewal or its end date."""
    if sub.cancel_at is not None and sub.cancel_at <= sub.period_end:
        return sub.cancel_at
    return sub.period_end


def _cut_short_at(sub: _Sub) -> datetime | None:
    """The instant a cancellation date cuts the current period short; None if none does."""
    at = sub.cancel_at
    return at if at is not None and sub.period_start < at < sub.period_end else None


def _time_share(amount: Money, part: timedelta, whole: timedelta) -> Money:
    """`amount * part / whole` to the second, rounded half up: Stripe's classic proration of
    one line (the same arithmetic as `domain.rules.prorate`)."""
    seconds, total = int(part.total_seconds()), int(whole.total_seconds())
    return Money((2 * amount.amount * seconds + total) // (2 * total), amount.currency)


@attrs.frozen
class _Line:
    description: str
    amount: Money


@attrs.define
class _InvoiceRecord:
    invoice: Invoice
    lines: tuple[_Line, ...]
    payment_method: PaymentMethodSummary | None
    seq: int
    # Stripe keeps a refunded invoice `paid`; the refund is its own object on the payment.
    refund: Refund | None = None


# Stripe drops a pending update (an upgrade waiting for payment) after 23 hours.
PENDING_UPDATE_TTL = timedelta(hours=23)


@attrs.frozen
class _Action:
    """An upgrade whose payment waits for the customer's bank (Stripe's pending update)."""

    subscription_ref: str
    target: PlanPrice
    proration_at: datetime
    expires_at: datetime


@attrs.frozen
class _Stored:
    fingerprint: str
    result: object
    error: BillingError | None


class FakeGateway:
    """Implements `application.ports.PaymentGateway` in memory, behaving like Stripe.

    Test and sandbox controls (not part of the port):
    - `complete_checkout(checkout_id, outcome="succeeded", card="visa")`: the customer pays
      (or is declined) on the hosted page; on success a subscription starts now with a paid
      `subscription_create` invoice. Returns the checkout outcome.
    - `complete_setup(setup_id, outcome="succeeded", card="mastercard")`: a payment method is
      collected in setup mode (it becomes default only via `complete_payment_method_setup`,
      as in Stripe, where the customer's default is set by a separate call).
    - `portal_change_plan(customer_ref, plan, interval)`, `portal_cancel(customer_ref)`,
      `portal_resume(customer_ref)`, `portal_update_payment_method(customer_ref, card)`:
      what the customer does in the hosted portal, applying the portal's rules (upgrades
      now and invoiced, downgrades scheduled at period end, cancel at period end).
    - `advance(delta)` / `advance_to(moment)`: move the clock; renewals, scheduled changes and
      period-end cancellations happen in order, each emitting events in Stripe's order.
    - `decline_next_payment()`, `require_action_next_payment()`, `fail_next_call()`.
    - `calls`: every port call, in order. `events`: every gateway event emitted, in order.
    - `subscribe(callback)`: called with each `GatewayEvent` as it is emitted (the sandbox's
      stand-in for webhook delivery).
    - `render_invoice_pdf(invoice_id) -> bytes`: a real PDF document of the invoice.

    Lookups for the sandbox pages, none of them logged as port calls: `checkout_account`,
    `checkout_price`, `checkout_return_url`, `setup_return_url`, `portal_session_customer`,
    `portal_return_url`, `customer_subscription`, `customer_subscriptions`,
    `customer_invoices`, `customer_payment_method`, `invoice_payment_method`, `invoice_refund`,
    `customer_balance`.

    Time: every call first catches up with the clock (renewals due by now happen before the
    call is served, as they would have in Stripe), so moving the shared clock directly is safe.
    Events are delivered to subscribers after the call's state change, outside the lock, so a
    subscriber may call the gateway back (as a webhook handler re-reads a subscription).
    """

    def __init__(
        self,
        catalog: Catalog,
        clock: ControllableClock,
        *,
        public_url: str = "http://127.0.0.1:8000",
        scheduled_changes: ScheduledChanges = ScheduledChanges.GATEWAY,
    ) -> None:
        # GATEWAY (default): schedules downgrades itself, as Stripe does. CORE: refuses to, as
        # Paddle has no scheduled item changes, so the core's own path can be tested here.
        self.scheduled_changes = scheduled_changes
        self.invoice_links_expire = False  # the sandbox's invoice pages last
        self._catalog = catalog
        self._clock = clock
        self._public_url = public_url.rstrip("/")
        self._lock = threading.RLock()
        self._local = threading.local()
        self.calls: list[Call] = []
        self.events: list[GatewayEvent] = []
        # Events whose delivery raised, with the error: the sandbox's version of Stripe's
        # "failed webhook deliveries" list. A subscriber's failure never fails the API call.
        self.delivery_failures: list[tuple[GatewayEvent, BaseException]] = []
        self._subscribers: list[Callable[[GatewayEvent], None]] = []
        self._outbox: deque[GatewayEvent] = deque()
        self._customers: dict[str, _Customer] = {}
        self._checkouts: dict[str, _Checkout] = {}
        self._portals: dict[str, _Portal] = {}
        self._setups: dict[str, _Setup] = {}
        self._subs: dict[str, _Sub] = {}
        self._invoices: dict[str, _InvoiceRecord] = {}
        self._idempotent: dict[str, _Stored] = {}
        self._seq = 0
        self._invoice_number = 0
        self._next_failure: _Failure | None = None
        self._fail_next_call = False
        self._at: datetime | None = None  # the boundary being processed while catching up
        self._actions: dict[str, _Action] = {}  # upgrades waiting for 3-D Secure

    # -- test & sandbox controls ---------------------------------------------------------------

    def subscribe(self, callback: Callable[[GatewayEvent], None]) -> None:
        with self._lock:
            self._subscribers.append(callback)

    def decline_next_payment(self) -> None:
        """The next charge (checkout, upgrade or renewal) is declined, like Stripe's 4000 0000 0000 0002."""
        with self._lock:
            self._next_failure = _Failure.DECLINE

    def require_action_next_payment(self) -> None:
        """The next off-session charge needs 3-D Secure, like Stripe's 4000 0027 6000 3184.

        Checkout is on-session and completes authentication in its own page, so this flag
        waits for the next upgrade or renewal.
        """
        with self._lock:
            self._next_failure = _Failure.ACTION

    def confirm_payment_action(self, action_id: str) -> GatewaySubscription:
        """The customer confirms an upgrade's payment with the bank (3-D Secure) on its page.

        Like paying Stripe's open invoice, which applies the pending update
        (`customer.subscription.pending_update_applied`). After 23 hours the pending update
        has expired and the page takes no payment: `GatewayRejected`, the plan unchanged.
        """
        with self._operation():
            action = self._actions.pop(action_id, None)
            if action is None:
                raise GatewayRejected("There is no payment waiting for confirmation.")
            sub = self._sub(action.subscription_ref)
            if self._now() >= action.expires_at:
                raise GatewayRejected("The payment expired unconfirmed; nothing was changed.")
            self._apply_upgrade(sub, action.target, action.proration_at, authenticated=True)
            return self._view(sub)

    def payment_action_open(self, action_id: str) -> bool:
        """Whether an authentication page still takes a confirmation (sandbox page lookup)."""
        with self._lock:
            action = self._actions.get(action_id)
            return action is not None and self._clock.now() < action.expires_at

    def fail_next_call(self) -> None:
        """The next port call raises `GatewayUnavailable` and changes nothing (a timeout)."""
        with self._lock:
            self._fail_next_call = True

    def advance(self, delta: timedelta) -> datetime:
        return self.advance_to(self._clock.now() + delta)

    def advance_to(self, moment: datetime) -> datetime:
        """Move the clock to `moment`, handling every period boundary on the way in time order.

        Like a Stripe test clock: the clock stops at each boundary, so each event's `created`
        is the time it happened.
        """
        with self._operation():
            if moment < self._clock.now():
                raise ValueError("the clock never goes backwards")
            self._process_until(moment)
            self._clock.set(moment)
            return moment

    def complete_checkout(
        self, checkout_id: str, *, outcome: str = "succeeded", card: str = "visa"
    ) -> CheckoutOutcome:
        """The customer finishes the hosted checkout page: `succeeded`, `declined` or `expired`."""
        with self._operation():
            self._catch_up()
            checkout = self._checkout(checkout_id)
            if checkout.status is CheckoutStatus.COMPLETE:
                return self._outcome(checkout)
            if checkout.status is CheckoutStatus.EXPIRED:
                raise GatewayRejected("This checkout session has expired.")
            if outcome == "expired":
                checkout.status = CheckoutStatus.EXPIRED
                self._emit_checkout_expired(checkout)
                return self._outcome(checkout)
            if outcome not in ("succeeded", "declined"):
                raise ValueError(f"unknown checkout outcome {outcome!r}")
            summary = self._test_card(card)
            if outcome == "declined" or self._next_failure is _Failure.DECLINE:
                # Stripe Checkout shows the decline on its page and lets the customer try
                # another card: the session stays open and nothing is created.
                if self._next_failure is _Failure.DECLINE:
                    self._next_failure = None
                return self._outcome(checkout)
            self._start_subscription(checkout, summary)
            return self._outcome(checkout)

    def complete_setup(
        self, setup_id: str, *, outcome: str = "succeeded", card: str = "mastercard"
    ) -> None:
        """The customer adds a card in setup mode; it is attached, not yet the default."""
        with self._operation():
            self._catch_up()
            setup = self._setup(setup_id)
            if setup.status is not CheckoutStatus.OPEN:
                return
            if outcome not in ("succeeded", "declined"):
                raise ValueError(f"unknown setup outcome {outcome!r}")
            summary = self._test_card(card)
            if outcome == "declined" or self._next_failure is _Failure.DECLINE:
                if self._next_failure is _Failure.DECLINE:
                    self._next_failure = None
                return
            setup.status = CheckoutStatus.COMPLETE
            setup.payment_method = summary
            customer = self._customers[setup.customer_ref]
            self._emit(
                GatewayEventKind.IGNORED,
                "payment_method.attached",
                customer_ref=customer.id,
                account_id=customer.account_id,
                payment_method=summary,
            )
            # Stripe: checkout.session.completed for a session in setup mode.
            self._emit(
                GatewayEventKind.SETUP_COMPLETED,
                "checkout.session.completed",
                customer_ref=customer.id,
                account_id=customer.account_id,
                checkout_id=setup.id,
            )

    def portal_change_plan(self, customer_ref: str, plan: str, interval: Interval) -> None:
        """A plan change in the hosted portal, by the same rule as ours.

        The portal is configured with `proration_behavior="always_invoice"` and
        `schedule_at_period_end` on `decreasing_item_amount` / `shortening_interval`, which is
        what `classify_change` encodes: upgrades now and invoiced, downgrades at period end.
        """
        with self._operation():
            self._catch_up()
            sub = self._customer_live_sub(customer_ref)
            target = self._price(plan, interval)
            current = self._catalog.price(sub.plan_id, sub.interval)
            if classify_change(current, target) is ChangeTiming.IMMEDIATE:
                self._apply_upgrade(sub, target, self._now())
            else:
                self._apply_schedule(sub, target)

    def portal_cancel(self, customer_ref: str) -> None:
        """Cancel in the portal: `subscription_cancel.mode = "at_period_end"`."""
        with self._operation():
            self._catch_up()
            self._apply_cancel(self._customer_live_sub(customer_ref))

    def portal_resume(self, customer_ref: str) -> None:
        """The portal's "Renew plan" button on a subscription set to cancel."""
        with self._operation():
            self._catch_up()
            self._apply_resume(self._customer_live_sub(customer_ref))

    def dashboard_cancel_at(self, customer_ref: str, moment: datetime) -> None:
        """An operator sets "Cancel on a custom date" in the Dashboard (Stripe's `cancel_at`,
        default `proration_behavior=create_prorations`): the subscription renews as usual
        until `moment` (a renewal into the period holding it bills only the time until it)
        and ends then. A date inside the current period credits the time after it: a pending
        proration that the final invoice collects, its negative total becoming the
        customer's balance. Like the portal's cancel, it drops a scheduled change first."""
        with self._operation():
            self._catch_up()
            sub = self._customer_live_sub(customer_ref)
            self._require_updatable(sub)
            if moment <= self._now():
                raise GatewayRejected("A cancellation date must be in the future.")
            self._release_schedule(sub)
            cut_before = _cut_short_at(sub)
            sub.cancel_at_period_end = False
            sub.cancel_at = moment
            self._prorate_cancellation(sub, cut_before)
            self._emit_subscription(sub, "customer.subscription.updated")

    def portal_update_payment_method(self, customer_ref: str, card: str) -> None:
        """A new card in the portal becomes the customer's default at once."""
        with self._operation():
            self._catch_up()
            customer = self._customer(customer_ref)
            summary = self._test_card(card)
            self._emit(
                GatewayEventKind.IGNORED,
                "payment_method.attached",
                customer_ref=customer.id,
                account_id=customer.account_id,
                payment_method=summary,
            )
            self._set_default_payment_method(customer, summary)

    def render_invoice_pdf(self, invoice_id: str) -> bytes:
        """The invoice as a PDF document (Stripe's `invoice_pdf`), for finalized invoices."""
        with self._lock:
            record = self._invoice(invoice_id)
            invoice = record.invoice
            if invoice.status is InvoiceStatus.DRAFT or invoice.number is None:
                raise InvoiceNotFound("A draft invoice has no PDF yet.")
            customer = self._customers[invoice.customer_ref]
            lines = [
                f"Invoice number: {invoice.number}",
                f"Status: {invoice.status.value}",
                f"Date: {invoice.created:%Y-%m-%d %H:%M} UTC",
                f"Billed to: account {customer.account_id} (customer {customer.id})",
                f"Subscription: {invoice.subscription_ref or '-'}",
                f"Billing reason: {invoice.billing_reason.value}",
                f"Period: {invoice.period_start:%Y-%m-%d} to {invoice.period_end:%Y-%m-%d}",
                "",
                "Items:",
                *(f"  {line.description}: {line.amount}" for line in record.lines),
                "",
                f"Amount due: {invoice.amount_due}",
                f"Amount paid: {invoice.amount_paid}",
            ]
            if record.payment_method is not None and invoice.status is InvoiceStatus.PAID:
                pm = record.payment_method
                lines.append(f"Paid with: {pm.brand} ending in {pm.last4}")
            if record.refund is not None:
                lines.append(f"Refunded: {record.refund.amount} (refund {record.refund.id})")
            return render_text_pdf(
                title=f"Invoice {invoice.number}",
                heading=f"ResponseIQ invoice {invoice.number}",
                lines=lines,
                created=invoice.created,
            )

    def portal_session_customer(self, portal_session_id: str) -> str:
        """The customer a portal session was opened for; an unknown id is not found."""
        with self._lock:
            portal = self._portals.get(portal_session_id)
            if portal is None:
                raise CheckoutNotFound("There is no such portal session.")
            return portal.customer_ref

    def portal_return_url(self, portal_session_id: str) -> str:
        with self._lock:
            portal = self._portals.get(portal_session_id)
            if portal is None:
                raise CheckoutNotFound("There is no such portal session.")
            return portal.return_url

    def checkout_account(self, checkout_id: str) -> str | None:
        """The account a checkout was started for (Stripe's `client_reference_id`)."""
        with self._lock:
            return self._checkout(checkout_id).account_id

    def checkout_price(self, checkout_id: str) -> PlanPrice:
        with self._lock:
            return self._checkout(checkout_id).price

    def checkout_return_url(self, checkout_id: str) -> str:
        """Where the checkout page sends the customer: success (id filled in) once complete."""
        with self._lock:
            checkout = self._checkout(checkout_id)
            if checkout.status is CheckoutStatus.COMPLETE:
                return checkout.success_url.replace("{CHECKOUT_SESSION_ID}", checkout.id)
            return checkout.cancel_url

    def setup_return_url(self, setup_id: str) -> str:
        with self._lock:
            setup = self._setup(setup_id)
            if setup.status is CheckoutStatus.COMPLETE:
                return setup.success_url.replace("{CHECKOUT_SESSION_ID}", setup.id)
            return setup.cancel_url

    def customer_subscription(self, customer_ref: str) -> GatewaySubscription | None:
        """The customer's live subscription, else its newest one, or None."""
        with self._lock:
            self._customer(customer_ref)
            subs = self._subs_of(customer_ref)
            live = [sub for sub in subs if sub.status.is_live]
            return self._view((live or subs)[0]) if subs else None

    def customer_subscriptions(self, customer_ref: str) -> list[GatewaySubscription]:
        """Every subscription of the customer, newest first, live or not."""
        with self._lock:
            self._customer(customer_ref)
            return [self._view(sub) for sub in self._subs_of(customer_ref)]

    def customer_invoices(self, customer_ref: str) -> list[Invoice]:
        with self._lock:
            self._customer(customer_ref)
            return [r.invoice for r in self._invoices_of(customer_ref)]

    def customer_payment_method(self, customer_ref: str) -> PaymentMethodSummary | None:
        with self._lock:
            return self._customer(customer_ref).default_payment_method

    def invoice_payment_method(self, invoice_id: str) -> PaymentMethodSummary | None:
        """The payment method an invoice was charged to (None if nothing was charged)."""
        with self._lock:
            return self._invoice(invoice_id).payment_method

    def invoice_refund(self, invoice_id: str) -> Refund | None:
        """The refund given for an invoice's payment, if any."""
        with self._lock:
            return self._invoice(invoice_id).refund

    def customer_balance(self, customer_ref: str) -> int:
        """Stripe's customer balance in minor units: negative is credit for the next invoice."""
        with self._lock:
            return self._customer(customer_ref).balance

    # -- the port (see application.ports.PaymentGateway for the promises) ----------------------

    def ensure_customer(self, account_id: str, *, idempotency_key: str) -> str:
        def create() -> str:
            customer = _Customer(_new_id("cus"), account_id, self._now())
            self._customers[customer.id] = customer
            self._emit(
                GatewayEventKind.IGNORED,
                "customer.created",
                customer_ref=customer.id,
                account_id=account_id,
            )
            return customer.id

        return self._idempotent_call(
            "ensure_customer", idempotency_key, {"account_id": account_id}, create
        )

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
        def create() -> CheckoutSession:
            self._customer(customer_ref)
            checked = self._price(price.plan_id, price.interval)
            if checked != price:
                raise GatewayRejected("No such price.")  # Stripe: price ids name exact amounts
            now = self._now()
            checkout_id = _new_id("cs")
            secret = new_id(f"{checkout_id}_secret")
            checkout = _Checkout(
                id=checkout_id,
                customer_ref=customer_ref,
                account_id=account_id,
                price=price,
                success_url=success_url,
                cancel_url=cancel_url,
                ui_mode=ui_mode,
                created=now,
                expires_at=now + CHECKOUT_TTL,
                # Stripe: `ui_mode="embedded"` answers a client_secret and no url; hosted the reverse.
                client_secret=secret if ui_mode is UiMode.EMBEDDED else None,
            )
            self._checkouts[checkout_id] = checkout
            return self._session(checkout)

        params = {
            "customer_ref": customer_ref,
            "account_id": account_id,
            "price": price,
            "success_url": success_url,
            "cancel_url": cancel_url,
            "ui_mode": ui_mode,
        }
        return self._idempotent_call("start_checkout", idempotency_key, params, create)

    def get_checkout(self, checkout_id: str) -> CheckoutOutcome:
        with self._operation():
            self._port_call("get_checkout", checkout_id=checkout_id)
            return self._outcome(self._checkout(checkout_id))

    def expire_checkout(self, checkout_id: str, *, idempotency_key: str) -> CheckoutStatus:
        def expire() -> CheckoutStatus:
            checkout = self._checkout(checkout_id)
            # Stripe expires only open sessions; the adapter reads one that is not open.
            if checkout.status is CheckoutStatus.OPEN:
                checkout.status = CheckoutStatus.EXPIRED
                self._emit_checkout_expired(checkout)
            return checkout.status

        params = {"checkout_id": checkout_id}
        return self._idempotent_call("expire_checkout", idempotency_key, params, expire)

    def open_portal(
        self,
        *,
        customer_ref: str,
        return_url: str,
        flow: PortalFlow | None,
        subscription_ref: str | None,
        idempotency_key: str,
    ) -> PortalSession:
        def create() -> PortalSession:
            self._customer(customer_ref)
            if subscription_ref is not None:
                sub = self._sub(subscription_ref)
                if sub.customer_ref != customer_ref:
                    raise SubscriptionNotFound()
            if flow in (PortalFlow.SUBSCRIPTION_UPDATE, PortalFlow.SUBSCRIPTION_CANCEL) and (
                subscription_ref is None
            ):
                # Stripe: flow_data.subscription_update.subscription is required.
                raise GatewayRejected("This portal flow needs a subscription.")
            portal = _Portal(
                _new_id("bps"), customer_ref, return_url, flow, subscription_ref, self._now()
            )
            self._portals[portal.id] = portal
            return PortalSession(portal.id, f"{self._public_url}/sandbox/portal/{portal.id}")

        params = {
            "customer_ref": customer_ref,
            "return_url": return_url,
            "flow": flow,
            "subscription_ref": subscription_ref,
        }
        return self._idempotent_call("open_portal", idempotency_key, params, create)

    def start_payment_method_setup(
        self, *, customer_ref: str, success_url: str, cancel_url: str, idempotency_key: str
    ) -> SetupSession:
        def create() -> SetupSession:
            self._customer(customer_ref)
            # Stripe: a Checkout Session in `mode="setup"`, hence the `cs_` prefix.
            setup = _Setup(_new_id("cs"), customer_ref, success_url, cancel_url, self._now())
            self._setups[setup.id] = setup
            return SetupSession(setup.id, f"{self._public_url}/sandbox/setup/{setup.id}", None)

        params = {
            "customer_ref": customer_ref,
            "success_url": success_url,
            "cancel_url": cancel_url,
        }
        return self._idempotent_call("start_payment_method_setup", idempotency_key, params, create)

    def complete_payment_method_setup(
        self, setup_id: str, *, customer_ref: str, idempotency_key: str
    ) -> PaymentMethodSummary | None:
        def complete() -> PaymentMethodSummary | None:
            setup = self._setup(setup_id)
            if setup.customer_ref != customer_ref:
                raise CheckoutNotFound()  # Stripe: another customer's session is not found
            if setup.status is not CheckoutStatus.COMPLETE or setup.payment_method is None:
                return None
            # Stripe: customers.update(invoice_settings={"default_payment_method": pm}).
            customer = self._customers[setup.customer_ref]
            self._set_default_payment_method(customer, setup.payment_method)
            return setup.payment_method

        return self._idempotent_call(
            "complete_payment_method_setup",
            idempotency_key,
            {"setup_id": setup_id, "customer_ref": customer_ref},
            complete,
        )

    def preview_plan_change(
        self, *, subscription_ref: str, target: PlanPrice, proration_at: datetime
    ) -> Money:
        with self._operation():
            self._port_call(
                "preview_plan_change",
                subscription_ref=subscription_ref,
                target=target,
                proration_at=proration_at,
            )
            sub = self._sub(subscription_ref)
            self._require_updatable(sub)
            total = self._proration_total(sub, target, proration_at)
            # Stripe's invoices.create_preview applies the customer balance as the real one would.
            due, _ = self._apply_balance(self._customers[sub.customer_ref], total, commit=False)
            return due

    def upgrade(
        self,
        *,
        subscription_ref: str,
        target: PlanPrice,
        proration_at: datetime,
        idempotency_key: str,
    ) -> GatewaySubscription:
        def change() -> GatewaySubscription:
            sub = self._sub(subscription_ref)
            self._apply_upgrade(sub, self._price(target.plan_id, target.interval), proration_at)
            return self._view(sub)

        params = {
            "subscription_ref": subscription_ref,
            "target": target,
            "proration_at": proration_at,
        }
        return self._idempotent_call("upgrade", idempotency_key, params, change)

    def schedule_downgrade(
        self, *, subscription_ref: str, target: PlanPrice, idempotency_key: str
    ) -> GatewaySubscription:
        self._require_self_scheduling()

        def change() -> GatewaySubscription:
            sub = self._sub(subscription_ref)
            self._apply_schedule(sub, self._price(target.plan_id, target.interval))
            return self._view(sub)

        params = {"subscription_ref": subscription_ref, "target": target}
        return self._idempotent_call("schedule_downgrade", idempotency_key, params, change)

    def withdraw_scheduled_change(
        self, *, subscription_ref: str, idempotency_key: str
    ) -> GatewaySubscription:
        self._require_self_scheduling()

        def change() -> GatewaySubscription:
            sub = self._sub(subscription_ref)
            self._require_updatable(sub)
            if self._release_schedule(sub):
                self._emit_subscription(sub, "customer.subscription.updated")
            return self._view(sub)

        params = {"subscription_ref": subscription_ref}
        return self._idempotent_call("withdraw_scheduled_change", idempotency_key, params, change)

    def _require_self_scheduling(self) -> None:
        if self.scheduled_changes is not ScheduledChanges.GATEWAY:
            raise GatewayRejected("This gateway does not schedule plan changes; the core does.")

    def apply_plan_for_renewal(
        self, *, subscription_ref: str, target: PlanPrice, idempotency_key: str
    ) -> GatewaySubscription:
        """Paddle's `proration_billing_mode=do_not_bill`: the price changes now, nothing is
        billed or credited, and the next renewal bills the new price."""

        def change() -> GatewaySubscription:
            sub = self._sub(subscription_ref)
            self._require_updatable(sub)
            price = self._price(target.plan_id, target.interval)
            if (sub.plan_id, sub.interval) != (price.plan_id, price.interval):
                self._release_schedule(sub)
                sub.plan_id, sub.interval = price.plan_id, price.interval
                self._emit_subscription(sub, "customer.subscription.updated")
            return self._view(sub)

        params = {"subscription_ref": subscription_ref, "target": target}
        return self._idempotent_call("apply_plan_for_renewal", idempotency_key, params, change)

    def cancel_at_period_end(
        self, *, subscription_ref: str, idempotency_key: str
    ) -> GatewaySubscription:
        def change() -> GatewaySubscription:
            sub = self._sub(subscription_ref)
            self._apply_cancel(sub)
            return self._view(sub)

        params = {"subscription_ref": subscription_ref}
        return self._idempotent_call("cancel_at_period_end", idempotency_key, params, change)

    def resume(self, *, subscription_ref: str, idempotency_key: str) -> GatewaySubscription:
        def change() -> GatewaySubscription:
            sub = self._sub(subscription_ref)
            self._apply_resume(sub)
            return self._view(sub)

        params = {"subscription_ref": subscription_ref}
        return self._idempotent_call("resume", idempotency_key, params, change)

    def cancel_now(self, *, subscription_ref: str, idempotency_key: str) -> GatewaySubscription:
        def end() -> GatewaySubscription:
            sub = self._sub(subscription_ref)
            if sub.status.is_live:
                self._end_now(sub)
            return self._view(sub)

        params = {"subscription_ref": subscription_ref}
        return self._idempotent_call("cancel_now", idempotency_key, params, end)

    def refund_invoice(self, *, invoice_id: str, idempotency_key: str) -> Refund:
        def refund() -> Refund:
            record = self._invoices.get(invoice_id)
            if record is None:
                raise GatewayRejected("There is no such invoice to refund.")
            invoice = record.invoice
            if invoice.status is not InvoiceStatus.PAID or invoice.amount_paid.amount <= 0:
                raise GatewayRejected("This invoice has no payment to refund.")
            if record.refund is not None:
                # Stripe: `charge_already_refunded` for a second refund under another key.
                raise GatewayRejected("This invoice's payment has already been refunded.")
            record.refund = Refund(_new_id("re"), invoice.id, invoice.amount_paid)
            customer = self._customers[invoice.customer_ref]
            self._emit(
                GatewayEventKind.IGNORED,
                "charge.refunded",
                customer_ref=customer.id,
                account_id=customer.account_id,
                subscription_ref=invoice.subscription_ref,
            )
            return record.refund

        params = {"invoice_id": invoice_id}
        return self._idempotent_call("refund_invoice", idempotency_key, params, refund)

    def use_customer_payment_method(
        self, *, subscription_ref: str, idempotency_key: str
    ) -> GatewaySubscription:
        # The sandbox keeps one default per customer and charges every renewal to it, so a
        # portal update already decides the next charge: nothing to move.
        with self._operation():
            self._port_call(
                "use_customer_payment_method",
                subscription_ref=subscription_ref,
                idempotency_key=idempotency_key,
            )
            return self._view(self._sub(subscription_ref))

    def get_subscription(self, subscription_ref: str) -> GatewaySubscription:
        with self._operation():
            self._port_call("get_subscription", subscription_ref=subscription_ref)
            return self._view(self._sub(subscription_ref))

    def list_subscriptions(self, customer_ref: str) -> Sequence[GatewaySubscription]:
        with self._operation():
            self._port_call("list_subscriptions", customer_ref=customer_ref)
            self._customer(customer_ref)
            return [self._view(sub) for sub in self._subs_of(customer_ref)]

    def list_invoices(
        self, *, customer_ref: str, limit: int, starting_after: str | None
    ) -> InvoicePage:
        with self._operation():
            self._port_call(
                "list_invoices",
                customer_ref=customer_ref,
                limit=limit,
                starting_after=starting_after,
            )
            if not 1 <= limit <= MAX_PAGE:
                raise GatewayRejected(f"limit must be between 1 and {MAX_PAGE}.")
            self._customer(customer_ref)
            mine = [r.invoice for r in self._invoices_of(customer_ref)]
            if starting_after is not None:
                ids = [inv.id for inv in mine]
                if starting_after not in ids:
                    raise InvoiceNotFound()  # Stripe: "No such invoice" for the cursor
                mine = mine[ids.index(starting_after) + 1 :]
            return InvoicePage(tuple(mine[:limit]), has_more=len(mine) > limit)

    def get_invoice(self, invoice_id: str) -> Invoice:
        with self._operation():
            self._port_call("get_invoice", invoice_id=invoice_id)
            return self._invoice(invoice_id).invoice

    # -- calls, idempotency, delivery -----------------------------------------------------------

    @contextmanager
    def _operation(self) -> Iterator[None]:
        """One state change under the lock; its events are delivered after the lock is released."""
        try:
            with self._lock:
                yield
        finally:
            self._deliver()

    def _port_call(self, name: str, **kwargs: object) -> None:
        """Log a port call, fail it if asked to, and catch up with the clock. Lock held."""
        self.calls.append(Call(name, dict(kwargs)))
        if self._fail_next_call:
            self._fail_next_call = False
            raise GatewayUnavailable()
        self._catch_up()

    def _idempotent_call(
        self, name: str, key: str, params: Mapping[str, object], action: Callable[[], T]
    ) -> T:
        """Stripe's idempotency: the first result for a key is replayed, with no second effect.

        Stripe replays declines too (the stored response is the error), refuses a key reused
        with other parameters, and stores nothing for a request that never reached it.
        """
        with self._operation():
            self._port_call(name, idempotency_key=key, **params)
            fingerprint = f"{name}:{sorted((k, repr(v)) for k, v in params.items())}"
            stored = self._idempotent.get(key)
            if stored is not None:
                if stored.fingerprint != fingerprint:
                    raise GatewayRejected(
                        "This idempotency key was already used with other parameters."
                    )
                if stored.error is not None:
                    raise copy.copy(stored.error)  # the same answer, fields included
                return stored.result  # type: ignore[return-value]
            try:
                result = action()
            except (PaymentDeclined, PaymentActionRequired) as error:
                self._idempotent[key] = _Stored(fingerprint, None, error)
                raise
            if result is not None:
                # A call that found nothing to do yet (a setup not completed) may be retried.
                self._idempotent[key] = _Stored(fingerprint, result, None)
            return result

    def _deliver(self) -> None:
        # Events emitted while delivering (a subscriber calling back) join the same queue and
        # are delivered by the loop already running in this thread, keeping their order.
        if getattr(self._local, "delivering", False):
            return
        self._local.delivering = True
        try:
            while True:
                with self._lock:
                    if not self._outbox:
                        return
                    event = self._outbox.popleft()
                    subscribers = list(self._subscribers)
                for callback in subscribers:
                    try:
                        callback(event)
                    except Exception as error:
                        log.warning(
                            "delivery of %s (%s) failed: %r", event.id, event.gateway_type, error
                        )
                        with self._lock:
                            self.delivery_failures.append((event, error))
        finally:
            self._local.delivering = False

    def _now(self) -> datetime:
        return self._at if self._at is not None else self._clock.now()

    # -- lookups ---------------------------------------------------------------------------------

    def _customer(self, customer_ref: str) -> _Customer:
        customer = self._customers.get(customer_ref)
        if customer is None:
            raise CustomerNotFound()
        return customer

    def _checkout(self, checkout_id: str) -> _Checkout:
        checkout = self._checkouts.get(checkout_id)
        if checkout is None:
            raise CheckoutNotFound()
        if checkout.status is CheckoutStatus.OPEN and self._clock.now() >= checkout.expires_at:
            checkout.status = CheckoutStatus.EXPIRED  # Stripe expires open sessions after 24 h
        return checkout

    def _setup(self, setup_id: str) -> _Setup:
        setup = self._setups.get(setup_id)
        if setup is None:
            raise CheckoutNotFound()
        return setup

    def _sub(self, subscription_ref: str) -> _Sub:
        sub = self._subs.get(subscription_ref)
        if sub is None:
            raise SubscriptionNotFound()
        return sub

    def _invoice(self, invoice_id: str) -> _InvoiceRecord:
        record = self._invoices.get(invoice_id)
        if record is None:
            raise InvoiceNotFound()
        return record

    def _price(self, plan: str, interval: Interval) -> PlanPrice:
        try:
            return self._catalog.price(plan, interval)
        except (UnknownPlan, UnknownInterval) as error:
            raise GatewayRejected(f"No such price: {error.message}") from error

    def _test_card(self, card: str) -> PaymentMethodSummary:
        summary = TEST_CARDS.get(card)
        if summary is None:
            raise GatewayRejected(f"The sandbox only accepts test cards: {', '.join(TEST_CARDS)}.")
        return summary

    def _subs_of(self, customer_ref: str) -> list[_Sub]:
        subs = [s for s in self._subs.values() if s.customer_ref == customer_ref]
        return sorted(subs, key=lambda s: (s.created, s.seq), reverse=True)

    def _customer_live_sub(self, customer_ref: str) -> _Sub:
        self._customer(customer_ref)
        for sub in self._subs_of(customer_ref):
            if sub.status.is_live:
                return sub
        raise SubscriptionNotFound()

    def _invoices_of(self, customer_ref: str) -> list[_InvoiceRecord]:
        mine = [r for r in self._invoices.values() if r.invoice.customer_ref == customer_ref]
        return sorted(mine, key=lambda r: (r.invoice.created, r.seq), reverse=True)

    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq

    # -- views -------------------------------------------------------------------------------------

    def _view(self, sub: _Sub, status: Status | None = None) -> GatewaySubscription:
        customer = self._customers[sub.customer_ref]
        return GatewaySubscription(
            customer_ref=sub.customer_ref,
            subscription_ref=sub.id,
            plan_id=sub.plan_id,
            interval=sub.interval,
            status=status or sub.status,
            current_period_start=sub.period_start,
            current_period_end=sub.period_end,
            cancel_at_period_end=sub.cancel_at_period_end or sub.cancel_at is not None,
            pending_change=sub.pending,
            # The sandbox keeps one default per customer; see `_set_default_payment_method`.
            payment_method=customer.default_payment_method,
            as_of=self._now(),
            ended_at=sub.ended_at,
            cancels_at=sub.cancel_at,
        )

    def _session(self, checkout: _Checkout) -> CheckoutSession:
        hosted = checkout.ui_mode is UiMode.HOSTED
        url = f"{self._public_url}/sandbox/checkout/{checkout.id}" if hosted else None
        return CheckoutSession(checkout.id, url, checkout.client_secret, checkout.expires_at)

    def _outcome(self, checkout: _Checkout) -> CheckoutOutcome:
        view = None
        if checkout.subscription_ref is not None:
            view = self._view(self._subs[checkout.subscription_ref])
        return CheckoutOutcome(
            checkout.id, checkout.status, checkout.account_id, checkout.customer_ref, view
        )

    # -- events ------------------------------------------------------------------------------------

    def _emit(
        self,
        kind: GatewayEventKind,
        gateway_type: str,
        *,
        customer_ref: str | None = None,
        account_id: str | None = None,
        subscription_ref: str | None = None,
        subscription: GatewaySubscription | None = None,
        invoice: Invoice | None = None,
        payment_method: PaymentMethodSummary | None = None,
        checkout_id: str | None = None,
        default_payment_method_changed: bool = False,
    ) -> None:
        event = GatewayEvent(
            id=_new_id("evt"),
            kind=kind,
            gateway_type=gateway_type,
            created=self._now(),
            customer_ref=customer_ref,
            account_id=account_id,
            subscription_ref=subscription_ref,
            subscription=subscription,
            invoice=invoice,
            payment_method=payment_method,
            checkout_id=checkout_id,
            default_payment_method_changed=default_payment_method_changed,
        )
        self.events.append(event)
        self._outbox.append(event)

    def _emit_subscription(
        self, sub: _Sub, gateway_type: str, status: Status | None = None
    ) -> None:
        self._emit(
            GatewayEventKind.SUBSCRIPTION_CHANGED,
            gateway_type,
            customer_ref=sub.customer_ref,
            account_id=sub.account_id,  # Stripe: subscription_data.metadata.account_id
            subscription_ref=sub.id,
            subscription=self._view(sub, status),
        )

    def _emit_schedule(self, sub: _Sub, gateway_type: str) -> None:
        # A subscription_schedule object names its subscription but does not embed it, so the
        # core re-reads the subscription (SCHEDULE_CHANGED carries no view).
        self._emit(
            GatewayEventKind.SCHEDULE_CHANGED,
            gateway_type,
            customer_ref=sub.customer_ref,
            account_id=sub.account_id,
            subscription_ref=sub.id,
        )

    def _emit_invoice(self, record: _InvoiceRecord, gateway_type: str) -> None:
        customer = self._customers[record.invoice.customer_ref]
        self._emit(
            GatewayEventKind.INVOICE_CHANGED,
            gateway_type,
            customer_ref=customer.id,
            account_id=customer.account_id,
            subscription_ref=record.invoice.subscription_ref,
            invoice=record.invoice,
        )

    def _emit_checkout_expired(self, checkout: _Checkout) -> None:
        self._emit(
            GatewayEventKind.IGNORED,
            "checkout.session.expired",
            customer_ref=checkout.customer_ref,
            account_id=checkout.account_id,
            checkout_id=checkout.id,
        )

    # -- payments and invoices ---------------------------------------------------------------------

    def _apply_balance(
        self, customer: _Customer, total: Money, *, commit: bool
    ) -> tuple[Money, int]:
        """Amount due after the customer balance; a negative total becomes credit (Stripe)."""
        combined = total.amount + customer.balance
        if commit:
            customer.balance = min(combined, 0)
        return Money(max(combined, 0), total.currency), min(combined, 0)

    def _attempt_charge(
        self, customer: _Customer, due: Money, *, authenticated: bool = False
    ) -> _Failure | None:
        """Charge the default payment method; None when paid. A zero invoice needs no charge.
        `authenticated`: the customer has just confirmed this payment with the bank."""
        if due.amount <= 0:
            return None
        failure, self._next_failure = self._next_failure, None
        if failure is not None:
            return failure
        if customer.default_payment_method is None:
            return _Failure.DECLINE  # Stripe: "This customer has no attached payment source"
        if customer.default_payment_method == AUTHENTICATION_CARD and not authenticated:
            return _Failure.ACTION
        return None

    def _issue_invoice(
        self,
        sub: _Sub,
        reason: BillingReason,
        lines: Sequence[_Line],
        period: tuple[datetime, datetime],
        failure: _Failure | None,
    ) -> _InvoiceRecord:
        """Create, finalize and pay (or fail to pay) one invoice, emitting Stripe's events.

        Stripe's order: invoice.created (draft), invoice.finalized (numbered, with its PDF),
        then invoice.paid or invoice.payment_failed / invoice.payment_action_required.
        """
        customer = self._customers[sub.customer_ref]
        currency = lines[0].amount.currency
        total = Money(sum(line.amount.amount for line in lines), currency)
        due, _ = self._apply_balance(customer, total, commit=True)
        invoice_id = _new_id("in")
        draft = Invoice(
            id=invoice_id,
            customer_ref=customer.id,
            subscription_ref=sub.id,
            number=None,
            status=InvoiceStatus.DRAFT,
            amount_due=due,
            amount_paid=Money.zero(currency),
            created=self._now(),
            period_start=period[0],
            period_end=period[1],
            billing_reason=reason,
            pdf_url=None,  # Stripe has no invoice_pdf until the invoice is finalized
            hosted_url=None,
        )
        record = _InvoiceRecord(draft, tuple(lines), None, self._next_seq())
        self._invoices[invoice_id] = record
        self._emit_invoice(record, "invoice.created")

        self._invoice_number += 1
        record.invoice = attrs.evolve(
            draft,
            number=f"RIQ-{self._invoice_number:04d}",
            status=InvoiceStatus.OPEN,
            pdf_url=f"{self._public_url}/sandbox/invoices/{invoice_id}.pdf",
            hosted_url=f"{self._public_url}/sandbox/invoices/{invoice_id}",
        )
        self._emit_invoice(record, "invoice.finalized")

        if due.amount > 0:
            record.payment_method = customer.default_payment_method
        if failure is None:
            record.invoice = attrs.evolve(
                record.invoice, status=InvoiceStatus.PAID, amount_paid=due
            )
            self._emit_invoice(record, "invoice.paid")
        else:
            self._emit_invoice(record, failure.value)
        return record

    def _set_default_payment_method(
        self, customer: _Customer, summary: PaymentMethodSummary
    ) -> None:
        # The sandbox keeps one default per customer, used by every subscription. In Stripe a
        # subscription's own default_payment_method (set by Checkout) wins over the customer's
        # invoice_settings default, so the Stripe adapter must update both.
        if customer.default_payment_method == summary:
            return
        customer.default_payment_method = summary
        self._emit(
            GatewayEventKind.PAYMENT_METHOD_CHANGED,
            "customer.updated",
            customer_ref=customer.id,
            account_id=customer.account_id,
            payment_method=summary,
            default_payment_method_changed=True,
        )

    # -- subscription lifecycle ------------------------------------------------------------------

    def _require_updatable(self, sub: _Sub) -> None:
        if sub.status not in _UPDATABLE:
            # Stripe: "A canceled subscription can only update its cancellation_details..."
            raise GatewayRejected(f"The subscription is {sub.status.value} and cannot be changed.")

    def _start_subscription(self, checkout: _Checkout, card: PaymentMethodSummary) -> None:
        now = self._now()
        customer = self._customers[checkout.customer_ref]
        customer.default_payment_method = card
        price = checkout.price
        sub = _Sub(
            id=_new_id("sub"),
            customer_ref=customer.id,
            account_id=checkout.account_id,
            plan_id=price.plan_id,
            interval=price.interval,
            status=Status.ACTIVE,
            period_start=now,
            period_end=period_end(now, price.interval, now.day),
            anchor_day=now.day,
            created=now,
            seq=self._next_seq(),
        )
        self._subs[sub.id] = sub
        checkout.status = CheckoutStatus.COMPLETE
        checkout.subscription_ref = sub.id
        # Stripe's order for a subscription Checkout: the subscription is created `incomplete`,
        # its first invoice is created, finalized and paid, the subscription turns `active`,
        # and checkout.session.completed comes last.
        self._emit_subscription(sub, "customer.subscription.created", status=Status.INCOMPLETE)
        line = _Line(f"{self._describe(price)} ({self._span(sub)})", price.amount)
        self._issue_invoice(
            sub, BillingReason.SUBSCRIPTION_CREATE, [line], (sub.period_start, sub.period_end), None
        )
        self._emit_subscription(sub, "customer.subscription.updated")
        self._emit(
            GatewayEventKind.CHECKOUT_COMPLETED,
            "checkout.session.completed",
            customer_ref=customer.id,
            account_id=checkout.account_id,
            subscription_ref=sub.id,
            checkout_id=checkout.id,
        )

    def _proration_total(self, sub: _Sub, target: PlanPrice, proration_at: datetime) -> Money:
        return sum(
            (line.amount for line in self._proration_lines(sub, target, proration_at)),
            Money.zero(target.amount.currency),
        )

    def _proration_lines(self, sub: _Sub, target: PlanPrice, proration_at: datetime) -> list[_Line]:
        """Stripe's proration lines, computed by the domain's own `prorate`."""
        current = self._catalog.price(sub.plan_id, sub.interval)
        if not sub.period_start <= proration_at <= sub.period_end:
            # Stripe refuses a proration_date outside the current period.
            raise GatewayRejected("The proration date must lie within the current period.")
        try:
            proration = prorate(
                current,
                target,
                period_start=sub.period_start,
                period_end_at=sub.period_end,
                at=proration_at,
                anchor_day=proration_at.day,
            )
        except CurrencyMismatch as error:
            raise GatewayRejected(error.message) from error
        since = f"{proration_at:%d %b %Y}"
        if target.interval is current.interval:
            charge_text = f"Remaining time on {self._describe(target)} after {since}"
        else:
            charge_text = f"{self._describe(target)} from {since}"
        return [
            _Line(f"Unused time on {self._describe(current)} after {since}", proration.credit),
            _Line(charge_text, proration.charge),
        ]

    def _apply_upgrade(
        self, sub: _Sub, target: PlanPrice, proration_at: datetime, *, authenticated: bool = False
    ) -> None:
        """An immediate, invoiced change with Stripe's `payment_behavior="pending_if_incomplete"`.

        The new price applies only if the proration invoice is paid. In Stripe a failed payment
        leaves an open invoice and a `pending_update` until it expires; the port promises that
        nothing changed, so the sandbox models the state after the pending update is dropped:
        no invoice, no event, the plan unchanged.
        """
        self._require_updatable(sub)
        if (target.plan_id, target.interval) == (sub.plan_id, sub.interval):
            return  # Stripe: updating to the price already in force changes nothing
        lines = self._proration_lines(sub, target, proration_at)
        customer = self._customers[sub.customer_ref]
        total = Money(sum(line.amount.amount for line in lines), target.amount.currency)
        due, _ = self._apply_balance(customer, total, commit=False)
        failure = self._attempt_charge(customer, due, authenticated=authenticated)
        if failure is _Failure.DECLINE:
            raise PaymentDeclined()
        if failure is _Failure.ACTION:
            # Stripe keeps a pending update for 23 hours while the invoice waits on its
            # hosted page; the sandbox's stand-in is its authentication page.
            action_id = _new_id("auth")
            self._actions[action_id] = _Action(
                sub.id, target, proration_at, self._now() + PENDING_UPDATE_TTL
            )
            raise PaymentActionRequired(
                hosted_invoice_url=f"{self._public_url}/sandbox/authenticate/{action_id}"
            )
        now = self._now()
        self._release_schedule(sub)  # a scheduled downgrade is dropped first
        if target.interval is not sub.interval:
            # Changing the interval resets Stripe's billing_cycle_anchor to now: a new period
            # starts, billed in full (less the credit for the unused old period).
            sub.period_start = now
            sub.period_end = period_end(now, target.interval, now.day)
            sub.anchor_day = now.day
        sub.plan_id, sub.interval = target.plan_id, target.interval
        self._issue_invoice(
            sub,
            BillingReason.SUBSCRIPTION_UPDATE,
            lines,
            (proration_at, sub.period_end),
            None,
        )
        self._emit_subscription(sub, "customer.subscription.updated")

    def _apply_schedule(self, sub: _Sub, target: PlanPrice) -> None:
        """A downgrade at period end: Stripe's subscription schedule with a second phase."""
        self._require_updatable(sub)
        if sub.cancel_at_period_end:
            raise GatewayRejected("The subscription is set to cancel; renew it first.")
        replacing = sub.pending is not None
        sub.pending = PendingChange(target.plan_id, target.interval, sub.period_end)
        self._emit_schedule(
            sub, "subscription_schedule.updated" if replacing else "subscription_schedule.created"
        )
        self._emit_subscription(sub, "customer.subscription.updated")

    def _release_schedule(self, sub: _Sub) -> bool:
        """Drop a scheduled change (Stripe: subscription_schedules.release). Returns if one was."""
        if sub.pending is None:
            return False
        sub.pending = None
        self._emit_schedule(sub, "subscription_schedule.released")
        return True

    def _apply_cancel(self, sub: _Sub) -> None:
        self._require_updatable(sub)
        if sub.cancel_at_period_end:
            return  # setting cancel_at_period_end again is a no-op in Stripe
        self._release_schedule(sub)  # cancel supersedes a scheduled downgrade
        cut_before = _cut_short_at(sub)
        sub.cancel_at_period_end = True
        sub.cancel_at = None  # Stripe: cancel_at_period_end replaces a date set before
        self._prorate_cancellation(sub, cut_before)
        self._emit_subscription(sub, "customer.subscription.updated")

    def _prorate_cancellation(self, sub: _Sub, cut_before: datetime | None) -> None:
        """Stripe's prorations for a moved cancellation date: the time a date used to cut off
        the current period is charged back, the time the new one cuts off is credited."""
        cut_after = _cut_short_at(sub)
        if cut_after == cut_before:
            return
        price = self._catalog.price(sub.plan_id, sub.interval)
        whole = sub.period_end - sub.period_start
        if cut_before is not None:
            back = _time_share(price.amount, sub.period_end - cut_before, whole)
            since = f"{cut_before:%d %b %Y}"
            sub.prorations.append(
                _Line(f"Remaining time on {self._describe(price)} after {since}", back)
            )
        if cut_after is not None:
            credit = _time_share(price.amount, sub.period_end - cut_after, whole)
            since = f"{cut_after:%d %b %Y}"
            sub.prorations.append(
                _Line(f"Unused time on {self._describe(price)} after {since}", -credit)
            )

    def _end_now(self, sub: _Sub) -> None:
        """Stripe's `subscriptions.cancel` without `prorate` or `invoice_now`: the subscription
        ends now, nothing is credited or invoiced (pending prorations are removed), and an
        attached schedule is canceled."""
        if sub.pending is not None:
            sub.pending = None
            self._emit_schedule(sub, "subscription_schedule.canceled")
        sub.prorations.clear()
        sub.status = Status.CANCELED
        sub.ended_at = self._now()
        self._emit_subscription(sub, "customer.subscription.deleted")

    def _apply_resume(self, sub: _Sub) -> None:
        self._require_updatable(sub)
        if not sub.cancel_at_period_end and sub.cancel_at is None:
            return
        cut_before = _cut_short_at(sub)
        sub.cancel_at_period_end = False
        sub.cancel_at = None  # the adapter's resume clears a date as well (`cancel_at: ""`)
        self._prorate_cancellation(sub, cut_before)
        self._emit_subscription(sub, "customer.subscription.updated")

    # -- time ----------------------------------------------------------------------------------------

    def _catch_up(self) -> None:
        self._process_until(self._clock.now())

    def _process_until(self, moment: datetime) -> None:
        """Handle every period boundary up to `moment`, earliest first, across all subscriptions."""
        while True:
            due = [s for s in self._subs.values() if s.status.is_live and _boundary(s) <= moment]
            if not due:
                return
            sub = min(due, key=lambda s: (_boundary(s), s.seq))
            boundary = _boundary(sub)
            if boundary > self._clock.now():
                self._clock.set(boundary)  # a test clock stops at each boundary
            self._at = boundary
            try:
                if sub.cancel_at is not None and sub.cancel_at <= sub.period_end:
                    self._end_on_date(sub)
                else:
                    self._period_end(sub)
            finally:
                self._at = None

    def _end_on_date(self, sub: _Sub) -> None:
        """Stripe ends a subscription at its `cancel_at`, then a final invoice collects the
        pending prorations: a credit for the unused time becomes the customer's balance
        (nothing due, nothing paid back to the card)."""
        assert sub.cancel_at is not None
        if sub.pending is not None:
            sub.pending = None
            self._emit_schedule(sub, "subscription_schedule.canceled")
        sub.status = Status.CANCELED
        sub.ended_at = sub.cancel_at
        self._emit_subscription(sub, "customer.subscription.deleted")
        self._invoice_prorations(sub, (sub.cancel_at, sub.period_end))

    def _invoice_prorations(self, sub: _Sub, period: tuple[datetime, datetime]) -> None:
        """The final invoice of an ended subscription's pending prorations, if it has any."""
        if not sub.prorations:
            return
        lines, sub.prorations = list(sub.prorations), []
        self._issue_invoice(sub, BillingReason.SUBSCRIPTION_CYCLE, lines, period, None)

    def _period_end(self, sub: _Sub) -> None:
        at = sub.period_end
        if sub.cancel_at_period_end:
            # Stripe ends the subscription at the period end and sends
            # customer.subscription.deleted; a final invoice only collects pending prorations.
            sub.status = Status.CANCELED
            sub.ended_at = at
            sub.pending = None
            self._emit_subscription(sub, "customer.subscription.deleted")
            self._invoice_prorations(sub, (at, at))
            return
        if sub.pending is not None and sub.pending.effective_at <= at:
            # The schedule's next phase starts: the new price, with proration_behavior "none".
            sub.plan_id, sub.interval = sub.pending.plan_id, sub.pending.interval
            sub.pending = None
        sub.period_start = at
        sub.period_end = period_end(at, sub.interval, sub.anchor_day)
        price = self._catalog.price(sub.plan_id, sub.interval)
        customer = self._customers[sub.customer_ref]
        cut = _cut_short_at(sub)
        if cut is None:
            line = _Line(f"{self._describe(price)} ({self._span(sub)})", price.amount)
            until = sub.period_end
        else:
            # A cancellation date inside the new period: Stripe bills only the time until it.
            amount = _time_share(price.amount, cut - at, sub.period_end - at)
            line = _Line(f"{self._describe(price)} ({at:%d %b %Y} - {cut:%d %b %Y})", amount)
            until = cut
        lines, sub.prorations = [line, *sub.prorations], []
        total = sum((entry.amount for entry in lines), Money.zero(price.amount.currency))
        due, _ = self._apply_balance(customer, total, commit=False)
        failure = self._attempt_charge(customer, due)
        self._issue_invoice(
            sub,
            BillingReason.SUBSCRIPTION_CYCLE,
            lines,
            (sub.period_start, until),
            failure,
        )
        # Stripe: a failed renewal payment turns the subscription past_due (Smart Retries then
        # run; the sandbox does not retry); a paid renewal brings a past_due one back to active.
        sub.status = Status.ACTIVE if failure is None else Status.PAST_DUE
        self._emit_subscription(sub, "customer.subscription.updated")

    # -- text ------------------------------------------------------------------------------------

    def _describe(self, price: PlanPrice) -> str:
        plan = self._catalog.plan(price.plan_id)
        return f"{plan.name} ({price.amount} / {price.interval.value})"

    @staticmethod
    def _span(sub: _Sub) -> str:
        return f"{sub.period_start:%d %b %Y} - {sub.period_end:%d %b %Y}"


def _implements_the_port(fake: FakeGateway) -> PaymentGateway:
    """Never called: mypy checks here that the fake keeps every signature of the port."""
    return fake
