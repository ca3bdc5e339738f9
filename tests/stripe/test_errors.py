"""Stripe's failures arrive as domain errors, with the Stripe error kept as the cause."""

from __future__ import annotations

import socket
from typing import TypeVar

import pytest
import stripe

from responseiq_billing.adapters.fake.clock import ControllableClock
from responseiq_billing.adapters.stripe.gateway import StripeGateway
from responseiq_billing.domain.errors import (
    GatewayRejected,
    GatewayUnavailable,
    InvoiceNotFound,
    PaymentActionRequired,
    PaymentDeclined,
    SubscriptionNotFound,
)
from responseiq_billing.domain.plans import Catalog
from responseiq_billing.domain.subscription import GatewaySubscription
from tests.stripe.conftest import upgrade_to_business
from tests.stripe_double import StripeDouble
from tests.stripe_double.server import TEST_KEY

E = TypeVar("E", bound=Exception)

CARD_DECLINED = {
    "type": "card_error",
    "code": "card_declined",
    "decline_code": "insufficient_funds",
    "message": "Your card has insufficient funds.",
}


def creating_a_customer_raises(
    gateway: StripeGateway, double: StripeDouble, answer: tuple[int, dict[str, str]], error: type[E]
) -> E:
    """What creating a customer raises when Stripe answers the next request with `answer`."""
    double.fail_next(*answer)
    with pytest.raises(error) as raised:
        gateway.ensure_customer("acct_1", idempotency_key="customer:acct_1")
    return raised.value


def test_a_card_error_is_a_declined_payment_naming_the_decline_reason(
    gateway: StripeGateway, double: StripeDouble
) -> None:
    declined = creating_a_customer_raises(gateway, double, (402, CARD_DECLINED), PaymentDeclined)
    assert isinstance(declined.__cause__, stripe.CardError)
    assert "insufficient_funds" in declined.message


def test_a_card_needing_authentication_is_payment_action_required(
    gateway: StripeGateway, double: StripeDouble
) -> None:
    sca = {"type": "card_error", "code": "authentication_required", "message": "3DS"}
    required = creating_a_customer_raises(gateway, double, (402, sca), PaymentActionRequired)
    assert isinstance(required.__cause__, stripe.CardError)


@pytest.mark.parametrize(
    ("status", "error_type", "cause"),
    [
        (429, "rate_limit_error", stripe.RateLimitError),
        (500, "api_error", stripe.APIError),
        (503, "api_error", stripe.APIError),
    ],
)
def test_rate_limits_and_server_errors_are_gateway_unavailable(
    gateway: StripeGateway,
    double: StripeDouble,
    status: int,
    error_type: str,
    cause: type[Exception],
) -> None:
    answer = (status, {"type": error_type, "message": "try later"})
    unavailable = creating_a_customer_raises(gateway, double, answer, GatewayUnavailable)
    assert isinstance(unavailable.__cause__, cause)


def test_a_refused_connection_is_gateway_unavailable(
    catalog: Catalog, clock: ControllableClock
) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = stripe.StripeClient(
        TEST_KEY, base_addresses={"api": f"http://127.0.0.1:{port}"}, max_network_retries=0
    )
    with pytest.raises(GatewayUnavailable) as raised:
        StripeGateway(client, catalog, clock).get_subscription("sub_1")
    assert isinstance(raised.value.__cause__, stripe.APIConnectionError)


def test_a_bad_api_key_is_unavailable_and_the_message_never_shows_the_key(
    double: StripeDouble, catalog: Catalog, clock: ControllableClock
) -> None:
    secret = "sk_test_wrong_key_4242424242424242"
    client = stripe.StripeClient(secret, base_addresses={"api": double.url})
    with pytest.raises(GatewayUnavailable) as raised:
        StripeGateway(client, catalog, clock).get_invoice("in_1")
    assert isinstance(raised.value.__cause__, stripe.AuthenticationError)
    assert secret not in str(raised.value) and "4242" not in str(raised.value)


def test_an_invalid_request_is_rejected_and_a_missing_object_is_not_found(
    gateway: StripeGateway, double: StripeDouble
) -> None:
    invalid = {"type": "invalid_request_error", "message": "No such price", "param": "x"}
    rejected = creating_a_customer_raises(gateway, double, (400, invalid), GatewayRejected)
    assert isinstance(rejected.__cause__, stripe.InvalidRequestError)
    with pytest.raises(SubscriptionNotFound) as missing:
        gateway.get_subscription("sub_unknown")
    assert isinstance(missing.value.__cause__, stripe.InvalidRequestError)
    with pytest.raises(InvoiceNotFound):
        gateway.get_invoice("in_unknown")


def test_reusing_a_key_with_different_details_is_rejected_not_applied(
    gateway: StripeGateway, double: StripeDouble
) -> None:
    gateway.ensure_customer("acct_1", idempotency_key="same-key")
    with pytest.raises(GatewayRejected) as raised:
        gateway.ensure_customer("acct_2", idempotency_key="same-key")
    assert isinstance(raised.value.__cause__, stripe.IdempotencyError)
    assert len([r for r in double.requests if r.route == "POST /v1/customers"]) == 2


def test_the_sdk_retries_a_server_error_with_the_same_idempotency_key(
    double: StripeDouble, catalog: Catalog, clock: ControllableClock
) -> None:
    gateway = StripeGateway(double.client(max_network_retries=1), catalog, clock)
    double.fail_next(500, {"type": "api_error", "message": "boom"})
    customer = gateway.ensure_customer("acct_9", idempotency_key="customer:acct_9")
    attempts = [r for r in double.requests if r.route == "POST /v1/customers"]
    assert customer.startswith("cus_")
    assert [r.idempotency_key for r in attempts] == ["customer:acct_9", "customer:acct_9"]


def test_an_upgrade_the_bank_wants_confirmed_is_action_required_and_keeps_the_plan(
    gateway: StripeGateway,
    double: StripeDouble,
    subscription: GatewaySubscription,
    catalog: Catalog,
    clock: ControllableClock,
) -> None:
    double.require_action_next_payment()
    with pytest.raises(PaymentActionRequired):
        upgrade_to_business(
            gateway, subscription, catalog, at=clock.now(), idempotency_key="plan-change:sca"
        )
    assert gateway.get_subscription(subscription.subscription_ref).plan_id == "growth"


def test_the_double_refuses_what_stripe_would_refuse(double: StripeDouble) -> None:
    """The double's own checks can fail: unknown parameters, and POSTs without our key."""
    client = double.client()
    with pytest.raises(stripe.InvalidRequestError, match="unknown parameter: metadatum"):
        client.v1.customers.create({"metadatum": {"a": "b"}}, {"idempotency_key": "k:1"})  # type: ignore[arg-type]
    with pytest.raises(stripe.InvalidRequestError, match="without an idempotency key"):
        client.v1.customers.create({"metadata": {"a": "b"}})
    assert len(double.violations) == 2
    double.violations.clear()  # expected here; the fixture fails any other test that has some
