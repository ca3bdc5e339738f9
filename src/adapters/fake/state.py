"""What the sandbox gateway holds, and the plumbing every call goes through.

`GatewayState` keeps the stored objects (see `records.py`), the clock, the lock and the queue
of events not yet delivered; it finds objects by id (unknown ids raise the port's not-found
errors), makes the port's views of them, and emits events in Stripe's shape. The billing
engine (`engine.py`), the sandbox controls (`sandbox.py`) and the port (`gateway.py`) build on it.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime

from responseiq_billing.adapters.fake.clock import ControllableClock
from responseiq_billing.adapters.fake.idempotency import IdempotencyKeys
from responseiq_billing.adapters.fake.records import (
    TEST_CARDS,
    Action,
    Call,
    Checkout,
    Customer,
    Failure,
    InvoiceRecord,
    Portal,
    Setup,
    Sub,
)
from responseiq_billing.application.ids import new_id
from responseiq_billing.application.ports import (
    CheckoutOutcome,
    CheckoutSession,
    CheckoutStatus,
    GatewayEvent,
    GatewayEventKind,
    ScheduledChanges,
    UiMode,
)
from responseiq_billing.domain.errors import (
    CheckoutNotFound,
    CustomerNotFound,
    GatewayRejected,
    InvoiceNotFound,
    SubscriptionNotFound,
    UnknownInterval,
    UnknownPlan,
)
from responseiq_billing.domain.invoices import Invoice
from responseiq_billing.domain.plans import Catalog, Interval, PlanPrice
from responseiq_billing.domain.subscription import GatewaySubscription, PaymentMethodSummary, Status

# Named after the module the gateway used to be, so log settings that name it still apply.
log = logging.getLogger("responseiq_billing.adapters.fake.gateway")


class GatewayState:
    """The sandbox gateway's stored objects, lock, clock and event outbox; see `FakeGateway`.

    `_operation` takes the lock for one state change and `_deliver` sends its events after
    it is released; every other method here is called with the lock held.
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
        self._customers: dict[str, Customer] = {}
        self._checkouts: dict[str, Checkout] = {}
        self._portals: dict[str, Portal] = {}
        self._setups: dict[str, Setup] = {}
        self._subs: dict[str, Sub] = {}
        self._invoices: dict[str, InvoiceRecord] = {}
        self._idempotency = IdempotencyKeys()
        self._seq = 0
        self._invoice_number = 0
        self._next_failure: Failure | None = None
        self._fail_next_call = False
        self._at: datetime | None = None  # the boundary being processed while catching up
        self._actions: dict[str, Action] = {}  # upgrades waiting for 3-D Secure

    # -- calls and delivery ---------------------------------------------------------------------

    @contextmanager
    def _operation(self) -> Iterator[None]:
        """One state change under the lock; its events are delivered after the lock is released."""
        try:
            with self._lock:
                yield
        finally:
            self._deliver()

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

    def _customer(self, customer_ref: str) -> Customer:
        customer = self._customers.get(customer_ref)
        if customer is None:
            raise CustomerNotFound()
        return customer

    def _checkout(self, checkout_id: str) -> Checkout:
        checkout = self._checkouts.get(checkout_id)
        if checkout is None:
            raise CheckoutNotFound()
        if checkout.status is CheckoutStatus.OPEN and self._clock.now() >= checkout.expires_at:
            checkout.status = CheckoutStatus.EXPIRED  # Stripe expires open sessions after 24 h
        return checkout

    def _setup(self, setup_id: str) -> Setup:
        setup = self._setups.get(setup_id)
        if setup is None:
            raise CheckoutNotFound()
        return setup

    def _sub(self, subscription_ref: str) -> Sub:
        sub = self._subs.get(subscription_ref)
        if sub is None:
            raise SubscriptionNotFound()
        return sub

    def _invoice(self, invoice_id: str) -> InvoiceRecord:
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

    def _subs_of(self, customer_ref: str) -> list[Sub]:
        subs = [s for s in self._subs.values() if s.customer_ref == customer_ref]
        return sorted(subs, key=lambda s: (s.created, s.seq), reverse=True)

    def _customer_live_sub(self, customer_ref: str) -> Sub:
        self._customer(customer_ref)
        for sub in self._subs_of(customer_ref):
            if sub.status.is_live:
                return sub
        raise SubscriptionNotFound()

    def _invoices_of(self, customer_ref: str) -> list[InvoiceRecord]:
        mine = [r for r in self._invoices.values() if r.invoice.customer_ref == customer_ref]
        return sorted(mine, key=lambda r: (r.invoice.created, r.seq), reverse=True)

    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq

    # -- views -------------------------------------------------------------------------------------

    def _view(self, sub: Sub, status: Status | None = None) -> GatewaySubscription:
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

    def _session(self, checkout: Checkout) -> CheckoutSession:
        hosted = checkout.ui_mode is UiMode.HOSTED
        url = f"{self._public_url}/sandbox/checkout/{checkout.id}" if hosted else None
        return CheckoutSession(checkout.id, url, checkout.client_secret, checkout.expires_at)

    def _outcome(self, checkout: Checkout) -> CheckoutOutcome:
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
            id=new_id("evt"),
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

    def _emit_subscription(self, sub: Sub, gateway_type: str, status: Status | None = None) -> None:
        self._emit(
            GatewayEventKind.SUBSCRIPTION_CHANGED,
            gateway_type,
            customer_ref=sub.customer_ref,
            account_id=sub.account_id,  # Stripe: subscription_data.metadata.account_id
            subscription_ref=sub.id,
            subscription=self._view(sub, status),
        )

    def _emit_schedule(self, sub: Sub, gateway_type: str) -> None:
        # A subscription_schedule object names its subscription but does not embed it, so the
        # core re-reads the subscription (SCHEDULE_CHANGED carries no view).
        self._emit(
            GatewayEventKind.SCHEDULE_CHANGED,
            gateway_type,
            customer_ref=sub.customer_ref,
            account_id=sub.account_id,
            subscription_ref=sub.id,
        )

    def _emit_invoice(self, record: InvoiceRecord, gateway_type: str) -> None:
        customer = self._customers[record.invoice.customer_ref]
        self._emit(
            GatewayEventKind.INVOICE_CHANGED,
            gateway_type,
            customer_ref=customer.id,
            account_id=customer.account_id,
            subscription_ref=record.invoice.subscription_ref,
            invoice=record.invoice,
        )

    def _emit_checkout_expired(self, checkout: Checkout) -> None:
        self._emit(
            GatewayEventKind.IGNORED,
            "checkout.session.expired",
            customer_ref=checkout.customer_ref,
            account_id=checkout.account_id,
            checkout_id=checkout.id,
        )

    # -- text ------------------------------------------------------------------------------------

    def _describe(self, price: PlanPrice) -> str:
        plan = self._catalog.plan(price.plan_id)
        return f"{plan.name} ({price.amount} / {price.interval.value})"

    @staticmethod
    def _span(sub: Sub) -> str:
        return f"{sub.period_start:%d %b %Y} - {sub.period_end:%d %b %Y}"
