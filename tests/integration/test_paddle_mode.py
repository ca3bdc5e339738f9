"""Paddle mode as `billing serve` wires it (the container), over the API, against the double."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from tests.http.conftest import bearer
from tests.paddle_double.demo import DEMO_AUTH_SECRET, PaddleDemo, paddle_demo
from tests.paddle_double.worker_steps import WORKER_TICK_BEFORE_RENEWAL
from tests.serving import free_port

START = datetime(2026, 3, 16, 9, 0, tzinfo=UTC)


@pytest.fixture
def demo() -> Iterator[tuple[httpx.Client, PaddleDemo]]:
    port = free_port()
    with paddle_demo(port, start=START) as running:
        headers = bearer("acct_paddle_mode", secret=DEMO_AUTH_SECRET)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=headers) as api:
            yield api, running


def paddle_plans(running: PaddleDemo) -> list[str]:
    """The plan of each subscription's price at Paddle (the double), as Paddle bills it."""
    with running.double.state.lock:
        subs = list(running.double.state.subscriptions.values())
    return [s["items"][0]["price"]["custom_data"]["plan_id"] for s in subs]


def test_a_downgrade_withdrawn_after_the_worker_switched_the_price_puts_it_back(
    demo: tuple[httpx.Client, PaddleDemo],
) -> None:
    api, running = demo
    checkout = api.post("/billing/checkout", json={"plan": "growth", "interval": "month"}).json()
    running.pay(checkout["checkout_id"], "visa")
    sub = api.post(f"/billing/checkout/{checkout['checkout_id']}/complete").json()["subscription"]
    pending = api.post(
        "/billing/subscription/change", json={"plan": "starter", "interval": "month"}
    ).json()["pending_change"]
    renewal = datetime.fromisoformat(pending["effective_at"])
    # The worker's tick inside the hour before the renewal: Paddle's price is Starter now.
    running.double.advance_to(renewal - WORKER_TICK_BEFORE_RENEWAL)
    [applied] = running.container.apply_due_changes()()
    assert applied.outcome == "applied"
    assert sub["plan"] == "growth"
    assert paddle_plans(running) == ["starter"]

    withdrawn = api.delete("/billing/subscription/pending-change")

    assert withdrawn.status_code == 200, withdrawn.text
    assert withdrawn.json()["pending_change"] is None
    assert paddle_plans(running) == ["growth"]  # the current price is back at Paddle
    running.double.advance_to(renewal + timedelta(hours=1))
    running.deliver()
    invoices = api.get("/billing/invoices").json()["data"]
    assert (invoices[0]["billing_reason"], invoices[0]["amount_paid"]) == (
        "subscription_cycle",
        4900,
    )
    assert api.get("/billing/entitlements").json()["plan"] == "growth"


def test_an_invoice_pdf_is_served_after_paddles_link_expired_by_asking_for_a_fresh_one(
    demo: tuple[httpx.Client, PaddleDemo],
) -> None:
    api, running = demo
    checkout = api.post("/billing/checkout", json={"plan": "growth", "interval": "month"}).json()
    running.pay(checkout["checkout_id"], "visa")
    api.post(f"/billing/checkout/{checkout['checkout_id']}/complete")
    [invoice] = api.get("/billing/invoices").json()["data"]
    first = api.get(f"/billing/invoices/{invoice['id']}/pdf")
    assert first.status_code == 302
    running.double.advance_to(START + timedelta(hours=2))  # Paddle's link lives an hour

    assert httpx.get(first.headers["location"]).status_code == 403  # the stored link is dead
    again = api.get(f"/billing/invoices/{invoice['id']}/pdf")

    assert again.status_code == 302
    assert again.headers["location"] != first.headers["location"]
    document = httpx.get(again.headers["location"])
    assert (document.status_code, document.content[:5]) == (200, b"%PDF-")
    # Another account cannot have it signed for them.
    other = bearer("acct_someone_else", secret=DEMO_AUTH_SECRET)
    assert api.get(f"/billing/invoices/{invoice['id']}/pdf", headers=other).status_code == 404
