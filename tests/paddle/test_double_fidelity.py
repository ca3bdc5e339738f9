"""What the Paddle double does as Paddle does, found wanting when the Gherkin suite first ran on
Paddle: declines, interval changes, the renewal lock, proration to the minute, the invoice PDF,
and the customer portal's actions with their notifications."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import httpx
import pytest

from responseiq_billing.adapters.fake.clock import ControllableClock
from responseiq_billing.application.ports import GatewayEventKind, UiMode
from responseiq_billing.domain.errors import GatewayRejected, PaymentDeclined
from responseiq_billing.domain.plans import Catalog, Interval
from tests.paddle.test_webhooks import START, Paddle, acted_on
from tests.paddle_double.state import ApiError

RENEWAL = START.replace(month=4)  # a Growth monthly subscription started at START renews here


@pytest.fixture
def paddle(clock: ControllableClock, catalog: Catalog) -> Iterator[Paddle]:
    clock.set(START)
    world = Paddle(clock, catalog)
    yield world
    world.double.stop()
    assert world.double.violations == []


def open_checkout(paddle: Paddle, account: str) -> str:
    customer = paddle.gateway.ensure_customer(account, idempotency_key=f"customer:{account}")
    session = paddle.gateway.start_checkout(
        customer_ref=customer, account_id=account, price=paddle.catalog.price("growth", "month"),
        success_url="https://billing.test/ok", cancel_url="https://billing.test/no",
        ui_mode=UiMode.HOSTED, idempotency_key=f"checkout:{account}",
    )  # fmt: skip
    return session.id


# -- declines ------------------------------------------------------------------------------------


def test_a_declined_checkout_fails_the_attempt_only_and_can_be_paid_again(paddle: Paddle) -> None:
    """`past_due` is a renewal's dunning state: a checkout transaction stays `ready` (before, the
    double sent `transaction.past_due` for a transaction it then set back to `ready`, and the
    core, asking Paddle for that invoice, was told there is none: the event failed forever)."""
    checkout = open_checkout(paddle, "acct_declined")
    paddle.new_events()
    paddle.double.decline_next_payment()

    assert paddle.double.pay(checkout, "visa")["status"] == "ready"

    events = paddle.new_events()
    assert [e["event_type"] for e in events] == ["transaction.payment_failed"]
    assert events[0]["data"]["status"] == "ready"
    assert acted_on(events, paddle.translated(events)) == []  # not an invoice: nothing to do
    assert paddle.double.pay(checkout, "visa")["status"] == "completed"


def test_a_declined_upgrade_leaves_no_transaction_and_no_notification(paddle: Paddle) -> None:
    """`on_payment_failure=prevent_change`: the change is refused and nothing is left behind
    (before, the notifications of a transaction the double had deleted were still sent)."""
    _, ref = paddle.checkout("acct_declined_upgrade")
    paddle.clock.advance(timedelta(days=15))
    paddle.new_events()
    before = set(paddle.double.state.transactions)
    paddle.double.decline_next_payment()

    with pytest.raises(PaymentDeclined):
        paddle.upgrade(ref, "business")

    assert paddle.new_events() == []
    assert set(paddle.double.state.transactions) == before
    assert paddle.gateway.get_subscription(ref).plan_id == "growth"


# -- billing cycles, the renewal lock, proration --------------------------------------------------


def test_moving_to_a_yearly_price_starts_a_yearly_period_now(paddle: Paddle) -> None:
    """A price on another billing cycle is billed at its new interval from the day of the change
    (before, the double kept the monthly period, and the yearly price renewed a month later)."""
    _, ref = paddle.checkout("acct_yearly")
    paddle.clock.advance(timedelta(days=15))
    changed_at = paddle.clock.now()

    view = paddle.gateway.upgrade(
        subscription_ref=ref, target=paddle.catalog.price("growth", "year"),
        proration_at=changed_at, idempotency_key="upgrade-yearly",
    )  # fmt: skip

    assert (view.plan_id, view.interval) == ("growth", Interval.YEAR)
    assert (view.current_period_start, view.current_period_end) == (
        changed_at,
        changed_at.replace(year=changed_at.year + 1),
    )
    [charge] = [i for i in paddle.gateway.list_invoices(
        customer_ref=view.customer_ref, limit=10, starting_after=None
    ).items if i.created == changed_at]  # fmt: skip
    # 16 of 31 days unused: credit $49.00 x 16/31 = $25.29; the whole year $490.00
    assert charge.amount_paid.amount == 49000 - 2529


@pytest.mark.parametrize(
    ("before_renewal", "refused"),
    [(timedelta(minutes=45), False), (timedelta(minutes=30), False), (timedelta(minutes=29), True)],
)
def test_no_change_is_taken_in_the_30_minutes_before_a_renewal(
    paddle: Paddle, before_renewal: timedelta, refused: bool
) -> None:
    """Paddle's `subscription_locked_renewal` (409): the worker that switches a kept downgrade's
    price must act in the first half of its hour."""
    _, ref = paddle.checkout("acct_lock")
    paddle.clock.set(RENEWAL - before_renewal)

    def switch() -> object:
        return paddle.gateway.apply_plan_for_renewal(
            subscription_ref=ref, target=paddle.catalog.price("starter", "month"),
            idempotency_key="renewal-plan",
        )  # fmt: skip

    if refused:
        with pytest.raises(GatewayRejected, match="subscription_locked_renewal"):
            switch()
        with pytest.raises(ApiError):
            paddle.double.portal_cancel(ref)
    else:
        switch()
    assert paddle.double.violations == []


def test_proration_is_to_the_minute(paddle: Paddle) -> None:
    """The minute under way counts as remaining: all of it charges what its start does. (To the
    second, as Stripe prorates, 56 seconds into this minute would already be a cent less.)"""
    _, ref = paddle.checkout("acct_minute")
    target = paddle.catalog.price("business", "month")
    minute = START + timedelta(days=19, minutes=7)  # March 20 at 09:07

    def preview_at(seconds: int) -> int:
        paddle.clock.set(minute + timedelta(seconds=seconds))
        return paddle.gateway.preview_plan_change(
            subscription_ref=ref, target=target, proration_at=paddle.clock.now()
        ).amount

    assert [preview_at(s) for s in (0, 30, 56, 59, 60)] == [1935, 1935, 1935, 1935, 1934]


# -- invoices ------------------------------------------------------------------------------------


def test_the_invoice_pdf_names_the_card_that_paid(paddle: Paddle) -> None:
    """Paddle's invoice shows the payment method; a renewal after a card change names the new
    card (the Gherkin step "… payment was taken from …" reads it there)."""
    _, ref = paddle.checkout("acct_receipt", card="visa")
    paddle.clock.advance(timedelta(days=15))
    paddle.double.portal_update_payment_method(ref, "amex")
    paddle.double.advance_to(RENEWAL)
    customer = paddle.gateway.get_subscription(ref).customer_ref

    pdfs = [
        httpx.get(str(invoice.pdf_url), timeout=10).content
        for invoice in paddle.gateway.list_invoices(
            customer_ref=customer, limit=10, starting_after=None
        ).items
    ]

    assert [b"Payment method: Amex ending in 8431" in pdf for pdf in pdfs] == [True, False]
    assert b"Payment method: Visa ending in 4242" in pdfs[1]


# -- the customer portal ---------------------------------------------------------------------------


def test_the_portal_cancels_at_the_period_end_and_undoes_it(paddle: Paddle) -> None:
    _, ref = paddle.checkout("acct_portal")
    paddle.clock.advance(timedelta(days=15))
    paddle.new_events()

    paddle.double.portal_cancel(ref)
    cancelled = paddle.new_events()
    paddle.double.portal_remove_scheduled_cancel(ref)
    resumed = paddle.new_events()

    assert [e["event_type"] for e in cancelled + resumed] == ["subscription.updated"] * 2
    assert cancelled[0]["data"]["scheduled_change"]["action"] == "cancel"
    assert resumed[0]["data"]["scheduled_change"] is None
    [event] = paddle.translated(resumed)
    assert event.kind is GatewayEventKind.SUBSCRIPTION_CHANGED
    assert event.subscription is not None and not event.subscription.cancel_at_period_end
    with pytest.raises(ValueError, match="no scheduled cancellation"):
        paddle.double.portal_remove_scheduled_cancel(ref)


def test_the_portal_changes_the_card_as_the_card_page_does(paddle: Paddle) -> None:
    _, ref = paddle.checkout("acct_portal_card", card="visa")
    paddle.new_events()

    paddle.double.portal_update_payment_method(ref, "mastercard")

    events = paddle.new_events()
    changed = [
        t for t in paddle.translated(events) if t.kind is GatewayEventKind.PAYMENT_METHOD_CHANGED
    ]
    assert [(t.subscription_ref, t.payment_method) for t in changed] == [
        (ref, paddle.gateway.get_subscription(ref).payment_method)
    ]
    assert paddle.gateway.get_subscription(ref).payment_method is not None
    assert paddle.gateway.get_subscription(ref).payment_method.last4 == "4444"  # type: ignore[union-attr]


def test_a_portal_session_has_no_way_back_of_its_own(paddle: Paddle) -> None:
    _, ref = paddle.checkout("acct_portal_session")
    customer = paddle.gateway.get_subscription(ref).customer_ref
    session = paddle.gateway.open_portal(
        customer_ref=customer, return_url="https://billing.test/settings", flow=None,
        subscription_ref=ref, idempotency_key="portal",
    )  # fmt: skip

    opened = paddle.double.portal_session(session.id)

    assert opened["customer_id"] == customer
    assert "return_url" not in opened
