"""The OpenAPI document: an example for every route, and bounded property-based fuzzing of it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from litestar import Litestar
from litestar.testing import TestClient
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from adapters.config import Settings
from adapters.container import build_container, start
from adapters.http.app import create_app
from tests.http.conftest import ENV, bearer, subscribe

FUZZ_ACCOUNT = "acct_fuzz"
METHODS = {"get", "post", "put", "patch", "delete"}


@pytest.fixture
def document(client: TestClient) -> dict[str, Any]:
    response = client.get("/schema/openapi.json")
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return body


def _operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method in METHODS:
                yield path, method, operation


def test_every_route_has_examples_for_its_body_and_its_responses(document: dict[str, Any]) -> None:
    def has_examples(media: dict[str, Any]) -> bool:
        # A media type's own examples, or the JSON Schema examples of its body schema.
        return bool(media.get("examples") or media.get("schema", {}).get("examples"))

    missing = []
    for path, method, operation in _operations(document):
        body = operation.get("requestBody")
        if body is not None and not has_examples(body["content"]["application/json"]):
            missing.append(f"{method} {path} request body")
        for status, response in operation["responses"].items():
            content = response.get("content")
            if content and not has_examples(content["application/json"]):
                missing.append(f"{method} {path} {status}")
    assert missing == []


def test_billing_routes_require_the_bearer_token_and_document_errors(
    document: dict[str, Any],
) -> None:
    assert document["components"]["securitySchemes"]["BearerToken"]["scheme"] == "bearer"
    for path, _, operation in _operations(document):
        if path.startswith("/billing"):
            assert operation["security"] == [{"BearerToken": []}]
            assert {"400", "401", "422", "503"} <= set(operation["responses"])


def test_request_bodies_reject_unknown_fields_in_the_schema_too(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    checkout = next(v for k, v in schemas.items() if k.endswith("CheckoutRequest"))
    assert set(checkout["required"]) == {"plan", "interval"}


# -- property-based fuzzing ---------------------------------------------------------------------


@pytest.fixture
def fuzz_app() -> Litestar:
    container = build_container(Settings.from_env(ENV))
    start(container)
    app = create_app(container)
    # A subscribed account, so plan changes, cancels and invoices do real work while fuzzed.
    with TestClient(app) as client:
        subscribe(client, FUZZ_ACCOUNT)
    return app


OPERATIONS = [
    ("GET", "/billing/plans"),
    ("GET", "/billing/subscription"),
    ("GET", "/billing/entitlements"),
    ("POST", "/billing/checkout"),
    ("POST", "/billing/checkout/{checkout_id}/complete"),
    ("POST", "/billing/portal"),
    ("POST", "/billing/subscription/preview"),
    ("POST", "/billing/subscription/change"),
    ("DELETE", "/billing/subscription/pending-change"),
    ("POST", "/billing/subscription/cancel"),
    ("POST", "/billing/subscription/resume"),
    ("POST", "/billing/payment-method/setup"),
    ("POST", "/billing/payment-method/setup/{setup_id}/complete"),
    ("GET", "/billing/invoices"),
    ("GET", "/billing/invoices/{invoice_id}/pdf"),
    ("GET", "/health"),
    ("GET", "/ready"),
    ("POST", "/sandbox/clock/advance"),
]
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


def test_the_fuzzed_operations_are_all_the_schemas_operations(document: dict[str, Any]) -> None:
    assert {(m.upper(), p) for p, m, _ in _operations(document)} == set(OPERATIONS)


@pytest.mark.parametrize(("method", "path"), OPERATIONS)
def test_fuzzed_requests_never_get_a_server_error_and_match_the_schema(
    fuzz_app: Litestar, method: str, path: str
) -> None:
    # Schemathesis's lazy pytest fixture does not run under pytest 9, so drive its
    # hypothesis strategy directly: a few deterministic examples per operation.
    operation = schemathesis.openapi.from_asgi("/schema/openapi.json", fuzz_app)[path][method]

    @given(case=operation.as_strategy())
    @settings(
        max_examples=25,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def check(case: Any) -> None:
        case.call_and_validate(headers=bearer(FUZZ_ACCOUNT), checks=CHECKS)

    check()
