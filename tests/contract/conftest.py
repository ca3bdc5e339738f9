"""The gateways under contract, each with a driver doing what a customer does outside our API."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any, Protocol

import pytest
import stripe

from responseiq_billing.adapters.fake.clock import ControllableClock
from responseiq_billing.application.ports import PaymentGateway, ScheduledChanges, UiMode
from responseiq_billing.domain.errors import GatewayRejected
from responseiq_billing.domain.plans import Catalog, Interval
from responseiq_billing.domain.subscription import GatewaySubscription, PaymentMethodSummary

START = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
LIVE_KEY_VARIABLE = "STRIPE_TEST_SECRET_KEY"


class Driver(Protocol):
    """One gateway under test plus the customer's side of it (paying, time passing)."""

    gateway: PaymentGateway
    catalog: Catalog

    def now(self) -> datetime:
        """The gateway's current time (what `proration_at` is taken from)."""
        ...

    def customer(self, account_id: str) -> str: ...

    def pay_checkout(self, checkout_id: str, card: str = "visa") -> None:
        """The customer pays on the checkout page; `GatewayRejected` if it takes no payment."""
        ...

    def refunded(self, invoice_id: str) -> int:
        """How much of the invoice's payment went back to the card, in minor units."""
        ...

    def complete_setup(self, setup_id: str, card: str = "mastercard") -> None: ...

    def decline_next_payment(self) -> None: ...

    def advance_to(self, moment: datetime) -> None: ...

    def portal_update_payment_method(self, sub: GatewaySubscription, card: str) -> None:
        """The customer enters a new card in the hosted portal (its default from now on)."""
        ...

    def paid_with(self, invoice_id: str) -> PaymentMethodSummary | None:
        """The card that paid an invoice."""
        ...

    def dashboard_cancel_at(self, sub: GatewaySubscription, moment: datetime) -> None:
        """An operator sets a cancellation date outside the service (the Stripe Dashboard)."""
        ...

    def customer_balance(self, customer_ref: str) -> int:
        """The customer's balance at the gateway, in minor units: negative is credit that the
        next invoice uses (Stripe's customer invoice balance), never money back to the card."""
        ...

    def subscribe(self, account_id: str, plan: str, interval: str = "month") -> GatewaySubscription:
        """A paying customer on `plan`: through a paid checkout where the gateway allows it."""
        ...

    def retire_price(self, plan: str, interval: str, amount: int) -> bool:
        """The operator reprices a plan while the gateway runs (see `_CheckoutSubscribe`)."""
        ...


def repriced(catalog: Catalog, plan_id: str, interval: str, amount: int) -> Catalog:
    """The catalog with one price changed (what an operator edits before running setup)."""
    import attrs

    plans = []
    for plan in catalog.plans:
        if plan.id == plan_id:
            prices = dict(plan.prices)
            old = prices[Interval(interval)]
            prices[Interval(interval)] = attrs.evolve(old, amount=amount)
            plan = attrs.evolve(plan, prices=prices)
        plans.append(plan)
    return Catalog(tuple(plans))


def run_setup_repriced(
    client: stripe.StripeClient, catalog: Catalog, plan: str, interval: str, amount: int
) -> None:
    from responseiq_billing.adapters.stripe.setup import run_setup

    changes = run_setup(client, repriced(catalog, plan, interval, amount))
    assert any(", replacing " in c for c in changes), changes


def new_account() -> str:
    return f"acct_{uuid.uuid4().hex[:12]}"


class _CheckoutSubscribe:
    """`subscribe` through the port's own checkout, then the driver's payment."""

    gateway: PaymentGateway
    catalog: Catalog

    def customer(self, account_id: str) -> str:
        return self.gateway.ensure_customer(account_id, idempotency_key=f"customer:{account_id}")

    def pay_checkout(self, checkout_id: str, card: str = "visa") -> None:
        raise NotImplementedError

    def require_action_next_payment(self) -> None:
        """The next off-session charge needs the customer's bank (3-D Secure)."""
        pytest.skip("this gateway's double has no card that needs authentication")

    def confirm_payment(self, url: str) -> None:
        """The customer opens the page a `PaymentActionRequired` named and confirms."""
        pytest.skip("this gateway's double has no page to confirm a payment on")

    def portal_update_payment_method(self, sub: GatewaySubscription, card: str) -> None:
        """The customer enters a new card in the gateway's hosted portal."""
        pytest.skip("this gateway's double has no portal card update")

    def paid_with(self, invoice_id: str) -> PaymentMethodSummary | None:
        """The card that paid an invoice, as the gateway recorded the payment."""
        pytest.skip("this gateway's double does not say which card paid")

    def dashboard_cancel_at(self, sub: GatewaySubscription, moment: datetime) -> None:
        """An operator sets a cancellation date outside the service (the Stripe Dashboard)."""
        pytest.skip("this gateway's double has no cancellation by date")

    def customer_balance(self, customer_ref: str) -> int:
        pytest.skip("this gateway's double keeps no customer balance")

    def retire_price(self, plan: str, interval: str, amount: int) -> bool:
        """The operator reprices a plan while the service runs (the driver's gateway, and its
        price cache, are kept): `billing stripe setup` gives the lookup key to a new price and
        deactivates the old one, `billing paddle setup` archives it and creates another. The
        old price's subscribers keep paying it. True when the gateway now sells `amount`; False
        for a gateway without price objects (it keeps selling the catalog it was built with)."""
        pytest.skip("this gateway has no price objects to retire")

    def subscribe(self, account_id: str, plan: str, interval: str = "month") -> GatewaySubscription:
        customer = self.customer(account_id)
        session = self.gateway.start_checkout(
            customer_ref=customer,
            account_id=account_id,
            price=self.catalog.price(plan, interval),
            success_url="https://app.example/billing/done?session={CHECKOUT_SESSION_ID}",
            cancel_url="https://app.example/billing",
            ui_mode=UiMode.HOSTED,
            idempotency_key=f"checkout:{account_id}:{uuid.uuid4().hex}",
        )
        self.pay_checkout(session.id)
        outcome = self.gateway.get_checkout(session.id)
        assert outcome.subscription is not None
        return outcome.subscription


class FakeDriver(_CheckoutSubscribe):
    def __init__(
        self,
        catalog: Catalog,
        clock: ControllableClock,
        scheduled_changes: ScheduledChanges = ScheduledChanges.GATEWAY,
    ) -> None:
        from responseiq_billing.adapters.fake.gateway import FakeGateway

        self.catalog, self.clock = catalog, clock
        self.fake = FakeGateway(catalog, clock, scheduled_changes=scheduled_changes)
        self.gateway = self.fake

    def now(self) -> datetime:
        return self.clock.now()

    def pay_checkout(self, checkout_id: str, card: str = "visa") -> None:
        self.fake.complete_checkout(checkout_id, card=card)

    def refunded(self, invoice_id: str) -> int:
        refund = self.fake.invoice_refund(invoice_id)
        return refund.amount.amount if refund is not None else 0

    def complete_setup(self, setup_id: str, card: str = "mastercard") -> None:
        self.fake.complete_setup(setup_id, card=card)

    def decline_next_payment(self) -> None:
        self.fake.decline_next_payment()

    def advance_to(self, moment: datetime) -> None:
        self.fake.advance_to(moment)

    def require_action_next_payment(self) -> None:
        self.fake.require_action_next_payment()

    def confirm_payment(self, url: str) -> None:
        self.fake.confirm_payment_action(url.rsplit("/", 1)[-1])

    def portal_update_payment_method(self, sub: GatewaySubscription, card: str) -> None:
        self.fake.portal_update_payment_method(sub.customer_ref, card)

    def paid_with(self, invoice_id: str) -> PaymentMethodSummary | None:
        return self.fake.invoice_payment_method(invoice_id)

    def dashboard_cancel_at(self, sub: GatewaySubscription, moment: datetime) -> None:
        self.fake.dashboard_cancel_at(sub.customer_ref, moment)

    def customer_balance(self, customer_ref: str) -> int:
        return self.fake.customer_balance(customer_ref)

    def retire_price(self, plan: str, interval: str, amount: int) -> bool:
        # The sandbox has no price objects: a subscription names its plan and the catalog
        # it was built with; so nothing to retire, and every read must still work.
        del plan, interval, amount
        return False


class DoubleDriver(_CheckoutSubscribe):
    def __init__(self, catalog: Catalog, clock: ControllableClock) -> None:
        from responseiq_billing.adapters.stripe.gateway import StripeGateway
        from tests.stripe_double import StripeDouble

        self.catalog, self.clock = catalog, clock
        self.double = StripeDouble(clock).start()
        self.double.seed_catalog(catalog)
        self.gateway = StripeGateway(self.double.client(), catalog, clock)

    def now(self) -> datetime:
        return self.clock.now()

    def pay_checkout(self, checkout_id: str, card: str = "visa") -> None:
        try:
            self.double.complete_checkout(checkout_id, card=card)
        except ValueError as error:  # the page of a session that is not open takes no payment
            raise GatewayRejected(str(error)) from error

    def refunded(self, invoice_id: str) -> int:
        return self.double.refunded(invoice_id)

    def complete_setup(self, setup_id: str, card: str = "mastercard") -> None:
        self.double.complete_checkout(setup_id, card=card)

    def decline_next_payment(self) -> None:
        self.double.decline_next_payment()

    def advance_to(self, moment: datetime) -> None:
        self.double.advance_to(moment)

    def require_action_next_payment(self) -> None:
        self.double.require_action_next_payment()

    def confirm_payment(self, url: str) -> None:
        # Stripe's hosted invoice page: https://invoice.stripe.com/i/{account}/test_{invoice}
        self.double.pay_open_invoice(url.rsplit("/", 1)[-1].removeprefix("test_"))

    def portal_update_payment_method(self, sub: GatewaySubscription, card: str) -> None:
        self.double.portal_update_payment_method(sub.customer_ref, card)

    def paid_with(self, invoice_id: str) -> PaymentMethodSummary | None:
        method = self.double.paid_with(invoice_id)
        if method is None:
            return None
        return PaymentMethodSummary(method["card"]["brand"], method["card"]["last4"])

    def dashboard_cancel_at(self, sub: GatewaySubscription, moment: datetime) -> None:
        self.double.dashboard_cancel_at(sub.subscription_ref, moment)

    def customer_balance(self, customer_ref: str) -> int:
        return int(self.double.customer(customer_ref)["balance"])

    def retire_price(self, plan: str, interval: str, amount: int) -> bool:
        # The same process keeps its gateway (and its price cache), as a running server would.
        run_setup_repriced(self.double.client(), self.catalog, plan, interval, amount)
        return True


class PaddleDriver(_CheckoutSubscribe):
    """The Paddle adapter over real HTTP to the local Paddle double."""

    def __init__(self, catalog: Catalog, clock: ControllableClock) -> None:
        from responseiq_billing.adapters.paddle.gateway import PaddleGateway
        from tests.paddle_double import PaddleDouble

        self.catalog, self.clock = catalog, clock
        self.double = PaddleDouble(clock).start()
        self.double.seed_catalog(catalog)
        self.client = self.double.client()
        self.gateway = PaddleGateway(self.double.client(), catalog, clock)

    def now(self) -> datetime:
        return self.clock.now()

    def pay_checkout(self, checkout_id: str, card: str = "visa") -> None:
        try:
            self.double.pay(checkout_id, card=card)
        except ValueError as error:  # a canceled transaction's checkout takes no payment
            raise GatewayRejected(str(error)) from error

    def refunded(self, invoice_id: str) -> int:
        return self.double.refunded(invoice_id)

    def complete_setup(self, setup_id: str, card: str = "mastercard") -> None:
        self.double.pay(setup_id, card=card)

    def decline_next_payment(self) -> None:
        self.double.decline_next_payment()

    def advance_to(self, moment: datetime) -> None:
        self.double.advance_to(moment)

    def retire_price(self, plan: str, interval: str, amount: int) -> bool:
        # `billing paddle setup` archives the price whose amount changed and creates another;
        # the gateway (and its price map) is kept, as a running server's would be.
        from responseiq_billing.adapters.paddle.setup import run_setup

        report = run_setup(
            self.client, repriced(self.catalog, plan, interval, amount), notification_url=None
        )
        assert f"price {plan}/{interval} archived" in report.updated, report
        return True

    def dashboard_cancel_at(self, sub: GatewaySubscription, moment: datetime) -> None:
        # Paddle cancels a subscription `immediately` or at the `next_billing_period`
        # (`effective_from`); it has no cancellation on a date of the operator's choosing.
        pytest.skip(
            "Paddle has no cancellation on a chosen date (effective_from: "
            "immediately or next_billing_period only)"
        )


PADDLE_LIVE_KEY_VARIABLE = "PADDLE_TEST_API_KEY"


class PaddleLiveDriver(PaddleDriver):
    """Paddle's sandbox API. Its checkout and card pages need a browser and its clock cannot be
    moved, so only the promises that need neither run here; the rest skip, saying so."""

    def __init__(self, catalog: Catalog, key: str) -> None:
        from responseiq_billing.adapters.config import PaddleEnvironment
        from responseiq_billing.adapters.paddle.client import build_client
        from responseiq_billing.adapters.paddle.gateway import PaddleGateway
        from responseiq_billing.adapters.paddle.setup import run_setup

        self.catalog = catalog
        self.clock = ControllableClock(datetime.now(UTC))
        client = build_client(key, environment=PaddleEnvironment.SANDBOX)
        run_setup(client, catalog, notification_url=None)  # restores a price retired before
        self.client = client
        self.gateway = PaddleGateway(client, catalog, self.clock)

    def pay_checkout(self, checkout_id: str, card: str = "visa") -> None:
        pytest.skip("Paddle's checkout needs a browser; covered by the double in CI")

    def complete_setup(self, setup_id: str, card: str = "mastercard") -> None:
        pytest.skip("Paddle's checkout needs a browser; covered by the double in CI")

    def refunded(self, invoice_id: str) -> int:
        pytest.skip("needs a paid transaction, which needs Paddle's checkout in a browser")

    def decline_next_payment(self) -> None:
        pytest.skip("Paddle's sandbox declines only on its checkout page")

    def advance_to(self, moment: datetime) -> None:
        pytest.skip("Paddle's sandbox clock cannot be moved")


_LIVE_SETUP_DONE: set[str] = set()


class _TestClockTime:
    """The gateway's clock on live test mode: the test clock's frozen time."""

    def __init__(self) -> None:
        self.frozen = datetime.now(UTC).replace(microsecond=0)

    def now(self) -> datetime:
        return self.frozen


class LiveDriver:
    """Real Stripe test mode. Period ends come from a test clock; cards are Stripe's test PMs.

    Checkout pages need a browser, so a subscription is started with the API directly (with
    the same metadata Checkout would set) and checkout completion is skipped here.
    """

    def __init__(self, catalog: Catalog, key: str) -> None:
        from responseiq_billing.adapters.stripe.gateway import StripeGateway
        from responseiq_billing.adapters.stripe.setup import run_setup

        self.catalog: Catalog = catalog
        self.client = stripe.StripeClient(key, max_network_retries=2)
        if key not in _LIVE_SETUP_DONE:  # products, prices, portal: once per test session
            run_setup(self.client, catalog)
            _LIVE_SETUP_DONE.add(key)
        self.time = _TestClockTime()
        self.test_clock = self.client.v1.test_helpers.test_clocks.create(
            {"frozen_time": int(self.time.frozen.timestamp()), "name": "contract suite"}
        )
        self.stripe_gateway = StripeGateway(self.client, catalog, self.time)
        self.gateway: PaymentGateway = self.stripe_gateway
        self._customers: dict[str, str] = {}
        self._decline = False

    def close(self) -> None:
        self.client.v1.test_helpers.test_clocks.delete(self.test_clock.id)

    def now(self) -> datetime:
        return self.time.now()

    def customer(self, account_id: str) -> str:
        if account_id not in self._customers:
            customer = self.client.v1.customers.create(
                {"metadata": {"account_id": account_id}, "test_clock": self.test_clock.id},
                {"idempotency_key": f"contract-customer:{account_id}"},
            )
            self._customers[account_id] = customer.id
        return self._customers[account_id]

    def pay_checkout(self, checkout_id: str, card: str = "visa") -> None:
        pytest.skip("Stripe Checkout pages need a browser; covered by the double in CI")

    def refunded(self, invoice_id: str) -> int:
        payments = self.client.v1.invoice_payments.list({"invoice": invoice_id, "status": "paid"})
        total = 0
        for payment in payments.data:
            intent = payment.payment.payment_intent
            if intent is None:
                continue
            intent_id = intent if isinstance(intent, str) else intent.id
            for refund in self.client.v1.refunds.list({"payment_intent": intent_id}).data:
                total += refund.amount if refund.status == "succeeded" else 0
        return total

    def complete_setup(self, setup_id: str, card: str = "mastercard") -> None:
        pytest.skip("Stripe Checkout pages need a browser; covered by the double in CI")

    def _attach(self, customer: str, token: str) -> str:
        pm = self.client.v1.payment_methods.attach(
            token, {"customer": customer}, {"idempotency_key": f"attach:{uuid.uuid4().hex}"}
        )
        return pm.id

    def subscribe(self, account_id: str, plan: str, interval: str = "month") -> GatewaySubscription:
        customer = self.customer(account_id)
        pm = self._attach(customer, "pm_card_visa")
        price = self.stripe_gateway.prices.price_id(plan, Interval(interval))
        assert price is not None
        sub = self.client.v1.subscriptions.create(
            {
                "customer": customer,
                "items": [{"price": price, "quantity": 1}],
                "default_payment_method": pm,
                "metadata": {"account_id": account_id},
                # What our Checkout sets (ADR 0005): proration is classic arithmetic, the
                # mode the contract's amounts (and the double) follow.
                "billing_mode": {"type": "classic"},
            },
            {"idempotency_key": f"contract-subscribe:{account_id}"},
        )
        return self.stripe_gateway.get_subscription(sub.id)

    def require_action_next_payment(self) -> None:
        # Stripe's card that needs 3-D Secure on every off-session charge.
        for customer in self._customers.values():
            pm = self._attach(customer, "pm_card_authenticationRequired")
            for sub in self.client.v1.subscriptions.list({"customer": customer}).data:
                self.client.v1.subscriptions.update(
                    sub.id,
                    {"default_payment_method": pm},
                    {"idempotency_key": f"sca:{sub.id}:{pm}"},
                )

    def confirm_payment(self, url: str) -> None:
        pytest.skip("Stripe's hosted invoice page needs a browser; covered by the double in CI")

    def portal_update_payment_method(self, sub: GatewaySubscription, card: str) -> None:
        # What the portal's card update does, by API (the portal itself needs a browser).
        pm = self._attach(sub.customer_ref, f"pm_card_{card}")
        self.client.v1.customers.update(
            sub.customer_ref,
            {"invoice_settings": {"default_payment_method": pm}},
            {"idempotency_key": f"portal-card:{sub.customer_ref}:{pm}"},
        )

    def dashboard_cancel_at(self, sub: GatewaySubscription, moment: datetime) -> None:
        # The Dashboard's "custom date", with Stripe's default create_prorations.
        self.client.v1.subscriptions.update(
            sub.subscription_ref,
            {"cancel_at": int(moment.timestamp())},
            {
                "idempotency_key": f"dashboard-cancel-at:{sub.subscription_ref}:{int(moment.timestamp())}"
            },
        )

    def customer_balance(self, customer_ref: str) -> int:
        return int(self.client.v1.customers.retrieve(customer_ref).balance or 0)

    def paid_with(self, invoice_id: str) -> PaymentMethodSummary | None:
        payments = self.client.v1.invoice_payments.list({"invoice": invoice_id, "status": "paid"})
        for payment in payments.data:
            intent = payment.payment.payment_intent
            if intent is None:
                continue
            intent_id = intent if isinstance(intent, str) else intent.id
            found = self.client.v1.payment_intents.retrieve(
                intent_id, {"expand": ["payment_method"]}
            )
            method: Any = found.payment_method
            if method is not None and method.card is not None:
                return PaymentMethodSummary(method.card.brand, method.card.last4)
        return None

    def retire_price(self, plan: str, interval: str, amount: int) -> bool:
        run_setup_repriced(self.client, self.catalog, plan, interval, amount)
        # The next session's setup restores the catalog's own amounts (another retirement).
        _LIVE_SETUP_DONE.clear()
        return True

    def decline_next_payment(self) -> None:
        # Cards that attach but fail every charge; made the default of every live subscription.
        for customer in self._customers.values():
            pm = self._attach(customer, "pm_card_chargeCustomerFail")
            for sub in self.client.v1.subscriptions.list({"customer": customer}).data:
                self.client.v1.subscriptions.update(
                    sub.id,
                    {"default_payment_method": pm},
                    {"idempotency_key": f"decline:{sub.id}:{pm}"},
                )

    def advance_to(self, moment: datetime) -> None:
        self.client.v1.test_helpers.test_clocks.advance(
            self.test_clock.id,
            {"frozen_time": int(moment.timestamp())},
            {"idempotency_key": f"advance:{self.test_clock.id}:{int(moment.timestamp())}"},
        )
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            clock: Any = self.client.v1.test_helpers.test_clocks.retrieve(self.test_clock.id)
            if clock.status == "ready":
                self.time.frozen = moment
                return
            time.sleep(2)
        raise TimeoutError("the Stripe test clock did not finish advancing")


@pytest.fixture(
    params=[
        "fake",
        "fake_core",  # the sandbox leaving downgrades to the core, as Paddle must
        "stripe",
        pytest.param("stripe_live", marks=pytest.mark.stripe_live),
        "paddle",
        pytest.param("paddle_live", marks=pytest.mark.paddle_live),
    ]
)
def driver(request: pytest.FixtureRequest, catalog: Catalog) -> Iterator[Driver]:
    """Each gateway in turn: the sandbox fake, Stripe via the local double, real Stripe test mode."""
    clock = ControllableClock(START)
    if request.param == "fake":
        yield FakeDriver(catalog, clock)
    elif request.param == "fake_core":
        yield FakeDriver(catalog, clock, ScheduledChanges.CORE)
    elif request.param == "paddle":
        paddle_driver = PaddleDriver(catalog, clock)
        try:
            yield paddle_driver
        finally:
            paddle_driver.double.stop()
        # Anything the double refused does not fit the SDK's operations: Paddle would refuse it.
        assert paddle_driver.double.violations == []
    elif request.param == "paddle_live":
        paddle_key = os.environ.get(PADDLE_LIVE_KEY_VARIABLE)
        if not paddle_key:
            pytest.skip(
                f"{PADDLE_LIVE_KEY_VARIABLE} is not set: the live Paddle sandbox suite is opt-in"
            )
        if "_sdbx_" not in paddle_key:
            pytest.skip(f"{PADDLE_LIVE_KEY_VARIABLE} must be a sandbox key")
        yield PaddleLiveDriver(catalog, paddle_key)
    elif request.param == "stripe":
        double_driver = DoubleDriver(catalog, clock)
        try:
            yield double_driver
        finally:
            double_driver.double.stop()
        # Anything the double refused is a request real Stripe would refuse too.
        assert double_driver.double.violations == []
    else:
        key = os.environ.get(LIVE_KEY_VARIABLE)
        if not key:
            pytest.skip(
                f"{LIVE_KEY_VARIABLE} is not set: the live Stripe test-mode suite is opt-in"
            )
        if not key.startswith(("sk_test_", "rk_test_")):
            pytest.skip(f"{LIVE_KEY_VARIABLE} must be a test-mode key")
        live = LiveDriver(catalog, key)
        try:
            yield live
        finally:
            live.close()
