"""`billing stripe setup` as an operator runs it: configured from the environment, twice."""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import redirect_stdout

import pytest

from responseiq_billing.adapters.cli import main
from responseiq_billing.adapters.fake.clock import ControllableClock
from tests.stripe_double import StripeDouble, running_double
from tests.stripe_double.server import TEST_KEY


@pytest.fixture
def empty(clock: ControllableClock) -> Iterator[StripeDouble]:
    with running_double(clock) as stripe_double:
        yield stripe_double


def run(argv: list[str]) -> tuple[int, str]:
    out = io.StringIO()
    with redirect_stdout(out):
        status = main(argv)
    return status, out.getvalue()


def test_stripe_setup_creates_the_catalog_once_and_then_reports_nothing_to_change(
    empty: StripeDouble, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STRIPE_API_KEY", TEST_KEY)
    monkeypatch.setenv("STRIPE_API_BASE", empty.url)
    monkeypatch.setenv("BILLING_GATEWAY", "stripe")
    monkeypatch.setenv("BILLING_AUTH_SECRET", "x" * 40)
    monkeypatch.setenv("BILLING_PUBLIC_URL", "https://billing.example")
    hook = "https://billing.example/webhooks/stripe"

    status, first = run(["stripe", "setup", "--webhook-url", hook])
    assert status == 0
    assert first.count("created price") == 6
    assert "bpc_" in first  # the portal configuration id an operator exports
    assert TEST_KEY not in first

    status, again = run(["stripe", "setup", "--webhook-url", hook])
    assert status == 0
    assert again.strip() == "Stripe already matches the catalog: nothing changed."
    assert len(empty.state.all("price")) == 6


def test_stripe_setup_without_a_key_names_the_missing_setting(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("STRIPE_API_KEY", raising=False)
    monkeypatch.setenv("BILLING_GATEWAY", "sandbox")
    assert main(["stripe", "setup"]) == 2
    assert "STRIPE_API_KEY" in capsys.readouterr().err
