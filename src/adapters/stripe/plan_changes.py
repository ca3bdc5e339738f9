"""Changing plans: the proration preview, the upgrade charged now and the downgrade a
subscription schedule makes at the period end."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import stripe
from stripe.params import SubscriptionScheduleUpdateParamsPhase

from responseiq_billing.adapters.stripe import translate
from responseiq_billing.adapters.stripe.base import StripeBase
from responseiq_billing.domain.errors import (
    GatewayRejected,
    PaymentActionRequired,
    PaymentDeclined,
    QuoteMismatch,
)
from responseiq_billing.domain.money import Money
from responseiq_billing.domain.plans import PlanPrice
from responseiq_billing.domain.subscription import GatewaySubscription


class PlanChanges(StripeBase):
    """Previews, upgrades and scheduled downgrades."""

    def preview_plan_change(
        self, *, subscription_ref: str, target: PlanPrice, proration_at: datetime
    ) -> Money:
        sub = self._read_subscription(subscription_ref)
        item = translate.first_item(sub)
        current, price_id = translate.ref(item["price"]), self._pricing.price_id(target)
        since = self._pricing.generation
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

        found = self._pricing.priced(price_id, preview, since=since, where="subscription_details")
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
        price_id = self._pricing.price_id(target)
        since = self._pricing.generation
        self._pricing.check_quote(price_id, proration_at)
        # Stripe refuses to change the items of a scheduled subscription, so a scheduled
        # downgrade is released first; if the upgrade then does not happen (not paid, or the
        # price refused), it is scheduled again.
        waiting = self._scheduled_price(sub)
        self._release_schedule(sub, idempotency_key)

        def update(price_id: str) -> dict[str, Any]:
            self._pricing.check_quote(price_id, proration_at)  # the retry's price may be newer
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
            updated = self._pricing.priced(price_id, update, since=since, where="items")
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
        price_id = self._pricing.price_id(target)
        sub["schedule"] = self._schedule_price(
            subscription_ref,
            translate.expanded(sub.get("schedule")),
            price_id,
            idempotency_key,
            since=self._pricing.generation,
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
        refuses it as retired, its plan's current price: `StripePrices.priced`)."""
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

        return self._pricing.priced(new_price, set_phases, since=since, where="phases[1]")

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
