"""Bearer tokens: every failure is a 401 with its own code; the account comes from `sub` only."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import jwt
import pytest
from litestar.testing import TestClient

from responseiq_billing.adapters.app import create_app
from responseiq_billing.adapters.config import Settings
from responseiq_billing.adapters.container import build_container
from responseiq_billing.adapters.http.auth import AuthError, issue_token, verify_token
from tests.http.conftest import ENV, SECRET, bearer

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
    # A `sub` the storage could not hold is refused before anything (a gateway customer) is made.
    "sub of 65 characters": (
        {"Authorization": f"Bearer {_token({'sub': 'a' * 65, 'exp': _in(600)})}"},
        "auth.malformed",
    ),
    "sub with a NUL byte": (
        {"Authorization": "Bearer " + _token({"sub": "acct\x00x", "exp": _in(600)})},
        "auth.malformed",
    ),
    "sub with a newline": (
        {"Authorization": "Bearer " + _token({"sub": "acct\nforged", "exp": _in(600)})},
        "auth.malformed",
    ),
    "sub not a string": (
        {"Authorization": f"Bearer {_token({'sub': 42, 'exp': _in(600)})}"},
        "auth.malformed",
    ),
    "exp two years ahead": (
        {"Authorization": f"Bearer {_token({'sub': 'a', 'exp': _in(2 * 366 * 86400)})}"},
        "auth.malformed",
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


@pytest.mark.parametrize(
    "account", ["a", "acct_42", "user@example.com", "auth0|5f1c", "org:7:team-3", "x" * 64]
)
def test_account_ids_of_the_documented_charset_are_accepted(account: str) -> None:
    assert verify_token(SECRET, issue_token(SECRET, account, ttl=timedelta(days=366))) == account


def test_audience_and_issuer_are_checked_when_configured() -> None:
    good = issue_token(SECRET, "acct_1", ttl=timedelta(hours=1), audience="billing", issuer="app")
    assert verify_token(SECRET, good, audience="billing", issuer="app") == "acct_1"
    for audience, issuer in [("other", "app"), ("billing", "intruder"), (None, None)]:
        token = issue_token(
            SECRET, "acct_1", ttl=timedelta(hours=1), audience=audience, issuer=issuer
        )
        with pytest.raises(AuthError) as caught:
            verify_token(SECRET, token, audience="billing", issuer="app")
        assert caught.value.code == "auth.malformed"


def test_without_audience_or_issuer_configured_tokens_need_neither() -> None:
    token = issue_token(SECRET, "acct_1", ttl=timedelta(hours=1), audience="x")
    assert verify_token(SECRET, token) == "acct_1"


def test_the_service_checks_audience_and_issuer_from_its_settings() -> None:
    env = {**ENV, "BILLING_AUTH_AUDIENCE": "billing", "BILLING_AUTH_ISSUER": "app"}
    app = create_app(build_container(Settings.from_env(env)))
    with TestClient(app) as client:
        plain = client.get("/billing/plans", headers=bearer("acct_1"))
        assert (plain.status_code, plain.json()["code"]) == (401, "auth.malformed")
        token = issue_token(
            SECRET, "acct_1", ttl=timedelta(hours=1), audience="billing", issuer="app"
        )
        signed = client.get("/billing/plans", headers={"Authorization": f"Bearer {token}"})
        assert signed.status_code == 200


def test_two_authorization_headers_are_refused_even_when_one_is_valid(client: TestClient) -> None:
    headers = [("Authorization", bearer("acct_1")["Authorization"]), ("Authorization", "Bearer x")]
    response = client.get("/billing/entitlements", headers=headers)
    assert (response.status_code, response.json()["code"]) == (401, "auth.malformed")
