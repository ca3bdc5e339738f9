"""One exception handler: domain errors by kind to 401/402/404/409/422/503, always {code, detail}."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urlsplit

import pytest
from litestar.testing import TestClient

from responseiq_billing.adapters.fake.gateway import FakeGateway
from responseiq_billing.adapters.http.errors import STATUS_BY_KIND
from responseiq_billing.domain import errors
from tests.http.conftest import bearer

H = bearer("acct_err")


def test_every_error_kind_has_a_status() -> None:
    assert set(STATUS_BY_KIND) == set(errors.ErrorKind)


def test_a_declined_upgrade_is_402_and_changes_nothing(
    client: TestClient, subscribed: Callable[..., str], fake: FakeGateway
) -> None:
    subscribed("acct_err", "starter", "month")
    fake.decline_next_payment()
    response = client.post(
        "/billing/subscription/change", headers=H, json={"plan": "business", "interval": "month"}
    )
    assert response.status_code == 402
    assert response.json() == {
        "code": "payment.declined",
        "detail": "The payment was declined; nothing was changed.",
    }
    assert client.get("/billing/subscription", headers=H).json()["plan"] == "starter"


def test_an_upgrade_needing_3d_secure_is_402_with_a_sandbox_page_that_finishes_it(
    client: TestClient, subscribed: Callable[..., str], fake: FakeGateway
) -> None:
    subscribed("acct_err", "starter", "month")
    fake.require_action_next_payment()
    response = client.post(
        "/billing/subscription/change", headers=H, json={"plan": "business", "interval": "month"}
    )
    assert response.status_code == 402
    body = response.json()
    assert body["code"] == "payment.action_required"
    assert set(body) == {"code", "detail", "hosted_invoice_url"}  # no null fields added
    page = urlsplit(body["hosted_invoice_url"]).path
    assert client.get("/billing/subscription", headers=H).json()["plan"] == "starter"
    assert "Confirm with the bank" in client.get(page).text

    confirmed = client.post(page, follow_redirects=False)

    assert confirmed.status_code == 303
    assert client.get("/billing/subscription", headers=H).json()["plan"] == "business"


def test_a_gateway_outage_is_503(client: TestClient, fake: FakeGateway) -> None:
    fake.fail_next_call()
    response = client.post(
        "/billing/checkout", headers=H, json={"plan": "growth", "interval": "month"}
    )
    assert response.status_code == 503
    assert response.json()["code"] == "gateway.unavailable"


def test_a_rule_conflict_is_409(client: TestClient, subscribed: Callable[..., str]) -> None:
    subscribed("acct_err")
    client.post("/billing/subscription/cancel", headers=H)
    again = client.post("/billing/subscription/cancel", headers=H)
    assert again.status_code == 409
    assert again.json()["code"] == "subscription.already_canceling"
    second = client.post(
        "/billing/checkout", headers=H, json={"plan": "growth", "interval": "month"}
    )
    assert second.status_code == 409
    assert second.json()["code"] == "subscription.already_active"


def test_portal_before_any_checkout_is_404(client: TestClient) -> None:
    response = client.post("/billing/portal", headers=H, json={})
    assert response.status_code == 404
    assert response.json()["code"] == "customer.not_found"


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ('{"plan": "growth"}', "request.invalid"),
        ('{"plan": "growth", "interval": "week"}', "request.invalid"),
        ('{"plan": "growth", "interval": "month", "extra": 1}', "request.invalid"),
        ('{"plan": 5, "interval": "month"}', "request.invalid"),
        ("not json", "request.invalid"),
        ("[]", "request.invalid"),
        ('{"plan": "platinum", "interval": "month"}', "plan.unknown"),
        (
            '{"plan": "growth", "interval": "month", "return_url": "javascript:alert(1)"}',
            "request.invalid",
        ),
    ],
)
def test_an_invalid_request_is_422_with_a_code(client: TestClient, body: str, code: str) -> None:
    response = client.post(
        "/billing/checkout", headers={**H, "Content-Type": "application/json"}, content=body
    )
    assert response.status_code == 422
    assert response.json()["code"] == code
    assert response.json()["detail"]


@pytest.mark.parametrize("query", ["limit=0", "limit=101", "limit=ten", "starting_after=in_nope"])
def test_bad_invoice_paging_is_a_client_error(client: TestClient, query: str) -> None:
    response = client.get(f"/billing/invoices?{query}", headers=H)
    assert response.status_code in (404, 422)
    assert set(response.json()) == {"code", "detail"}


def test_an_unknown_route_and_method_use_the_same_body_shape(client: TestClient) -> None:
    missing = client.get("/billing/nothing-here", headers=H)
    assert missing.status_code == 404
    assert missing.json()["code"] == "route.not_found"
    wrong = client.put("/billing/plans", headers=H)
    assert wrong.status_code == 405
    assert wrong.json()["code"] == "route.method_not_allowed"


def test_a_bad_idempotency_key_is_422(client: TestClient) -> None:
    response = client.post(
        "/billing/subscription/cancel", headers={**H, "Idempotency-Key": "bad key!"}
    )
    assert response.status_code == 422
    assert response.json()["code"] == "request.invalid"


BAD_IDS = ["in_1\x00", "in_1\nforged", "in_" + "a" * 300, "in 1", "in_1;drop", "%00"]


@pytest.mark.parametrize(
    "bad", BAD_IDS, ids=["nul", "newline", "over-long", "space", "semicolon", "pct-nul"]
)
def test_ids_of_the_wrong_shape_are_refused_at_the_edge_without_echo(
    client: TestClient, subscribed: Callable[..., str], bad: str
) -> None:
    subscribed("acct_err")
    quoted = bad.replace("\x00", "%00").replace("\n", "%0A").replace(" ", "%20")
    responses = [
        client.get(f"/billing/invoices/{quoted}/pdf", headers=H),
        client.get("/billing/invoices", headers=H, params={"starting_after": bad}),
        client.post(
            "/billing/subscription/change",
            headers=H,
            json={"plan": "business", "interval": "month", "quote_id": bad},
        ),
        client.post(f"/billing/checkout/{quoted}/complete", headers=H),
    ]
    for response in responses:
        assert response.status_code in (404, 422), response.text
        assert response.json()["code"] in ("request.invalid", "route.not_found")
        assert bad not in response.text and "forged" not in response.text
    assert client.get("/billing/subscription", headers=H).json()["plan"] == "growth"


@pytest.mark.parametrize(
    "body",
    [
        {"plan": "<script>alert(1)</script>", "interval": "month"},
        {"plan": "growth", "interval": "<b>fortnight</b>"},
        {"plan": "growth", "interval": "month", "<script>field": 1},
    ],
)
def test_an_unknown_plan_or_interval_is_refused_without_repeating_it(
    client: TestClient, subscribed: Callable[..., str], body: dict[str, str]
) -> None:
    subscribed("acct_err")
    response = client.post("/billing/subscription/change", headers=H, json=body)
    assert response.status_code == 422
    assert "<script>" not in response.text and "<b>" not in response.text
