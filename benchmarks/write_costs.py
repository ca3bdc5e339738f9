"""What each write action costs: units of work opened and subscription rows written.

The counting harness of `tests/unit/test_unit_of_work_counts.py` (which asserts the same bounds)
over the sandbox gateway: an account on Growth, then an upgrade, a downgrade, a cancel and a
resume, each counted on its own; then the webhooks those actions caused, applied afterwards
(they repeat what was recorded and must write nothing), and a view identical to the one held.

Run: `.venv/bin/python benchmarks/write_costs.py`. Prints figures only.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from figures import record
from tests.unit.test_unit_of_work_counts import CountingBilling, Counts, deliver, subscribed

from responseiq_billing.adapters.fake.clock import ControllableClock
from responseiq_billing.adapters.fake.gateway import FakeGateway
from responseiq_billing.adapters.fake.repositories import InMemoryStore
from responseiq_billing.application import commands, use_cases
from responseiq_billing.application.ports import GatewayEvent
from responseiq_billing.domain.plans import default_catalog

PART = "write actions"


def harness() -> tuple[CountingBilling, list[GatewayEvent]]:
    catalog = default_catalog()
    clock = ControllableClock(datetime(2026, 3, 1, 9, tzinfo=UTC))
    gateway = FakeGateway(catalog, clock, public_url="https://sandbox.test")
    billing = CountingBilling(InMemoryStore(), gateway, clock, catalog)
    billing.counts = Counts()
    events: list[GatewayEvent] = []
    gateway.subscribe(events.append)
    subscribed(billing, events)  # on Growth, its webhooks applied, three days on
    return billing, events


def show(action: str, counts: Counts, units: int, echo: Counts) -> None:
    print(
        f"{action:<10} {counts.units} units of work, {counts.subscription_writes} subscription "
        f"write(s); its webhooks afterwards: {echo.subscription_writes} write(s)"
    )
    record(PART, f"{action}: units of work", counts.units, "units", target=("<=", units))
    writes = counts.subscription_writes + echo.subscription_writes
    record(
        PART,
        f"{action}: subscription writes, with its webhooks",
        writes,
        "writes",
        target=("<=", 1),
    )


def main() -> None:
    account = "acct_ada"  # the account `subscribed` signs up
    actions = (
        ("upgrade", 4, lambda b: b.change_plan(commands.ChangePlan(account, "business", "month"))),
        ("downgrade", 3, lambda b: b.change_plan(commands.ChangePlan(account, "starter", "month"))),
        ("cancel", 3, lambda b: b.cancel(commands.CancelSubscription(account))),
    )
    for action, units, run in actions:
        billing, events = harness()
        with billing.counting() as counts:
            run(billing)
        show(action, counts, units, deliver(billing, events))
    billing, events = harness()
    billing.cancel(commands.CancelSubscription(account))
    deliver(billing, events)
    with billing.counting() as counts:
        billing.resume(commands.ResumeSubscription(account))
    show("resume", counts, 3, deliver(billing, events))

    view = billing.gateway_view(account)
    with billing.counting() as counts, billing.uow() as uow:
        use_cases.upsert_view(uow, account, view)
        uow.commit()
    print(f"identical view: {counts.subscription_writes} subscription write(s)")
    record(
        PART,
        "identical view: subscription writes",
        counts.subscription_writes,
        "writes",
        target=("<=", 0),
    )


if __name__ == "__main__":
    main()
