"""Use cases: one per action of the help article, each a command in and one transaction of writes.

Gateway calls happen outside database transactions (no lock is held across the network); what
the gateway answers is then recorded in one unit of work together with its audit entries.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import TypeVar

import attrs

from application import commands
from application.ids import new_id
from application.ports import (
    AuditEntry,
    CheckoutRecord,
    CheckoutSession,
    CheckoutStatus,
    Clock,
    GatewayEvent,
    GatewayEventKind,
    PaymentGateway,
    PortalSession,
    Refund,
    ScheduledChanges,
    SetupSession,
    UnitOfWork,
    UnitOfWorkFactory,
)
from application.scheduled_changes import APPLY_LEAD, held_view, with_kept_change
from domain.errors import (
    AlreadySubscribed,
    BillingError,
    CheckoutNotFound,
    CustomerNotFound,
    GatewayRejected,
    GatewayUnavailable,
    InvalidInput,
    InvoiceNotFound,
    QuoteMismatch,
    QuoteNotFound,
    StaleVersion,
    SubscriptionNotFound,
)
from domain.invoices import (
    BillingReason,
    Invoice,
    InvoicePage,
    InvoiceStatus,
    is_older_state,
)
from domain.money import Money
from domain.plans import Catalog, Interval, Plan
from domain.quotes import QUOTE_TTL, Quote
from domain.rules import ChangeTiming
from domain.subscription import (
    Access,
    GatewaySubscription,
    PaymentMethodSummary,
    PendingChange,
    Status,
    Subscription,
)

# A stale write is retried this many times: the gateway's answer is the truth, so recording
# it again on top of a concurrent update is always safe (`Subscription.sync` ignores older views).
RECORD_ATTEMPTS = 3
T = TypeVar("T")
MAX_INVOICE_PAGE = 100


def retry_stale(attempt: Callable[[], T]) -> T:
    """Run `attempt` again on fresh state when its write met a concurrent one (`StaleVersion`).

    Safe for writes that record the gateway's truth: `Subscription.sync` ignores older views,
    so recording again on top of whatever won the race never moves state backwards.
    """
    for remaining in range(RECORD_ATTEMPTS - 1, -1, -1):
        try:
            return attempt()
        except StaleVersion:
            if remaining == 0:
                raise
    raise AssertionError("unreachable")


def now_from(clock: Clock) -> datetime:
    """Whole seconds: gateways (Stripe's `proration_date`) count time in whole seconds."""
    return clock.now().replace(microsecond=0)


def live_subscription(uow: UnitOfWork, account_id: str) -> Subscription:
    sub = uow.subscriptions.for_account(account_id)
    if sub is None or not sub.status.is_live:
        raise SubscriptionNotFound()
    return sub


def audit(
    uow: UnitOfWork,
    account_id: str,
    action: str,
    inputs: Mapping[str, str],
    outcome: str,
    at: datetime,
    subscription: Subscription | None = None,
) -> None:
    """One entry for the action, then one per domain event the action recorded."""
    uow.audit.append(AuditEntry(account_id, action, dict(inputs), outcome, at))
    if subscription is not None:
        audit_events(uow, account_id, subscription, inputs)


def audit_events(
    uow: UnitOfWork, account_id: str, subscription: Subscription, inputs: Mapping[str, str]
) -> None:
    for event in subscription.collect_events():
        uow.audit.append(
            AuditEntry(account_id, f"event.{event.name}", dict(inputs), "recorded", event.at)
        )


def upsert_view(
    uow: UnitOfWork, account_id: str, view: GatewaySubscription
) -> tuple[Subscription, bool]:
    """Insert or sync a subscription from the gateway's view. Returns it and whether it changed."""
    sub, changed, _ = _upsert(uow, account_id, view)
    return sub, changed


def _upsert(
    uow: UnitOfWork, account_id: str, view: GatewaySubscription
) -> tuple[Subscription, bool, bool]:
    """`upsert_view`, also saying whether it inserted (one read decides both)."""
    sub = uow.subscriptions.by_gateway_ref(view.subscription_ref)
    if sub is None:
        sub = Subscription.from_gateway(account_id, view)
        uow.subscriptions.add(sub)
        return sub, True, True
    if not sub.sync(view):
        return sub, False, False
    uow.subscriptions.save(sub)
    return sub, True, False


@attrs.frozen
class Settled:
    """A gateway view to record, and the version of our copy it was judged against.

    Views are stamped in whole seconds, so two writes of one second (two tabs, the portal and
    a tab, a double click) carry the same stamp and their order is unknown; whichever thread
    records last would win. A view that ties with ours and differs is replaced by a fresh read
    of the gateway, taken after our copy was: it is at least as new as every write behind that
    copy. The write must then find our copy unchanged (`recheck`); if another recording landed
    meanwhile, the attempt is stale and is settled again.
    """

    view: GatewaySubscription
    judged_version: int | None  # None: we held no copy

    def recheck(self, uow: UnitOfWork) -> None:
        """Inside the writing transaction: raise `StaleVersion` if our copy moved since."""
        held = uow.subscriptions.by_gateway_ref(self.view.subscription_ref)
        if (None if held is None else held.version) != self.judged_version:
            raise StaleVersion()


def settle(
    uow_factory: UnitOfWorkFactory,
    gateway: PaymentGateway,
    view: GatewaySubscription | None = None,
    *,
    subscription_ref: str | None = None,
) -> Settled:
    """The view to record: `view`, or the gateway's current one when `view` is None or ties
    with ours and differs. Reads in its own short transaction, then calls the gateway with none
    open; the write rechecks (`Settled.recheck`)."""
    ref = view.subscription_ref if view is not None else subscription_ref
    assert ref is not None, "a view or a subscription reference"
    with uow_factory() as uow:
        held = uow.subscriptions.by_gateway_ref(ref)
    judged = None if held is None else held.version
    if view is None or (held is not None and held.synced_at == view.as_of and _differs(held, view)):
        view = gateway.get_subscription(ref)
    return Settled(view, judged)


@attrs.frozen(kw_only=True)
class _Recorder:
    """Records a gateway answer for an account, retrying a stale write on fresh state."""

    uow: UnitOfWorkFactory
    gateway: PaymentGateway
    clock: Clock

    def record(
        self,
        account_id: str,
        view: GatewaySubscription,
        action: str,
        inputs: Mapping[str, str],
        also: Callable[[UnitOfWork], None] | None = None,
    ) -> Subscription:
        def attempt() -> Subscription:
            # Settled again on every attempt: a stale write means someone recorded meanwhile.
            settled = settle(self.uow, self.gateway, view)
            with self.uow() as uow:
                settled.recheck(uow)
                sub, _ = upsert_view(uow, account_id, settled.view)
                if also is not None:
                    also(uow)
                audit(uow, account_id, action, inputs, "ok", now_from(self.clock), sub)
                uow.commit()
                return sub

        return retry_stale(attempt)

    def record_arrival(
        self,
        account_id: str,
        view: GatewaySubscription,
        action: str,
        inputs: Mapping[str, str],
        also: Callable[[UnitOfWork], None] | None = None,
    ) -> tuple[Subscription | None, Admission]:
        """Record a subscription the gateway tells us of, which may be new to us (a checkout's
        return, reconciliation): at most one per account stays live (`OneSubscription`)."""
        one = OneSubscription(uow=self.uow, gateway=self.gateway)
        admitted: list[Admission] = []

        def attempt() -> tuple[Subscription | None, Admission]:
            settled = settle(self.uow, self.gateway, view)
            admission = one.admit(
                account_id, settled.view, before=admitted[-1] if admitted else None
            )
            admitted.append(admission)
            now = now_from(self.clock)
            with self.uow() as uow:
                settled.recheck(uow)
                sub, _ = one.record(uow, account_id, admission, now)
                if also is not None:
                    also(uow)
                outcome = "duplicate" if admission.is_duplicate else "ok"
                audit(uow, account_id, action, inputs, outcome, now, sub)
                uow.commit()
                return sub, admission

        return retry_stale(attempt)

    def failed(
        self, account_id: str, action: str, inputs: Mapping[str, str], error: BillingError
    ) -> None:
        """A refused or failed action is audited too, in its own transaction."""
        with self.uow() as uow:
            audit(uow, account_id, action, inputs, error.code, now_from(self.clock))
            uow.commit()


# -- one paying subscription per account ------------------------------------------------------


@attrs.frozen
class Admission:
    """What to record of a gateway view, decided by `OneSubscription.admit`.

    `view` is the view to record (None: nothing yet); `earlier` a fresh view of the account's
    held subscription to record first; `duplicate` the audit inputs of a second subscription
    that was ended and refunded at the gateway.
    """

    view: GatewaySubscription | None
    earlier: GatewaySubscription | None = None
    duplicate: Mapping[str, str] | None = None

    @property
    def is_duplicate(self) -> bool:
        return self.view is None or self.duplicate is not None


@attrs.frozen(kw_only=True)
class OneSubscription:
    """An account pays for one subscription, even when the gateway lets a second one start.

    A checkout paid before a newer one could expire it (the customer was quicker than our
    call, or the call failed) starts a second subscription at the gateway, which the database
    refuses to hold beside the first (one live subscription per account). Without this its
    events would fail forever while it renewed and charged every month.

    The subscription kept is the one we already hold, the first that was recorded: the
    customer already has its features, invoices and any change made to it, and "first
    recorded" is decided by the same unique index whichever path (webhook, return from
    checkout, reconcile) brings a subscription in. The newcomer is canceled at once (not at
    its period end) and its first invoice refunded, with idempotency keys derived from its
    reference, so every path that meets it does so once. It is then recorded as ended, and
    the event that brought it is applied with the outcome `duplicate`.
    """

    uow: UnitOfWorkFactory
    gateway: PaymentGateway

    def admit(
        self, account_id: str, view: GatewaySubscription, *, before: Admission | None = None
    ) -> Admission:
        """Settle a second live subscription at the gateway; calls it with no transaction open.

        `before` is this path's admission of the attempt before, if its write met a
        concurrent one: a subscription it ended is still noted, though it is no longer new.
        """
        admission = self._admit(account_id, view)
        settled = before.duplicate if before is not None else None
        if (
            settled is not None
            and admission.duplicate is None
            and admission.view is not None
            and admission.view.subscription_ref == settled["subscription"]
        ):
            return attrs.evolve(admission, duplicate=settled)
        return admission

    def _admit(self, account_id: str, view: GatewaySubscription) -> Admission:
        if not view.status.is_live:
            return Admission(view)
        with self.uow() as uow:
            known = uow.subscriptions.by_gateway_ref(view.subscription_ref)
            held = uow.subscriptions.for_account(account_id)
        if (
            known is not None
            or held is None
            or not held.status.is_live
            or held.subscription_ref == view.subscription_ref
        ):
            return Admission(view)
        if view.status is Status.INCOMPLETE:
            # Not paid (yet): nothing to refund, and Stripe lets an unpaid one expire by
            # itself. If it is paid, its next event is settled here.
            return Admission(None)
        current = self.gateway.get_subscription(held.subscription_ref)
        if not current.status.is_live:
            # The one we hold has ended at the gateway and we have not heard yet: the
            # newcomer is the account's only subscription.
            return Admission(view, earlier=current)
        ref = view.subscription_ref
        ended = self.gateway.cancel_now(
            subscription_ref=ref, idempotency_key=f"duplicate:{ref}:cancel"
        )
        inputs = {"subscription": ref, "kept": held.subscription_ref}
        refund = self._refund_first_invoice(view)
        if refund is not None:
            inputs |= {"invoice": refund.invoice_id, "refund": refund.id}
            inputs["amount"] = str(refund.amount)
        return Admission(ended, duplicate=inputs)

    def _refund_first_invoice(self, view: GatewaySubscription) -> Refund | None:
        page = self.gateway.list_invoices(
            customer_ref=view.customer_ref, limit=MAX_INVOICE_PAGE, starting_after=None
        )
        first = next(
            (
                invoice
                for invoice in page.items
                if invoice.subscription_ref == view.subscription_ref
                and invoice.billing_reason is BillingReason.SUBSCRIPTION_CREATE
            ),
            None,
        )
        if first is None or first.status is not InvoiceStatus.PAID or not first.amount_paid.amount:
            return None
        return self.gateway.refund_invoice(
            invoice_id=first.id, idempotency_key=f"duplicate:{view.subscription_ref}:refund"
        )

    @staticmethod
    def record(
        uow: UnitOfWork, account_id: str, admission: Admission, at: datetime
    ) -> tuple[Subscription | None, bool]:
        """Write what `admit` decided; returns the recorded subscription and if it changed."""
        if admission.earlier is not None:
            held, _ = upsert_view(uow, account_id, admission.earlier)
            audit_events(uow, account_id, held, {"subscription": held.subscription_ref})
        if admission.view is None:
            return None, False
        ref = admission.view.subscription_ref
        sub, changed, inserted = _upsert(uow, account_id, admission.view)
        if admission.duplicate is None:
            return sub, changed
        if inserted:
            sub.collect_events()  # it never was the account's subscription: nothing started
        elif _duplicate_noted(uow, account_id, ref):
            return sub, changed  # another path settled it too (same keys) and said so
        elif not changed:
            # Its ended view was recorded meanwhile (the deletion event of our own cancel):
            # write the row anyway, so that two paths noting it at once conflict and the
            # retry finds the note.
            uow.subscriptions.save(sub)
        uow.audit.append(
            AuditEntry(
                account_id, "subscription.duplicate_canceled", dict(admission.duplicate), "ok", at
            )
        )
        return sub, changed


def _duplicate_noted(uow: UnitOfWork, account_id: str, subscription_ref: str) -> bool:
    return any(
        entry.action == "subscription.duplicate_canceled"
        and entry.inputs.get("subscription") == subscription_ref
        for entry in uow.audit.for_account(account_id)
    )


def _price_inputs(plan: str, interval: str, **more: str | None) -> dict[str, str]:
    out = {"plan": plan, "interval": interval}
    out.update({k: v for k, v in more.items() if v is not None})
    return out


# -- catalog & reading ------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class ListPlans:
    catalog: Catalog

    def __call__(self) -> tuple[Plan, ...]:
        return self.catalog.plans


@attrs.frozen
class SubscriptionView:
    subscription: Subscription
    access: Access


@attrs.frozen(kw_only=True)
class GetSubscription:
    uow: UnitOfWorkFactory
    clock: Clock
    catalog: Catalog

    def __call__(self, account_id: str) -> SubscriptionView:
        with self.uow() as uow:
            sub = uow.subscriptions.for_account(account_id)
        return self.view(sub)

    def view(self, sub: Subscription | None) -> SubscriptionView:
        """The view of a subscription already read (by a caller that caches reads)."""
        if sub is None:
            raise SubscriptionNotFound()
        return SubscriptionView(sub, sub.access_at(now_from(self.clock), self.catalog))


@attrs.frozen(kw_only=True)
class GetEntitlements:
    uow: UnitOfWorkFactory
    clock: Clock
    catalog: Catalog

    def __call__(self, account_id: str) -> Access:
        with self.uow() as uow:
            sub = uow.subscriptions.for_account(account_id)
        return self.access(sub)

    def access(self, sub: Subscription | None) -> Access:
        """The access of a subscription already read (by a caller that caches reads)."""
        return Access.none() if sub is None else sub.access_at(now_from(self.clock), self.catalog)


# -- checkout & portal ------------------------------------------------------------------------


def ensure_customer(
    uow_factory: UnitOfWorkFactory, gateway: PaymentGateway, clock: Clock, account_id: str
) -> str:
    """The account's gateway customer, created once: the idempotency key is the account itself."""
    with uow_factory() as uow:
        existing = uow.customers.get(account_id)
    if existing is not None:
        return existing
    customer_ref = gateway.ensure_customer(account_id, idempotency_key=f"customer:{account_id}")
    try:
        with uow_factory() as uow:
            if uow.customers.get(account_id) is None:
                uow.customers.add(account_id, customer_ref)
                audit(
                    uow,
                    account_id,
                    "customer.create",
                    {"customer": customer_ref},
                    "ok",
                    now_from(clock),
                )
                uow.commit()
                return customer_ref
    except StaleVersion:
        pass  # a concurrent request (another tab) linked the account first: read its link
    with uow_factory() as uow:
        stored = uow.customers.get(account_id)
    assert stored is not None
    return stored


def existing_customer(uow_factory: UnitOfWorkFactory, account_id: str) -> str:
    with uow_factory() as uow:
        customer = uow.customers.get(account_id)
    if customer is None:
        raise CustomerNotFound()
    return customer


@attrs.frozen(kw_only=True)
class StartCheckout:
    """A checkout for a new subscription; an account has at most one that can still be paid.

    A new checkout expires the account's earlier one at the gateway, so two tabs (or twenty)
    leave one payable page. The database decides which is newest: each start records its
    session as the account's open checkout, closing the one before it, in one transaction
    that concurrent starts for the account queue for. The same request again (a double
    click, a retry with the same Idempotency-Key) gets the same session back, untouched.
    """

    uow: UnitOfWorkFactory
    gateway: PaymentGateway
    clock: Clock
    catalog: Catalog

    def __call__(self, cmd: commands.StartCheckout) -> CheckoutSession:
        price = self.catalog.price(cmd.plan, cmd.interval)
        with self.uow() as uow:
            current = uow.subscriptions.for_account(cmd.account_id)
        if (
            current is not None
            and current.status.is_live
            and current.status is not Status.INCOMPLETE
        ):
            raise AlreadySubscribed()
        customer = ensure_customer(self.uow, self.gateway, self.clock, cmd.account_id)
        session = self.gateway.start_checkout(
            customer_ref=customer,
            account_id=cmd.account_id,
            price=price,
            success_url=cmd.success_url,
            cancel_url=cmd.cancel_url,
            ui_mode=cmd.ui_mode,
            idempotency_key=f"checkout:{cmd.account_id}:{cmd.request_id}",
        )
        now = now_from(self.clock)
        opened = CheckoutRecord(
            session.id, cmd.account_id, price.plan_id, price.interval, CheckoutStatus.OPEN, now
        )

        def attempt() -> CheckoutRecord | None:
            with self.uow() as uow:
                if uow.checkouts.get(session.id) is not None:
                    # The same request again: the gateway's idempotency gave back the session
                    # of the first time, which is recorded already and stays as it is.
                    return None
                replaced = uow.checkouts.open(opened)
                inputs = _price_inputs(
                    cmd.plan,
                    cmd.interval,
                    checkout=session.id,
                    replaced=replaced.id if replaced is not None else None,
                )
                audit(uow, cmd.account_id, "checkout.start", inputs, "ok", now)
                uow.commit()
                return replaced

        try:
            replaced = retry_stale(attempt)
        except StaleVersion:
            # Never recorded, so it must not stay payable beside the checkout that was.
            self._expire(cmd.account_id, session.id)
            raise
        if replaced is not None:
            self._expire(cmd.account_id, replaced.id)
        return session

    def _expire(self, account_id: str, checkout_id: str) -> None:
        """Expire a checkout at the gateway, after the database closed it.

        A failure is audited, not raised: the new checkout is recorded and usable, and if the
        old page is paid meanwhile, `OneSubscription` ends and refunds what it starts.
        """
        inputs = {"checkout": checkout_id}
        try:
            status = self.gateway.expire_checkout(
                checkout_id, idempotency_key=f"checkout-expire:{checkout_id}"
            )
        except BillingError as error:
            _Recorder(uow=self.uow, gateway=self.gateway, clock=self.clock).failed(
                account_id, "checkout.expire", inputs, error
            )
            return
        with self.uow() as uow:
            # `complete`: paid before it could be expired; its subscription is settled by
            # `OneSubscription` when it arrives.
            audit(uow, account_id, "checkout.expire", inputs, status.value, now_from(self.clock))
            uow.commit()


@attrs.frozen(kw_only=True)
class CompleteCheckout:
    """The return from checkout runs the same idempotent upsert as the webhook (it may win the race)."""

    uow: UnitOfWorkFactory
    gateway: PaymentGateway
    clock: Clock

    def __call__(self, cmd: commands.CompleteCheckout) -> Subscription | None:
        outcome = self.gateway.get_checkout(cmd.checkout_id)
        if outcome.account_id != cmd.account_id:
            raise CheckoutNotFound()  # another account's checkout does not exist for this one
        if outcome.status is not CheckoutStatus.COMPLETE or outcome.subscription is None:
            return None
        view = outcome.subscription
        _link_customer(self.uow, cmd.account_id, view.customer_ref)
        now = now_from(self.clock)

        def close(uow: UnitOfWork) -> None:
            uow.checkouts.close(cmd.checkout_id, CheckoutStatus.COMPLETE, now)

        recorder = _Recorder(uow=self.uow, gateway=self.gateway, clock=self.clock)
        sub, _ = recorder.record_arrival(
            cmd.account_id, view, "checkout.complete", {"checkout": cmd.checkout_id}, also=close
        )
        if sub is not None and sub.status.is_live:
            return sub
        # This checkout's subscription was a second one and is ended: show the one kept.
        with self.uow() as uow:
            kept = uow.subscriptions.for_account(cmd.account_id)
        return kept if kept is not None and kept.status.is_live else sub


def _link(uow: UnitOfWork, account_id: str, customer_ref: str) -> bool:
    """Link an account to a customer first seen in the gateway's answer, if neither is linked."""
    if uow.customers.get(account_id) is None and uow.customers.account_for(customer_ref) is None:
        uow.customers.add(account_id, customer_ref)
        return True
    return False


def _link_customer(uow_factory: UnitOfWorkFactory, account_id: str, customer_ref: str) -> None:
    with uow_factory() as uow:
        if _link(uow, account_id, customer_ref):
            uow.commit()


@attrs.frozen(kw_only=True)
class OpenPortal:
    """Manage Billing: a portal session for the signed-in account's own customer."""

    uow: UnitOfWorkFactory
    gateway: PaymentGateway
    clock: Clock

    def __call__(self, cmd: commands.OpenPortal) -> PortalSession:
        customer = existing_customer(self.uow, cmd.account_id)
        with self.uow() as uow:
            sub = uow.subscriptions.for_account(cmd.account_id)
        session = self.gateway.open_portal(
            customer_ref=customer,
            return_url=cmd.return_url,
            flow=cmd.flow,
            subscription_ref=sub.subscription_ref if sub is not None else None,
            idempotency_key=f"portal:{cmd.account_id}:{cmd.request_id}",
        )
        with self.uow() as uow:
            flow = cmd.flow.value if cmd.flow else "home"
            audit(uow, cmd.account_id, "portal.open", {"flow": flow}, "ok", now_from(self.clock))
            uow.commit()
        return session


# -- plan changes ---------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class PreviewPlanChange:
    """A quote: when the change takes effect and what it charges now, redeemable until it expires."""

    uow: UnitOfWorkFactory
    gateway: PaymentGateway
    clock: Clock
    catalog: Catalog

    def __call__(self, cmd: commands.PreviewPlanChange) -> Quote:
        now = now_from(self.clock)
        target = self.catalog.price(cmd.plan, cmd.interval)
        with self.uow() as uow:
            sub = live_subscription(uow, cmd.account_id)
        decision = sub.decide_plan_change(target, at=now, catalog=self.catalog)
        if decision.timing is ChangeTiming.IMMEDIATE:
            amount = self.gateway.preview_plan_change(
                subscription_ref=sub.subscription_ref, target=target, proration_at=now
            )
        else:
            amount = Money.zero(target.amount.currency)
        quote = Quote(
            id=new_id("qt"),
            account_id=cmd.account_id,
            subscription_ref=sub.subscription_ref,
            from_plan=sub.plan_id,
            from_interval=sub.interval,
            to_plan=target.plan_id,
            to_interval=target.interval,
            timing=decision.timing,
            amount_due_now=amount,
            effective_at=decision.effective_at,
            proration_at=now,
            created_at=now,
            expires_at=now + QUOTE_TTL,
        )
        with self.uow() as uow:
            uow.quotes.add(quote)
            uow.commit()
        return quote


@attrs.frozen(kw_only=True)
class ChangePlan:
    """Upgrade now (prorated, charged at once) or schedule a downgrade for the period end."""

    uow: UnitOfWorkFactory
    gateway: PaymentGateway
    clock: Clock
    catalog: Catalog

    def __call__(self, cmd: commands.ChangePlan) -> Subscription:
        now = now_from(self.clock)
        target = self.catalog.price(cmd.plan, cmd.interval)
        recorder = _Recorder(uow=self.uow, gateway=self.gateway, clock=self.clock)
        inputs = _price_inputs(cmd.plan, cmd.interval, quote=cmd.quote_id)
        with self.uow() as uow:
            sub = live_subscription(uow, cmd.account_id)
            quote = self._quote(uow, cmd, sub, now) if cmd.quote_id else None

        def redeem(uow: UnitOfWork) -> None:
            if quote is not None:
                uow.quotes.save(quote.redeemed(now))

        try:
            decision = sub.decide_plan_change(target, at=now, catalog=self.catalog)
            key = f"plan-change:{cmd.account_id}:{cmd.request_id}"
            if decision.timing is ChangeTiming.IMMEDIATE:
                view = self.gateway.upgrade(
                    subscription_ref=sub.subscription_ref,
                    target=target,
                    proration_at=quote.proration_at if quote else now,
                    idempotency_key=key,
                )
            elif self.gateway.scheduled_changes is ScheduledChanges.CORE:
                # The gateway cannot schedule it: the core keeps it, with no gateway call, and
                # the worker applies it before the renewal (`application.scheduled_changes`).
                change = PendingChange(target.plan_id, target.interval, decision.effective_at)
                return _keep_pending(
                    self.uow, self.clock, cmd.account_id, change, "plan.change", inputs, redeem
                )
            else:
                view = self.gateway.schedule_downgrade(
                    subscription_ref=sub.subscription_ref, target=target, idempotency_key=key
                )
        except BillingError as error:
            recorder.failed(cmd.account_id, "plan.change", inputs, error)
            raise

        return recorder.record(cmd.account_id, view, "plan.change", inputs, also=redeem)

    @staticmethod
    def _quote(
        uow: UnitOfWork, cmd: commands.ChangePlan, sub: Subscription, now: datetime
    ) -> Quote:
        quote = uow.quotes.get(cmd.quote_id or "")
        if quote is None:
            raise QuoteNotFound()
        quote.check_redeemable(
            account_id=cmd.account_id,
            subscription_ref=sub.subscription_ref,
            current=(sub.plan_id, sub.interval),
            target=(cmd.plan, Interval.parse(cmd.interval)),
            at=now,
        )
        if quote.proration_at < sub.current_period_start:
            raise QuoteMismatch("The billing period renewed since this quote was made.")
        return quote


@attrs.frozen(kw_only=True)
class CancelPendingChange:
    uow: UnitOfWorkFactory
    gateway: PaymentGateway
    clock: Clock
    catalog: Catalog | None = None  # needed when the core keeps changes (ScheduledChanges.CORE)

    def __call__(self, cmd: commands.CancelPendingChange) -> Subscription:
        with self.uow() as uow:
            sub = live_subscription(uow, cmd.account_id)
        change = sub.check_withdraw_pending_change()
        if self.gateway.scheduled_changes is ScheduledChanges.CORE:
            return self._withdraw_kept(cmd, sub, change)
        view = self.gateway.withdraw_scheduled_change(
            subscription_ref=sub.subscription_ref,
            idempotency_key=f"withdraw-change:{cmd.account_id}:{cmd.request_id}",
        )
        inputs = _price_inputs(change.plan_id, change.interval.value)
        return _Recorder(uow=self.uow, gateway=self.gateway, clock=self.clock).record(
            cmd.account_id, view, "plan.change.withdraw", inputs
        )

    def _withdraw_kept(
        self, cmd: commands.CancelPendingChange, sub: Subscription, change: PendingChange
    ) -> Subscription:
        """Free before the worker's window; inside it the gateway may already have the new
        price, so the current one is put back (again billing nothing)."""
        inputs = _price_inputs(change.plan_id, change.interval.value)
        if now_from(self.clock) >= change.effective_at - APPLY_LEAD:
            if self.catalog is None:
                raise GatewayRejected("Withdrawing a kept change needs the plan catalog.")
            self.gateway.apply_plan_for_renewal(
                subscription_ref=sub.subscription_ref,
                target=self.catalog.price(sub.plan_id, sub.interval),
                idempotency_key=f"withdraw-change:{cmd.account_id}:{cmd.request_id}",
            )
        return _keep_pending(
            self.uow, self.clock, cmd.account_id, None, "plan.change.withdraw", inputs
        )


def _keep_pending(
    uow_factory: UnitOfWorkFactory,
    clock: Clock,
    account_id: str,
    change: PendingChange | None,
    action: str,
    inputs: Mapping[str, str],
    also: Callable[[UnitOfWork], None] | None = None,
) -> Subscription:
    """Set (or drop) the pending change the core keeps, through `sync` so the same domain
    events are recorded as when a gateway reports a schedule."""
    now = now_from(clock)

    def attempt() -> Subscription:
        with uow_factory() as uow:
            sub = live_subscription(uow, account_id)
            sub.sync(held_view(sub, at=now, pending=change))
            uow.subscriptions.save(sub)
            if also is not None:
                also(uow)
            audit(uow, account_id, action, inputs, "ok", now, sub)
            uow.commit()
            return sub

    return retry_stale(attempt)


@attrs.frozen(kw_only=True)
class CancelSubscription:
    """Cancel at period end: access continues until then; a scheduled downgrade is superseded."""

    uow: UnitOfWorkFactory
    gateway: PaymentGateway
    clock: Clock

    def __call__(self, cmd: commands.CancelSubscription) -> Subscription:
        with self.uow() as uow:
            sub = live_subscription(uow, cmd.account_id)
        sub.check_cancel(now_from(self.clock))
        view = self.gateway.cancel_at_period_end(
            subscription_ref=sub.subscription_ref,
            idempotency_key=f"cancel:{cmd.account_id}:{cmd.request_id}",
        )
        return _Recorder(uow=self.uow, gateway=self.gateway, clock=self.clock).record(
            cmd.account_id, view, "subscription.cancel", {}
        )


@attrs.frozen(kw_only=True)
class ResumeSubscription:
    uow: UnitOfWorkFactory
    gateway: PaymentGateway
    clock: Clock

    def __call__(self, cmd: commands.ResumeSubscription) -> Subscription:
        with self.uow() as uow:
            sub = uow.subscriptions.for_account(cmd.account_id)
        if sub is None:
            raise SubscriptionNotFound()
        sub.check_resume(now_from(self.clock))
        view = self.gateway.resume(
            subscription_ref=sub.subscription_ref,
            idempotency_key=f"resume:{cmd.account_id}:{cmd.request_id}",
        )
        return _Recorder(uow=self.uow, gateway=self.gateway, clock=self.clock).record(
            cmd.account_id, view, "subscription.resume", {}
        )


# -- payment method -----------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class StartPaymentMethodUpdate:
    uow: UnitOfWorkFactory
    gateway: PaymentGateway
    clock: Clock

    def __call__(self, cmd: commands.StartPaymentMethodUpdate) -> SetupSession:
        customer = existing_customer(self.uow, cmd.account_id)
        session = self.gateway.start_payment_method_setup(
            customer_ref=customer,
            success_url=cmd.success_url,
            cancel_url=cmd.cancel_url,
            idempotency_key=f"setup:{cmd.account_id}:{cmd.request_id}",
        )
        with self.uow() as uow:
            audit(
                uow,
                cmd.account_id,
                "payment_method.setup",
                {"setup": session.id},
                "ok",
                now_from(self.clock),
            )
            uow.commit()
        return session


@attrs.frozen(kw_only=True)
class CompletePaymentMethodUpdate:
    """A completed setup becomes the default payment method: the next charge uses it."""

    uow: UnitOfWorkFactory
    gateway: PaymentGateway
    clock: Clock

    def __call__(self, cmd: commands.CompletePaymentMethodUpdate) -> Subscription | None:
        customer = existing_customer(self.uow, cmd.account_id)
        summary = self.gateway.complete_payment_method_setup(
            cmd.setup_id,
            customer_ref=customer,
            idempotency_key=f"setup-complete:{customer}:{cmd.setup_id}",
        )
        if summary is None:
            return None
        now = now_from(self.clock)

        def attempt() -> Subscription | None:
            with self.uow() as uow:
                sub = uow.subscriptions.for_account(cmd.account_id)
                if sub is not None:
                    sub.update_payment_method(summary, now)
                    uow.subscriptions.save(sub)
                inputs = {"setup": cmd.setup_id, "brand": summary.brand, "last4": summary.last4}
                audit(uow, cmd.account_id, "payment_method.update", inputs, "ok", now, sub)
                uow.commit()
                return sub

        return retry_stale(attempt)


# -- invoices ---------------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class ListInvoices:
    """The gateway's list, cached as it passes; the cache answers when the gateway cannot."""

    uow: UnitOfWorkFactory
    gateway: PaymentGateway

    def __call__(self, cmd: commands.ListInvoices) -> InvoicePage:
        if not 1 <= cmd.limit <= MAX_INVOICE_PAGE:
            raise InvalidInput(f"limit must be between 1 and {MAX_INVOICE_PAGE}.")
        with self.uow() as uow:
            customer = uow.customers.get(cmd.account_id)
            if cmd.starting_after is not None:
                known = uow.invoices.get(cmd.starting_after)
                if known is None or known[0] != cmd.account_id:
                    raise InvoiceNotFound()
        if customer is None:
            return InvoicePage((), has_more=False)
        try:
            page = self.gateway.list_invoices(
                customer_ref=customer, limit=cmd.limit, starting_after=cmd.starting_after
            )
        except GatewayUnavailable:
            with self.uow() as uow:
                return uow.invoices.list_for_account(
                    cmd.account_id, limit=cmd.limit, starting_after=cmd.starting_after
                )
        with self.uow() as uow:
            for invoice in page.items:
                uow.invoices.upsert(cmd.account_id, invoice)
            uow.commit()
        return page


@attrs.frozen(kw_only=True)
class GetInvoicePdf:
    """One invoice of the signed-in account, for its PDF. Another account's invoice is not found."""

    uow: UnitOfWorkFactory
    gateway: PaymentGateway

    def __call__(self, cmd: commands.GetInvoicePdf) -> Invoice:
        with self.uow() as uow:
            cached = uow.invoices.get(cmd.invoice_id)
            customer = uow.customers.get(cmd.account_id)
        if cached is not None:
            owner, invoice = cached
            if owner != cmd.account_id:
                raise InvoiceNotFound()
        else:
            if customer is None:
                raise InvoiceNotFound()
            invoice = self.gateway.get_invoice(cmd.invoice_id)
            if invoice.customer_ref != customer:
                raise InvoiceNotFound()
            with self.uow() as uow:
                uow.invoices.upsert(cmd.account_id, invoice)
                uow.commit()
        if invoice.pdf_url is None:
            raise InvoiceNotFound("This invoice has no PDF yet (it is still a draft).")
        return invoice


# -- events from the gateway --------------------------------------------------------------------


Within = Callable[[UnitOfWork, "ApplyOutcome"], None]


class ApplyOutcome(enum.Enum):
    APPLIED = "applied"
    STALE = "stale"  # older than the state we hold: recorded, not applied
    IGNORED = "ignored"  # a type the core does not act on
    UNKNOWN_ACCOUNT = "unknown_account"  # about a customer this service did not create
    # A second live subscription for the account: ended and refunded at the gateway and
    # recorded as ended, or not paid yet and so not recorded (`OneSubscription`).
    DUPLICATE = "duplicate"


@attrs.frozen(kw_only=True)
class ApplyGatewayEvent:
    """How changes made in the Stripe portal (or anywhere else) reach our state.

    Idempotent: applying an event twice leaves the same state. An event older than the state
    we hold is skipped; one from the same second as that state is resolved by re-reading the
    object from the gateway, since the order of same-second events is unknown.
    """

    uow: UnitOfWorkFactory
    gateway: PaymentGateway
    clock: Clock

    def __call__(self, event: GatewayEvent, *, within: Within | None = None) -> ApplyOutcome:
        """Apply `event`; `within` runs inside the applying transaction (the inbox marks it there)."""
        if event.kind is GatewayEventKind.IGNORED:
            return self._finish(ApplyOutcome.IGNORED, within)
        with self.uow() as uow:
            account_id = self._account(uow, event)
        if account_id is None:
            return self._finish(ApplyOutcome.UNKNOWN_ACCOUNT, within)
        admitted: list[Admission] = []  # this event's admissions, one per attempt
        return retry_stale(lambda: self._apply(account_id, event, within, admitted))

    def skip_stale(self, event: GatewayEvent, *, within: Within | None = None) -> ApplyOutcome:
        """An event older than what was already applied to its object: recorded, not applied."""
        return self._finish(ApplyOutcome.STALE, within)

    def _finish(self, outcome: ApplyOutcome, within: Within | None) -> ApplyOutcome:
        if within is not None:
            with self.uow() as uow:
                within(uow, outcome)
                uow.commit()
        return outcome

    @staticmethod
    def _account(uow: UnitOfWork, event: GatewayEvent) -> str | None:
        if event.customer_ref is not None:
            known = uow.customers.account_for(event.customer_ref)
            if known is not None:
                return known
        if event.subscription_ref is not None:
            sub = uow.subscriptions.by_gateway_ref(event.subscription_ref)
            if sub is not None:
                return sub.account_id
        return event.account_id

    def _view_for(self, event: GatewayEvent) -> Settled | None:
        """The view to apply, re-read from the gateway when the event alone cannot be trusted.

        Reads in its own short transaction and calls the gateway with none open.
        """
        view = event.subscription
        if view is None:
            if event.subscription_ref is None:
                return None
            return settle(self.uow, self.gateway, subscription_ref=event.subscription_ref)
        if event.kind is GatewayEventKind.SCHEDULE_CHANGED:
            return settle(self.uow, self.gateway, subscription_ref=view.subscription_ref)
        if self.gateway.scheduled_changes is ScheduledChanges.CORE:
            # The gateway knows nothing of the downgrade the core keeps: keep it in the view.
            with self.uow() as uow:
                held = uow.subscriptions.by_gateway_ref(view.subscription_ref)
            view = with_kept_change(held, view)
        return settle(self.uow, self.gateway, view)

    def _current_view(
        self, account_id: str, *, follow_customer_default: bool = False, key: str = ""
    ) -> Settled | None:
        with self.uow() as uow:
            sub = uow.subscriptions.for_account(account_id)
        if sub is None or not sub.status.is_live:
            return None
        if follow_customer_default:
            # A new customer default (set in the portal) must be what the next invoice charges.
            view = self.gateway.use_customer_payment_method(
                subscription_ref=sub.subscription_ref, idempotency_key=key
            )
            return settle(self.uow, self.gateway, view)
        return settle(self.uow, self.gateway, subscription_ref=sub.subscription_ref)

    def _apply(
        self,
        account_id: str,
        event: GatewayEvent,
        within: Within | None,
        admitted: list[Admission],
    ) -> ApplyOutcome:
        # Gateway reads happen first, with no transaction open (no lock across the network).
        settled: Settled | None = None
        summary: PaymentMethodSummary | None = None
        if event.kind in _SUBSCRIPTION_KINDS:
            settled = self._view_for(event)
        elif event.kind is GatewayEventKind.PAYMENT_METHOD_CHANGED:
            # Which card pays next is the gateway's to say: an attached card need not be the
            # default, and a late event about an old card must not bring it back. Re-read.
            settled = self._current_view(
                account_id,
                follow_customer_default=event.default_payment_method_changed,
                key=f"event:{event.id}:payment-method",
            )
        elif event.kind is GatewayEventKind.SETUP_COMPLETED and event.checkout_id:
            with self.uow() as uow:
                customer = uow.customers.get(account_id)
            if customer is not None:
                summary = self.gateway.complete_payment_method_setup(
                    event.checkout_id,
                    customer_ref=customer,
                    idempotency_key=f"setup-complete:{customer}:{event.checkout_id}",
                )
        one = OneSubscription(uow=self.uow, gateway=self.gateway)
        admission = None
        if settled is not None:
            before = admitted[-1] if admitted else None
            admission = one.admit(account_id, settled.view, before=before)
            admitted.append(admission)
        now = now_from(self.clock)
        inputs = {"event_id": event.id, "type": event.gateway_type}
        action = f"gateway_event.{event.kind.value}"
        with self.uow() as uow:
            ref = event.customer_ref
            if ref is not None and uow.customers.get(account_id) is None:
                _link(uow, account_id, ref)
            sub: Subscription | None = None
            outcome = ApplyOutcome.APPLIED
            if admission is not None:
                assert settled is not None
                settled.recheck(uow)
                sub, changed = one.record(uow, account_id, admission, now)
                if admission.is_duplicate:
                    outcome = ApplyOutcome.DUPLICATE
                else:
                    # Unchanged and not older: the view is what we hold (the echo of an
                    # answer we recorded), so it is applied, though nothing was written.
                    seen = admission.view
                    same = sub is not None and seen is not None and sub.synced_at == seen.as_of
                    outcome = ApplyOutcome.APPLIED if changed or same else ApplyOutcome.STALE
            elif event.kind is GatewayEventKind.INVOICE_CHANGED and event.invoice is not None:
                held = uow.invoices.get(event.invoice.id)
                if held is not None and is_older_state(event.invoice, held[1]):
                    outcome = ApplyOutcome.STALE  # a late event: the invoice has moved on
                else:
                    uow.invoices.upsert(account_id, event.invoice)
            elif summary is not None:
                sub = uow.subscriptions.for_account(account_id)
                if sub is not None and sub.status.is_live:
                    sub.update_payment_method(summary, event.created)
                    uow.subscriptions.save(sub)
            else:
                outcome = ApplyOutcome.IGNORED
            if event.kind is GatewayEventKind.CHECKOUT_COMPLETED and event.checkout_id:
                uow.checkouts.close(event.checkout_id, CheckoutStatus.COMPLETE, now)
            audit(uow, account_id, action, inputs, outcome.value, now, sub)
            if within is not None:
                within(uow, outcome)
            uow.commit()
        return outcome


_SUBSCRIPTION_KINDS = (
    GatewayEventKind.SUBSCRIPTION_CHANGED,
    GatewayEventKind.SCHEDULE_CHANGED,
    GatewayEventKind.CHECKOUT_COMPLETED,
)


def _differs(sub: Subscription, view: GatewaySubscription) -> bool:
    return (
        sub.plan_id,
        sub.interval,
        sub.status,
        sub.cancel_at_period_end,
        sub.cancels_at,
        sub.pending_change,
    ) != (
        view.plan_id,
        view.interval,
        view.status,
        view.cancel_at_period_end,
        view.scheduled_end,
        view.pending_change,
    ) or sub.current_period_end != view.current_period_end


# -- reconciliation ---------------------------------------------------------------------------


@attrs.frozen
class ReconcileReport:
    """What reconciling one account changed, in words an operator reads."""

    account_id: str
    changes: tuple[str, ...]


@attrs.frozen(kw_only=True)
class Reconcile:
    """Pull the gateway's truth for an account's subscriptions and invoices and repair ours.

    The repair goes through the same `sync` as events do, so it records the same domain events
    and never moves state backwards. Safe to run at any time, any number of times.
    """

    uow: UnitOfWorkFactory
    gateway: PaymentGateway
    clock: Clock
    invoice_pages: int = 10

    def accounts(self) -> list[str]:
        with self.uow() as uow:
            return list(uow.customers.accounts())

    def __call__(self, account_id: str) -> ReconcileReport:
        with self.uow() as uow:
            customer = uow.customers.get(account_id)
        if customer is None:
            raise CustomerNotFound()
        changes: list[str] = []
        recorder = _Recorder(uow=self.uow, gateway=self.gateway, clock=self.clock)
        # Oldest first: of two live subscriptions neither of which we hold, the one started
        # first is recorded first and kept (`OneSubscription`).
        for view in reversed(list(self.gateway.list_subscriptions(customer))):
            ref = view.subscription_ref
            with self.uow() as uow:
                held = uow.subscriptions.by_gateway_ref(ref)
            if held is None:
                change = f"subscription {ref}: added ({view.status.value})"
            elif _differs(held, view) and (held.synced_at is None or view.as_of >= held.synced_at):
                change = f"subscription {ref}: {_describe(held, view)}"
            else:
                continue
            _, admission = recorder.record_arrival(
                account_id, view, "reconcile", {"subscription": ref}
            )
            if admission.duplicate is not None:
                kept = admission.duplicate["kept"]
                change += f"; a second subscription beside {kept}: canceled now and refunded"
            elif admission.view is None:
                change += "; a second subscription, not paid yet: not recorded"
            changes.append(change)
        changes.extend(self._invoices(account_id, customer))
        return ReconcileReport(account_id, tuple(changes))

    def _invoices(self, account_id: str, customer: str) -> list[str]:
        changes: list[str] = []
        after: str | None = None
        for _ in range(self.invoice_pages):
            page = self.gateway.list_invoices(
                customer_ref=customer, limit=MAX_INVOICE_PAGE, starting_after=after
            )
            with self.uow() as uow:
                for invoice in page.items:
                    cached = uow.invoices.get(invoice.id)
                    if cached is None or cached[1] != invoice:
                        uow.invoices.upsert(account_id, invoice)
                        was = (
                            "added"
                            if cached is None
                            else f"{cached[1].status.value} -> {invoice.status.value}"
                        )
                        changes.append(f"invoice {invoice.id}: {was}")
                uow.commit()
            if not page.has_more or not page.items:
                break
            after = page.items[-1].id
        return changes


def _describe(held: Subscription, view: GatewaySubscription) -> str:
    parts = []
    if (held.plan_id, held.interval) != (view.plan_id, view.interval):
        parts.append(
            f"plan {held.plan_id}/{held.interval.value} -> {view.plan_id}/{view.interval.value}"
        )
    if held.status is not view.status:
        parts.append(f"status {held.status.value} -> {view.status.value}")
    if held.cancel_at_period_end != view.cancel_at_period_end:
        parts.append(
            f"cancel_at_period_end {held.cancel_at_period_end} -> {view.cancel_at_period_end}"
        )
    elif held.cancels_at != view.scheduled_end and view.scheduled_end is not None:
        parts.append(f"cancels_at -> {view.scheduled_end.isoformat()}")  # a date moved
    if held.pending_change != view.pending_change:
        parts.append("scheduled change updated")
    if held.current_period_end != view.current_period_end:
        parts.append(f"period end -> {view.current_period_end.isoformat()}")
    return ", ".join(parts) or "updated"
