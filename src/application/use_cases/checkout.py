"""Starting a subscription (checkout and its return) and opening the gateway's portal."""

from __future__ import annotations

import attrs

from responseiq_billing.application import commands
from responseiq_billing.application.ports import (
    CheckoutRecord,
    CheckoutSession,
    CheckoutStatus,
    Clock,
    PaymentGateway,
    PortalSession,
    UnitOfWork,
    UnitOfWorkFactory,
)
from responseiq_billing.application.use_cases.recording import (
    _price_inputs,
    _Recorder,
    audit,
    now_from,
    retry_stale,
)
from responseiq_billing.domain.errors import (
    AlreadySubscribed,
    BillingError,
    CheckoutNotFound,
    CustomerNotFound,
    StaleVersion,
)
from responseiq_billing.domain.plans import Catalog
from responseiq_billing.domain.subscription import (
    Status,
    Subscription,
)

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
