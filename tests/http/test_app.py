"""The app factory: extra route handlers join through the container and get use cases injected."""

from __future__ import annotations

from litestar import post
from litestar.testing import TestClient

from responseiq_billing.adapters.app import create_app
from responseiq_billing.adapters.config import Settings
from responseiq_billing.adapters.container import build_container
from responseiq_billing.adapters.http.deps import Dep
from responseiq_billing.application import use_cases
from tests.http.conftest import ENV, bearer, subscribe


@post("/webhooks/test", status_code=200)
async def extra_hook(apply_gateway_event: Dep[use_cases.ApplyGatewayEvent]) -> dict[str, str]:
    return {"got": type(apply_gateway_event).__name__}


def test_extra_route_handlers_from_the_container_are_served_with_use_cases_injected() -> None:
    container = build_container(Settings.from_env(ENV))
    container.extra_route_handlers.add_args(extra_hook)
    with TestClient(create_app(container)) as client:
        response = client.post("/webhooks/test")
    assert response.json() == {"got": "ApplyGatewayEvent"}


def test_two_apps_from_two_containers_share_no_state() -> None:
    first = create_app(build_container(Settings.from_env(ENV)))
    second = create_app(build_container(Settings.from_env(ENV)))
    token = {"Authorization": "Bearer x"}
    with TestClient(first) as one, TestClient(second) as two:
        subscribe(one, "acct_1")
        assert one.get("/billing/subscription", headers=bearer("acct_1")).status_code == 200
        assert two.get("/billing/subscription", headers=bearer("acct_1")).status_code == 404
        assert two.get("/billing/plans", headers=token).status_code == 401
