"""The cheap paths in front of every request keep the guard's and the request log's promises."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from litestar.testing import TestClient

from responseiq_billing.adapters.http.card_scan import CARD, _plainly_clean, scan
from tests.http import card_reference as reference
from tests.http.conftest import bearer

H = bearer("acct_fast")
CARD_NUMBER = "4242424242424242"

# Header-like ASCII: digits, every separator, breaks, escapes and numbers that are cards.
HEADER_PARTS = [
    "0",
    "1",
    "42",
    "4242",
    " ",
    "-",
    ".",
    "/",
    "+",
    "\t",
    ":",
    "=",
    ";",
    "a",
    "%",
    "%34",
    "\\",
    "\\u0034",
    "127.0.0.1:8000",
    CARD_NUMBER,
    "4242 4242 4242 4242",
    "378282246310005",
    "6011-1111-1111-1117",
]


@settings(max_examples=500, deadline=None)
@given(parts=st.lists(st.sampled_from(HEADER_PARTS), max_size=30))
def test_the_plain_ascii_shortcut_never_clears_what_the_full_rule_finds(parts: list[str]) -> None:
    data = "".join(parts).encode()
    holds = reference.holds_card_number(data)
    if _plainly_clean(data):
        assert not holds
    assert (scan([data]) == CARD) == holds


def test_every_spelling_that_plain_text_can_have_goes_to_the_full_scan() -> None:
    for spelled in (
        CARD_NUMBER,
        "4242 4242 4242 4242",
        "4242-4242/4242.4242",
        "4242+4242+4242+4242",
    ):
        assert not _plainly_clean(spelled.encode()), spelled
    for escaped in ("%34%32", "\\u0034", "\uff14"):
        assert not _plainly_clean(escaped.encode()), escaped
    assert _plainly_clean(b"127.0.0.1:8000")


def test_a_card_number_in_any_one_of_several_headers_is_refused(client: TestClient[Any]) -> None:
    headers = {**H, "X-A": "one", "X-B": "4242 4242 4242 4242", "X-C": "three"}
    response = client.get("/billing/plans", headers=headers)
    assert response.status_code == 400
    assert response.json()["code"] == "card_data_rejected"


def test_digits_split_across_two_headers_are_not_joined_into_a_number(
    client: TestClient[Any],
) -> None:
    headers = {**H, "X-A": CARD_NUMBER[:8], "X-B": CARD_NUMBER[8:]}
    assert client.get("/billing/plans", headers=headers).status_code == 200


def test_a_get_with_a_body_holding_a_card_number_is_still_refused(
    client: TestClient[Any],
) -> None:
    response = client.request(
        "GET", "/billing/plans", headers=H, content=f'{{"pan": "{CARD_NUMBER}"}}'
    )
    assert response.status_code == 400
    assert response.json()["code"] == "card_data_rejected"


def test_a_get_without_a_body_is_answered(client: TestClient[Any]) -> None:
    assert client.get("/billing/plans", headers=H).status_code == 200


def test_no_request_record_is_made_when_the_request_log_is_not_enabled(
    client: TestClient[Any], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="billing.http")
    assert client.get("/billing/plans", headers=H).status_code == 200
    assert [r for r in caplog.records if r.name == "billing.http"] == []
    caplog.set_level(logging.INFO, logger="billing.http")
    assert client.get("/billing/plans", headers=H).status_code == 200
    lines = [r.getMessage() for r in caplog.records if r.name == "billing.http"]
    assert len(lines) == 1 and lines[0].startswith("GET /billing/plans 200 ")


def test_records_are_written_by_the_thread_that_makes_them_with_no_queue_in_between(
    client: TestClient[Any],
) -> None:
    handlers = logging.getLogger().handlers + logging.getLogger("litestar").handlers
    kinds = {type(h).__name__ for h in handlers}
    assert "QueueHandler" not in kinds and "QueueListenerHandler" not in kinds
    assert "StreamHandler" in kinds
