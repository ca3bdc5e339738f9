"""`billing paddle setup` as an operator runs it: configured from the environment, twice."""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import redirect_stdout
from datetime import UTC, datetime

import pytest

from responseiq_billing.adapters.cli import main
from responseiq_billing.adapters.fake.clock import ControllableClock
from tests.paddle_double import WEBHOOK_SECRET, PaddleDouble
from tests.paddle_double.server import TEST_KEY

HOOK = "https://billing.example/webhooks/paddle"


@pytest.fixture
def double(monkeypatch: pytest.MonkeyPatch) -> Iterator[PaddleDouble]:
    double = PaddleDouble(ControllableClock(datetime(2026, 3, 1, tzinfo=UTC))).start()
    monkeypatch.setenv("BILLING_GATEWAY", "paddle")
    monkeypatch.setenv("PADDLE_API_KEY", TEST_KEY)
    monkeypatch.setenv("PADDLE_API_BASE", double.url)
    monkeypatch.setenv("BILLING_AUTH_SECRET", "x" * 40)
    monkeypatch.setenv("BILLING_PUBLIC_URL", "https://billing.example")
    yield double
    double.stop()
    assert double.violations == []


def run(argv: list[str]) -> tuple[int, str]:
    out = io.StringIO()
    with redirect_stdout(out):
        status = main(argv)
    return status, out.getvalue()


def test_paddle_setup_creates_the_catalog_and_destination_once_then_reports_nothing(
    double: PaddleDouble,
) -> None:
    status, first = run(["paddle", "setup", "--webhook-url", HOOK])

    assert status == 0
    assert first.count("created product") == 3
    assert first.count("created price") == 6
    assert "created notification destination" in first
    # The destination's secret is shown once, for PADDLE_WEBHOOK_SECRET; the API key never.
    assert WEBHOOK_SECRET in first
    assert TEST_KEY not in first
    [setting] = double.state.notification_settings.values()
    assert setting["destination"] == HOOK

    status, again = run(["paddle", "setup", "--webhook-url", HOOK])
    assert status == 0
    assert again.strip() == "Paddle already matches the catalog: nothing changed."
    assert WEBHOOK_SECRET not in again
    assert len(double.state.prices) == 6
    assert len(double.state.notification_settings) == 1


def test_paddle_setup_without_a_key_names_the_missing_setting(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("PADDLE_API_KEY", raising=False)
    monkeypatch.setenv("BILLING_GATEWAY", "sandbox")
    assert main(["paddle", "setup"]) == 2
    assert "PADDLE_API_KEY" in capsys.readouterr().err
