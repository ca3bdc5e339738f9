"""Updating the payment method on the gateway's page; the next charge uses it."""

from __future__ import annotations

import attrs

from responseiq_billing.application import commands
from responseiq_billing.application.ports import (
    Clock,
    PaymentGateway,
    SetupSession,
    UnitOfWorkFactory,
)
from responseiq_billing.application.use_cases.checkout import existing_customer
from responseiq_billing.application.use_cases.recording import audit, now_from, retry_stale
from responseiq_billing.domain.subscription import (
    Subscription,
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
