"""The card-data guard: a card number in a request is refused before any handler, never kept."""

from __future__ import annotations

import logging
from collections.abc import Callable

import pytest
from litestar.testing import TestClient

from adapters.container import Container
from adapters.fake.gateway import FakeGateway
from adapters.http.guard import holds_card_number, luhn_valid
from tests.http.conftest import bearer

H = bearer("acct_guard")
CARD = "4242424242424242"
SPELLINGS = [
    CARD,
    "4242 4242 4242 4242",
    "4242-4242-4242-4242",
    "378282246310005",
    "6011 1111 1111 1117",
]


@pytest.mark.parametrize(
    "text",
    [*SPELLINGS, f"card {CARD} exp 12/30", "x1 4242 4242 4242 4242", "4000056655665556"],
)
def test_luhn_valid_card_numbers_are_found_however_they_are_written(text: str) -> None:
    assert holds_card_number(text)


@pytest.mark.parametrize(
    "text",
    [
        "4242424242424241",  # fails Luhn
        "424242424242",  # 12 digits
        "42424242424242424242",  # 20 digits in one run
        "2026-03-01T09:00:00Z",
        "qt_9f8e7d6c5b4a39281706f5e4d3c2b1a0",
        "in_e414022770524f8fa6bedd86",
        "12345",
    ],
)
def test_ordinary_values_are_not_mistaken_for_card_numbers(text: str) -> None:
    assert not holds_card_number(text)


def test_luhn_check_digit() -> None:
    assert luhn_valid("79927398713")
    assert not luhn_valid("79927398710")


def _captured(caplog: pytest.LogCaptureFixture) -> str:
    # httpx is the test's own client logging the URL it sends; everything else is the server.
    return "\n".join(
        f"{r.name} {r.getMessage()} {r.args}" for r in caplog.records if r.name != "httpx"
    )


@pytest.mark.parametrize("spelling", SPELLINGS)
@pytest.mark.parametrize(
    "where",
    ["json string", "json number", "query", "form", "unknown field", "nested"],
)
def test_a_request_holding_a_card_number_is_refused_and_nothing_is_logged_or_stored(
    client: TestClient,
    container: Container,
    fake: FakeGateway,
    caplog: pytest.LogCaptureFixture,
    spelling: str,
    where: str,
) -> None:
    caplog.set_level(logging.DEBUG)
    digits = spelling.replace(" ", "").replace("-", "")
    requests: dict[str, Callable[[], object]] = {
        "json string": lambda: client.post(
            "/billing/checkout",
            headers=H,
            json={"plan": "growth", "interval": "month", "return_url": f"https://x.io/{spelling}"},
        ),
        "json number": lambda: client.post(
            "/billing/checkout",
            headers=H,
            content=f'{{"plan": "growth", "interval": "month", "card": {digits}}}',
        ),
        "query": lambda: client.get("/billing/invoices", headers=H, params={"note": spelling}),
        "form": lambda: client.post(
            "/sandbox/checkout/cs_1/complete", data={"outcome": "succeeded", "number": spelling}
        ),
        "unknown field": lambda: client.post(
            "/billing/portal", headers=H, json={"card_number": spelling}
        ),
        "nested": lambda: client.post(
            "/billing/subscription/change",
            headers=H,
            json={"plan": "growth", "interval": "month", "quote_id": f"qt {spelling} x"},
        ),
    }
    response = requests[where]()
    assert response.status_code == 400  # type: ignore[attr-defined]
    assert response.json() == {  # type: ignore[attr-defined]
        "code": "card_data_rejected",
        "detail": response.json()["detail"],  # type: ignore[attr-defined]
    }
    assert digits not in response.text  # type: ignore[attr-defined]
    logged = _captured(caplog)
    assert "refused a request holding card data" in logged
    assert digits not in logged.replace(" ", "").replace("-", "")
    # Nothing reached a handler: no customer, no checkout, no audit entry, no gateway call.
    store = container.storage().store
    assert store.data.audit == []
    assert store.data.customers == {}
    assert fake.calls == []


def test_card_data_in_a_path_is_refused_too(client: TestClient) -> None:
    response = client.get(f"/billing/invoices/{CARD}/pdf", headers=H)
    assert response.status_code == 400
    assert response.json()["code"] == "card_data_rejected"


def test_the_request_log_names_the_route_template_not_the_path_or_query(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="billing.http")
    client.get("/billing/invoices/in_secretish/pdf", headers=H, params={"q": "private"})
    lines = [r.getMessage() for r in caplog.records if r.name == "billing.http"]
    assert any("GET /billing/invoices/{invoice_id}/pdf 404" in line for line in lines)
    assert not any("in_secretish" in line or "private" in line for line in lines)


def test_a_clean_request_passes_through_with_its_body_intact(client: TestClient) -> None:
    response = client.post(
        "/billing/checkout", headers=H, json={"plan": "growth", "interval": "month"}
    )
    assert response.status_code == 201
