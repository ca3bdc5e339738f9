"""The Paddle SDK client as the service builds it: no request line in our logs."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import pytest
from paddle_billing.Resources.Prices.Operations import ListPrices

from responseiq_billing.adapters.fake.clock import ControllableClock
from responseiq_billing.domain.plans import default_catalog
from tests.paddle_double import PaddleDouble


def test_requests_to_paddle_leave_no_line_in_the_log(caplog: pytest.LogCaptureFixture) -> None:
    double = PaddleDouble(ControllableClock(datetime(2026, 3, 1, tzinfo=UTC))).start()
    try:
        double.seed_catalog(default_catalog())
        with caplog.at_level(logging.INFO):  # the service logs INFO and up
            prices = list(double.client().prices.list(ListPrices()))
    finally:
        double.stop()
    assert len(prices) == 6  # the request was made
    assert [r for r in caplog.records if double.url in r.getMessage()] == []
