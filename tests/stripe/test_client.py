"""The composition root's client reaches whatever `STRIPE_API_BASE` names."""

from __future__ import annotations

from responseiq_billing.adapters.fake.clock import ControllableClock
from responseiq_billing.adapters.stripe.client import build_client
from responseiq_billing.adapters.stripe.gateway import StripeGateway
from responseiq_billing.domain.plans import Catalog
from tests.stripe_double import StripeDouble
from tests.stripe_double.server import TEST_KEY


def test_a_client_built_with_an_api_base_talks_to_it_with_retries(
    double: StripeDouble, catalog: Catalog, clock: ControllableClock
) -> None:
    client = build_client(TEST_KEY, api_base=double.url + "/", max_network_retries=1)
    double.fail_next(503, {"type": "api_error", "message": "busy"})
    customer = StripeGateway(client, catalog, clock).ensure_customer(
        "acct_1", idempotency_key="c:1"
    )
    assert customer.startswith("cus_")
    assert [r.route for r in double.requests] == ["POST /v1/customers", "POST /v1/customers"]
