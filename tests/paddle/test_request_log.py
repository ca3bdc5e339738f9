"""Requests per action of the Paddle adapter, pinned (docs/adr/0009 lists them)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from responseiq_billing.adapters.fake.clock import ControllableClock
from responseiq_billing.adapters.paddle.gateway import PaddleGateway
from responseiq_billing.application.ports import PortalFlow, UiMode
from responseiq_billing.domain.plans import Catalog
from tests.paddle_double import PaddleDouble

START = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


@pytest.fixture
def setup(catalog: Catalog) -> Iterator[tuple[PaddleDouble, PaddleGateway, ControllableClock]]:
    clock = ControllableClock(START)
    double = PaddleDouble(clock).start()
    double.seed_catalog(catalog)
    yield double, PaddleGateway(double.client(), catalog, clock), clock
    double.stop()
    assert double.violations == []


def test_requests_per_action(
    setup: tuple[PaddleDouble, PaddleGateway, ControllableClock], catalog: Catalog
) -> None:
    double, gateway, clock = setup
    counts: dict[str, list[str]] = {}

    def measure(name: str, action):  # type: ignore[no-untyped-def]
        with double.recording() as seen:
            result = action()
        counts[name] = [r.route for r in seen]
        return result

    customer = measure("ensure_customer", lambda: gateway.ensure_customer("a", idempotency_key="k"))
    measure("ensure_customer again", lambda: gateway.ensure_customer("a", idempotency_key="k"))
    growth = catalog.price("growth", "month")

    def checkout():  # type: ignore[no-untyped-def]
        return gateway.start_checkout(
            customer_ref=customer, account_id="a", price=growth, success_url="https://x/ok",
            cancel_url="https://x/no", ui_mode=UiMode.HOSTED, idempotency_key="c1",
        )  # fmt: skip

    session = measure("start_checkout (first, with the price list)", checkout)
    measure("start_checkout", checkout)
    double.pay(session.id)
    outcome = measure("get_checkout (complete)", lambda: gateway.get_checkout(session.id))
    ref = outcome.subscription.subscription_ref
    measure("get_subscription", lambda: gateway.get_subscription(ref))
    clock.set(START + timedelta(days=5))
    business = catalog.price("business", "month")
    measure(
        "preview_plan_change",
        lambda: gateway.preview_plan_change(
            subscription_ref=ref, target=business, proration_at=clock.now()
        ),
    )
    measure(
        "upgrade",
        lambda: gateway.upgrade(
            subscription_ref=ref, target=business, proration_at=clock.now(), idempotency_key="u"
        ),
    )
    measure(
        "upgrade (retried)",
        lambda: gateway.upgrade(
            subscription_ref=ref, target=business, proration_at=clock.now(), idempotency_key="u"
        ),
    )
    measure(
        "apply_plan_for_renewal",
        lambda: gateway.apply_plan_for_renewal(
            subscription_ref=ref, target=growth, idempotency_key="r"
        ),
    )
    measure(
        "cancel_at_period_end",
        lambda: gateway.cancel_at_period_end(subscription_ref=ref, idempotency_key="c"),
    )
    measure("resume", lambda: gateway.resume(subscription_ref=ref, idempotency_key="r"))
    measure(
        "open_portal",
        lambda: gateway.open_portal(
            customer_ref=customer,
            return_url="https://x",
            flow=PortalFlow.SUBSCRIPTION_CANCEL,
            subscription_ref=ref,
            idempotency_key="p",
        ),
    )
    setup_session = measure(
        "start_payment_method_setup",
        lambda: gateway.start_payment_method_setup(
            customer_ref=customer,
            success_url="https://x",
            cancel_url="https://x",
            idempotency_key="s",
        ),
    )
    double.pay(setup_session.id, "mastercard")
    measure(
        "complete_payment_method_setup",
        lambda: gateway.complete_payment_method_setup(
            setup_session.id, customer_ref=customer, idempotency_key="s"
        ),
    )
    page = measure(
        "list_invoices (2 invoices)",
        lambda: gateway.list_invoices(customer_ref=customer, limit=10, starting_after=None),
    )
    first = page.items[-1].id
    measure("get_invoice", lambda: gateway.get_invoice(first))
    measure(
        "refund_invoice", lambda: gateway.refund_invoice(invoice_id=first, idempotency_key="rf")
    )
    measure("cancel_now", lambda: gateway.cancel_now(subscription_ref=ref, idempotency_key="n"))

    assert {name: len(routes) for name, routes in counts.items()} == {
        "ensure_customer": 2,
        "ensure_customer again": 1,
        "start_checkout (first, with the price list)": 3,
        "start_checkout": 1,
        "get_checkout (complete)": 3,
        "get_subscription": 2,
        "preview_plan_change": 1,
        "upgrade": 3,
        "upgrade (retried)": 2,
        "apply_plan_for_renewal": 3,
        "cancel_at_period_end": 3,
        "resume": 3,
        "open_portal": 1,
        "start_payment_method_setup": 2,
        "complete_payment_method_setup": 1,
        "list_invoices (2 invoices)": 3,
        "get_invoice": 2,
        "refund_invoice": 2,
        "cancel_now": 3,
    }, counts
