"""Downgrades the core keeps for a gateway that cannot schedule them, through the sandbox
gateway in its CORE mode (what the Paddle adapter declares)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from responseiq_billing.adapters.fake.clock import ControllableClock
from responseiq_billing.adapters.fake.gateway import FakeGateway
from responseiq_billing.adapters.fake.repositories import InMemoryStore
from responseiq_billing.adapters.fake.storage import MemoryStorage
from responseiq_billing.application import commands
from responseiq_billing.application.ports import GatewayEvent, PaymentGateway, ScheduledChanges
from responseiq_billing.application.scheduled_changes import APPLY_LEAD
from responseiq_billing.domain.invoices import BillingReason
from responseiq_billing.domain.plans import Catalog
from responseiq_billing.domain.subscription import Subscription
from tests.unit.conftest import APR_1, MAR_16, MAY_1
from tests.wiring import container_for

ACCOUNT = "acct_core"
# The port calls that change something at the gateway (reads and checkouts aside).
WRITES = {
    "upgrade",
    "schedule_downgrade",
    "withdraw_scheduled_change",
    "apply_plan_for_renewal",
    "cancel_at_period_end",
    "resume",
    "cancel_now",
}


class Core:
    """The use cases over the sandbox gateway in CORE mode, wrapped as the container wraps it."""

    def __init__(self, catalog: Catalog, clock: ControllableClock) -> None:
        self.catalog, self.clock = catalog, clock
        self.store = InMemoryStore()
        self.fake = FakeGateway(catalog, clock, scheduled_changes=ScheduledChanges.CORE)
        self.container = container_for(
            catalog=catalog, clock=clock, gateway=self.fake, storage=MemoryStorage(self.store)
        )
        self.gateway: PaymentGateway = self.container.gateway()
        self.change_plan = self.container.change_plan()
        self.withdraw = self.container.cancel_pending_change()
        self.cancel = self.container.cancel_subscription()
        self.apply_event = self.container.apply_gateway_event()
        self.worker = self.container.apply_due_changes()
        self.entitlements = self.container.get_entitlements()
        self.fake.subscribe(self._deliver)
        session = self.container.start_checkout()(
            commands.StartCheckout(ACCOUNT, "business", "month", "https://app/ok", "https://app/no")
        )
        self.fake.complete_checkout(session.id)
        assert (
            self.container.complete_checkout()(commands.CompleteCheckout(ACCOUNT, session.id))
            is not None
        )

    webhook_down = False

    def _deliver(self, event: GatewayEvent) -> None:
        if not self.webhook_down:
            self.apply_event(event)  # webhooks, applied as they arrive

    def stored(self) -> Subscription:
        with self.store.unit_of_work() as uow:
            sub = uow.subscriptions.for_account(ACCOUNT)
        assert sub is not None
        return sub

    def writes(self) -> list[str]:
        return [call.name for call in self.fake.calls if call.name in WRITES]

    def plan_now(self) -> str | None:
        return self.entitlements(ACCOUNT).plan_id

    def invoices(self) -> list[tuple[BillingReason, int]]:
        """Newest first."""
        customer = self.stored().customer_ref
        return [
            (i.billing_reason, i.amount_paid.amount) for i in self.fake.customer_invoices(customer)
        ]


@pytest.fixture
def core(catalog: Catalog, clock: ControllableClock) -> Core:
    return Core(catalog, clock)


def test_a_downgrade_is_kept_by_the_core_with_no_gateway_call(core: Core) -> None:
    core.clock.set(MAR_16)

    sub = core.change_plan(commands.ChangePlan(ACCOUNT, "starter", "month"))

    assert (sub.plan_id, sub.pending_change and sub.pending_change.plan_id) == (
        "business",
        "starter",
    )
    assert sub.pending_change is not None and sub.pending_change.effective_at == APR_1
    assert core.writes() == []
    assert core.plan_now() == "business"
    assert core.fake.customer_subscription(sub.customer_ref).plan_id == "business"  # type: ignore[union-attr]


def test_a_downgrade_after_a_renewal_we_have_not_heard_of_waits_for_the_next_renewal(
    core: Core,
) -> None:
    """Our copy still shows the period that ended on April 1 (the renewal's webhook is late):
    the change is dated by the period the gateway is in, never by one already over."""
    core.webhook_down = True
    core.fake.advance_to(APR_1 + timedelta(days=2))
    assert core.stored().current_period_end == APR_1  # behind the gateway

    sub = core.change_plan(commands.ChangePlan(ACCOUNT, "starter", "month"))

    assert sub.current_period_end == MAY_1
    assert sub.pending_change is not None
    assert (sub.pending_change.plan_id, sub.pending_change.effective_at) == ("starter", MAY_1)
    assert core.writes() == []  # read, not written: the core still keeps the change
    # The worker does not switch the price before the hour ahead of May 1's renewal.
    assert core.worker() == []
    assert core.plan_now() == "business"


def test_a_gateway_event_meanwhile_does_not_erase_the_kept_change(core: Core) -> None:
    core.clock.set(MAR_16)
    core.change_plan(commands.ChangePlan(ACCOUNT, "starter", "month"))

    core.fake.portal_update_payment_method(core.stored().customer_ref, "mastercard")

    assert core.stored().pending_change is not None
    assert core.stored().payment_method is not None
    assert core.stored().payment_method.brand == "mastercard"  # type: ignore[union-attr]


def test_withdrawing_before_the_workers_window_costs_no_gateway_call(core: Core) -> None:
    core.clock.set(MAR_16)
    core.change_plan(commands.ChangePlan(ACCOUNT, "starter", "month"))

    sub = core.withdraw(commands.CancelPendingChange(ACCOUNT))

    assert (sub.plan_id, sub.pending_change) == ("business", None)
    assert core.writes() == []
    core.clock.set(APR_1 - APPLY_LEAD / 2)
    assert core.worker() == []  # nothing left to apply
    core.clock.set(APR_1 + timedelta(hours=1))
    core.gateway.get_subscription(sub.subscription_ref)
    assert core.invoices()[0] == (BillingReason.SUBSCRIPTION_CYCLE, 9900)


def test_the_renewal_bills_the_new_price_and_not_a_day_before_while_old_features_stay(
    core: Core,
) -> None:
    core.clock.set(MAR_16)
    core.change_plan(commands.ChangePlan(ACCOUNT, "starter", "month"))
    core.clock.set(APR_1 - timedelta(days=1))
    assert core.worker() == []  # a day before: too early, nothing changes at the gateway
    assert core.writes() == []

    core.clock.set(APR_1 - APPLY_LEAD / 2)
    [applied] = core.worker()

    assert applied.outcome == "applied"
    assert core.writes() == ["apply_plan_for_renewal"]
    assert [reason for reason, _ in core.invoices()] == [BillingReason.SUBSCRIPTION_CREATE]
    held = core.stored()
    assert (held.plan_id, held.pending_change is not None) == ("business", True)
    assert core.plan_now() == "business"  # the old features until the period ends
    assert core.worker() == []  # the next tick: this worker applied it, no call again
    assert core.writes() == ["apply_plan_for_renewal"]
    # Another worker process (a fresh instance) asks the gateway again: read-compare-write
    # finds the price in place, and nothing is billed.
    other = core.container.apply_due_changes()
    assert [a.outcome for a in other()] == ["applied"]
    assert core.writes() == ["apply_plan_for_renewal", "apply_plan_for_renewal"]
    assert [reason for reason, _ in core.invoices()] == [BillingReason.SUBSCRIPTION_CREATE]

    core.clock.set(APR_1)
    assert core.plan_now() == "starter"
    core.clock.set(APR_1 + timedelta(hours=1))
    core.gateway.get_subscription(held.subscription_ref)  # the renewal happens, events apply

    assert core.invoices()[0] == (BillingReason.SUBSCRIPTION_CYCLE, 1900)
    renewed = core.stored()
    assert (renewed.plan_id, renewed.pending_change) == ("starter", None)
    assert renewed.current_period_start == APR_1


def test_withdrawing_after_the_worker_applied_puts_the_current_price_back(core: Core) -> None:
    core.clock.set(MAR_16)
    core.change_plan(commands.ChangePlan(ACCOUNT, "starter", "month"))
    core.clock.set(APR_1 - APPLY_LEAD / 2)
    core.worker()

    sub = core.withdraw(commands.CancelPendingChange(ACCOUNT))

    assert (sub.plan_id, sub.pending_change) == ("business", None)
    assert core.fake.customer_subscription(sub.customer_ref).plan_id == "business"  # type: ignore[union-attr]
    core.clock.set(APR_1 + timedelta(hours=1))
    core.gateway.get_subscription(sub.subscription_ref)
    assert core.invoices()[0] == (BillingReason.SUBSCRIPTION_CYCLE, 9900)
    assert core.stored().plan_id == "business"


def test_cancelling_supersedes_the_kept_downgrade(core: Core) -> None:
    core.clock.set(MAR_16)
    core.change_plan(commands.ChangePlan(ACCOUNT, "starter", "month"))

    sub = core.cancel(commands.CancelSubscription(ACCOUNT))

    assert (sub.cancel_at_period_end, sub.pending_change) == (True, None)
    core.clock.set(APR_1 - APPLY_LEAD / 2)
    assert core.worker() == []
