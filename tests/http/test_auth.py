"""Bearer tokens: every failure is a 401 with its own code; the account comes from `sub` only."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import jwt
import pytest
from litestar.testing import TestClient

from adapters.http.auth import issue_token, verify_token
from tests.http.conftest import SECRET, bearer

BILLING_ROUTES = [
    ("GET", "/billing/plans"),
    ("GET", "/billing/subscription"),
    ("GET", "/billing/entitlements"),
    ("POST", "/billing/checkout"),
    ("POST", "/billing/portal"),
    ("POST", "/billing/subscription/preview"),
    ("POST", "/billing/subscription/change"),
    ("DELETE", "/billing/subscription/pending-change"),
    ("POST", "/billing/subscription/cancel"),
    ("POST", "/billing/subscription/resume"),
    ("POST", "/billing/payment-method/setup"),
    ("GET", "/billing/invoices"),
    ("GET", "/billing/invoices/in_123/pdf"),
]


def _token(claims: dict[str, object], secret: str = SECRET, algorithm: str = "HS256") -> str:
    return jwt.encode(claims, secret, algorithm=algorithm)


def _in(seconds: int) -> datetime:
    return datetime.now(UTC) + timedelta(seconds=seconds)


CASES = {
    "missing": ({}, "auth.missing"),
    "not bearer": ({"Authorization": "Basic dXNlcjpwYXNz"}, "auth.malformed"),
    "empty bearer": ({"Authorization": "Bearer "}, "auth.malformed"),
    "not a jwt": ({"Authorization": "Bearer not.a.jwt"}, "auth.malformed"),
    "no exp": (
        {"Authorization": f"Bearer {_token({'sub': 'acct_1'})}"},
        "auth.malformed",
    ),
    "no sub": (
        {"Authorization": f"Bearer {_token({'exp': _in(600)})}"},
        "auth.malformed",
    ),
    "wrong secret": (
        {"Authorization": f"Bearer {_token({'sub': 'a', 'exp': _in(600)}, 'x' * 40)}"},
        "auth.invalid_signature",
    ),
    "alg none": (
        {"Authorization": f"Bearer {_token({'sub': 'a', 'exp': _in(600)}, '', 'none')}"},
        "auth.malformed",
    ),
    "expired": (
        {"Authorization": f"Bearer {_token({'sub': 'a', 'exp': _in(-60)})}"},
        "auth.expired",
    ),
}


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
@pytest.mark.parametrize(("method", "path"), BILLING_ROUTES)
def test_every_billing_route_refuses_a_bad_token_with_401_and_a_code(
    client: TestClient, case: str, method: str, path: str
) -> None:
    headers, code = CASES[case]
    response = client.request(method, path, headers=headers, json={})
    assert response.status_code == 401
    assert response.json()["code"] == code
    assert response.headers["www-authenticate"].startswith("Bearer")


def test_a_valid_token_names_the_account_in_sub() -> None:
    token = issue_token(SECRET, "acct_42", ttl=timedelta(minutes=5))
    assert verify_token(SECRET, token) == "acct_42"


def test_error_bodies_never_echo_the_token_or_the_secret(client: TestClient) -> None:
    token = _token({"sub": "a", "exp": _in(600)}, "y" * 40)
    response = client.get("/billing/plans", headers={"Authorization": f"Bearer {token}"})
    assert token not in response.text
    assert SECRET not in response.text


def test_probes_and_the_schema_need_no_token(client: TestClient) -> None:
    assert client.get("/health").status_code == 200
    assert client.get("/ready").status_code == 200
    assert client.get("/schema/openapi.json").status_code == 200


def test_a_token_for_one_account_reads_that_accounts_data(client: TestClient) -> None:
    response = client.get("/billing/entitlements", headers=bearer("acct_new"))
    assert response.status_code == 200
