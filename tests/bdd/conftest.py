"""The driver chosen by `--bdd-driver` / `--bdd-store`, and the steps every feature shares."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pytest_bdd import given, parsers, then, when

from responseiq_billing.adapters.fake.clock import ControllableClock
from responseiq_billing.application.ports import UnitOfWorkFactory
from responseiq_billing.domain.plans import Catalog
from responseiq_billing.domain.rules import ChangeTiming, classify_change
from tests.bdd.drivers.base import (
    BillingDriver,
    InvoiceFacts,
    QuoteFacts,
    Rejected,
    SubscriptionFacts,
)
from tests.bdd.pdf_text import pdf_text
from tests.bdd.vocabulary import money, one_interval_before, words

# Scenarios start before any date they name; each moves the clock forward only.
SCENARIO_START = datetime(2026, 1, 1, tzinfo=UTC)


# -- what the pricing page promises, written out independently of the catalog ------------------


@dataclass(frozen=True)
class Published:
    seats: int | None  # None: unlimited
    monthly_responses: int
    flags: frozenset[str]
    monthly_price: int  # cents
    yearly_price: int


PRICING = {
    "starter": Published(2, 1_000, frozenset(), 1900, 19000),
    "growth": Published(10, 10_000, frozenset({"ai_replies"}), 4900, 49000),
    "business": Published(
        None, 100_000, frozenset({"ai_replies", "sso", "priority_support"}), 9900, 99000
    ),
}


# -- the driver ---------------------------------------------------------------------------------


@pytest.fixture
def bdd_clock() -> ControllableClock:
    return ControllableClock(SCENARIO_START)


@pytest.fixture
def uow_factory(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[UnitOfWorkFactory]:
    choice = request.config.getoption("--bdd-store")
    if choice == "memory":
        from responseiq_billing.adapters.fake.repositories import InMemoryStore

        yield InMemoryStore().unit_of_work
    elif choice == "sqlite":
        from responseiq_billing.adapters.sql.database import (
            create_engine_from_url,
            sql_unit_of_work_factory,
        )
        from responseiq_billing.adapters.sql.migrate import upgrade

        url = f"sqlite:///{tmp_path / 'billing.db'}"
        upgrade(url)
        engine = create_engine_from_url(url)
        yield sql_unit_of_work_factory(engine)
        engine.dispose()
    else:
        raise pytest.UsageError(f"--bdd-store={choice!r}: use memory or sqlite")


DRIVERS = ("use_cases", "http", "stripe", "paddle")
# The gateway each driver reaches: the sandbox (in process, or over the API) stands for Stripe.
GATEWAY = {"use_cases": "Stripe", "http": "Stripe", "stripe": "Stripe", "paddle": "Paddle"}
# Scenarios a driver does not run, by tag, and why (each feature says so in its description).
NOT_RUN = {
    ("paddle", "portal_plan_change"): (
        "Paddle's customer portal has no plan change; on Paddle the customer changes plan in "
        "ResponseIQ"
    ),
}
_NOT_RUN_KEY = pytest.StashKey[list[tuple[str, str]]]()


@pytest.fixture(autouse=True)
def driver_name() -> str:
    """Autouse, so every scenario carries it and `pytest_generate_tests` can parametrize it
    (steps ask for `driver` lazily, so scenarios do not name it in their signatures)."""
    return DRIVERS[0]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Every scenario runs once per chosen driver: the same words, four ways in."""
    if "driver_name" in metafunc.fixturenames:
        chosen = [d.strip() for d in metafunc.config.getoption("--bdd-driver").split(",")]
        unknown = [d for d in chosen if d not in DRIVERS]
        if unknown or not chosen:
            raise pytest.UsageError(f"--bdd-driver: choose from {', '.join(DRIVERS)}")
        metafunc.parametrize("driver_name", chosen)


@pytest.hookimpl(trylast=True)  # after `-k` / `-m`: report only what would have run
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Deselect the scenarios a driver does not run (`NOT_RUN`); the summary says which, and why."""
    kept: list[pytest.Item] = []
    dropped: list[pytest.Item] = []
    reasons = config.stash.setdefault(_NOT_RUN_KEY, [])
    for item in items:
        callspec = getattr(item, "callspec", None)
        name = callspec.params.get("driver_name") if callspec is not None else None
        why = next(
            (
                reason
                for (driver, tag), reason in NOT_RUN.items()
                if driver == name and item.get_closest_marker(tag) is not None
            ),
            None,
        )
        if why is None:
            kept.append(item)
        else:
            dropped.append(item)
            reasons.append((item.nodeid, why))
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    reasons = config.stash.get(_NOT_RUN_KEY, [])
    if reasons:
        terminalreporter.section("Gherkin scenarios a driver does not run (deselected)")
        for nodeid, why in reasons:
            terminalreporter.line(f"{nodeid}: {why}")


@pytest.fixture
def gateway(driver_name: str) -> str:
    """The gateway behind the driver, for a step that says what differs on one gateway."""
    return GATEWAY[driver_name]


@pytest.fixture
def driver(
    driver_name: str,
    catalog: Catalog,
    bdd_clock: ControllableClock,
    uow_factory: UnitOfWorkFactory,
) -> Iterator[BillingDriver]:
    choice = driver_name
    if choice == "paddle":
        from tests.bdd.drivers.paddle import PaddleDriver

        paddle_driver = PaddleDriver(catalog=catalog, clock=bdd_clock, uow=uow_factory)
        try:
            yield paddle_driver
        finally:
            paddle_driver.close()
        # A request the double refused is one real Paddle would refuse too.
        assert paddle_driver.double.violations == []
        return
    if choice == "stripe":
        from tests.bdd.drivers.stripe import StripeDriver

        stripe_driver = StripeDriver(catalog=catalog, clock=bdd_clock, uow=uow_factory)
        try:
            yield stripe_driver
        finally:
            stripe_driver.close()
        # A request the double refused is one real Stripe would refuse too.
        assert stripe_driver.double.violations == []
        return
    yield _driver(choice, catalog, bdd_clock, uow_factory)


def _driver(
    choice: str, catalog: Catalog, bdd_clock: ControllableClock, uow_factory: UnitOfWorkFactory
) -> BillingDriver:
    if choice == "use_cases":
        from tests.bdd.drivers.use_cases import UseCaseDriver

        return UseCaseDriver(catalog=catalog, clock=bdd_clock, uow=uow_factory)
    if choice == "http":
        from tests.bdd.drivers.http import HttpDriver

        return HttpDriver(catalog=catalog, clock=bdd_clock, uow=uow_factory)
    raise pytest.UsageError(f"--bdd-driver={choice!r}: use {', '.join(DRIVERS)}")


# -- outcomes of attempts -----------------------------------------------------------------------


@dataclass
class Outcome:
    """What an attempt ("When Ada tries to ...") came to: a value, or a refusal."""

    value: Any = None
    refusal: Rejected | None = None


def attempt(action: Callable[[], Any]) -> Outcome:
    try:
        return Outcome(value=action())
    except Rejected as refusal:
        return Outcome(refusal=refusal)


def paid_on(driver: BillingDriver, account: str, day: datetime) -> list[InvoiceFacts]:
    """The payments taken from an account on one calendar day (UTC)."""
    return [
        inv
        for inv in driver.invoices(account)
        if inv.status == "paid" and inv.amount_paid > 0 and inv.created.date() == day.date()
    ]


def latest_subscription(driver: BillingDriver, account: str) -> SubscriptionFacts:
    return driver.subscription(account)


# -- Given: accounts and time ---------------------------------------------------------------------


@given(words("today is {moment:Date}"))
@when(words("{moment:Date} arrives"))
@when(words("time passes to {moment:Date}"))
def time_is(driver: BillingDriver, moment: datetime) -> None:
    driver.advance_to(moment)


def _subscribe_renewing(
    driver: BillingDriver, name: str, plan: str, interval: str, renewal: datetime, card: str
) -> None:
    start = one_interval_before(renewal, interval)
    if driver.now() < start:
        driver.advance_to(start)
    assert driver.now() == start, (
        f"{name}'s subscription must start on {start:%B %d, %Y}, but the scenario is already "
        f"at {driver.now():%B %d, %Y %H:%M}: put the earlier subscription first"
    )
    facts = driver.subscribe(name, plan, interval, card)
    assert facts.period_end == renewal, facts


@given(
    words("{name:Name}'s account is on {plan:Plan} {interval:Interval}, renewing on {renewal:Date}")
)
def account_on_plan(
    driver: BillingDriver, name: str, plan: str, interval: str, renewal: datetime
) -> None:
    _subscribe_renewing(driver, name, plan, interval, renewal, "visa")


@given(
    words(
        "{name:Name}'s account is on {plan:Plan} {interval:Interval}, renewing on "
        "{renewal:Date}, paid by {card:Card}"
    )
)
def account_on_plan_with_card(
    driver: BillingDriver, name: str, plan: str, interval: str, renewal: datetime, card: str
) -> None:
    _subscribe_renewing(driver, name, plan, interval, renewal, card)


@given(words("{name:Name} has never subscribed"))
def never_subscribed(driver: BillingDriver, name: str) -> None:
    with pytest.raises(Rejected) as refused:
        driver.subscription(name)
    assert refused.value.code == "subscription.not_found"


@given(words("{name:Name}'s bank will decline the next payment"))
def bank_declines(driver: BillingDriver, name: str) -> None:
    driver.decline_next_payment()


@given(words("{name:Name} has scheduled a downgrade to {plan:Plan} {interval:Interval}"))
def has_scheduled_downgrade(driver: BillingDriver, name: str, plan: str, interval: str) -> None:
    facts = driver.change_plan(name, plan, interval)
    assert facts.scheduled_change is not None, facts


@given(words("{name:Name} has cancelled {pronoun:Pronoun} subscription"))
def has_cancelled(driver: BillingDriver, name: str, pronoun: str) -> None:
    assert driver.cancel(name).cancel_at_period_end


# -- When: plan changes, cancellation -------------------------------------------------------------


def check_direction(
    driver: BillingDriver,
    catalog: Catalog,
    name: str,
    plan: str,
    interval: str,
    expected: ChangeTiming,
) -> None:
    """The scenario's verb must be true: "upgrades to" names an upgrade, "downgrades to" a
    downgrade, judged by the pricing rule from where the subscription stands now."""
    current = driver.subscription(name)
    timing = classify_change(
        catalog.price(current.plan, current.interval), catalog.price(plan, interval)
    )
    verb = "an upgrade" if expected is ChangeTiming.IMMEDIATE else "a downgrade"
    assert timing is expected, (
        f"from {current.plan} {current.interval}, {plan} {interval} is not {verb}: "
        "the scenario's words are wrong"
    )


@given(words("{name:Name} has upgraded to {plan:Plan} {interval:Interval}"))
@when(words("{name:Name} upgrades to {plan:Plan} {interval:Interval}"))
def upgrades(driver: BillingDriver, catalog: Catalog, name: str, plan: str, interval: str) -> None:
    check_direction(driver, catalog, name, plan, interval, ChangeTiming.IMMEDIATE)
    driver.change_plan(name, plan, interval)


@when(words("{name:Name} downgrades to {plan:Plan} {interval:Interval}"))
def downgrades(
    driver: BillingDriver, catalog: Catalog, name: str, plan: str, interval: str
) -> None:
    check_direction(driver, catalog, name, plan, interval, ChangeTiming.END_OF_PERIOD)
    driver.change_plan(name, plan, interval)


@when(
    words("{name:Name} tries to change to {plan:Plan} {interval:Interval}"),
    target_fixture="outcome",
)
@when(
    words("{name:Name} tries to upgrade to {plan:Plan} {interval:Interval}"),
    target_fixture="outcome",
)
def tries_to_change_plan(driver: BillingDriver, name: str, plan: str, interval: str) -> Outcome:
    return attempt(lambda: driver.change_plan(name, plan, interval))


@when(words("{name:Name} cancels the scheduled downgrade"))
def cancels_scheduled_change(driver: BillingDriver, name: str) -> None:
    driver.cancel_scheduled_change(name)


@when(words("{name:Name} tries to cancel a scheduled downgrade"), target_fixture="outcome")
def tries_to_cancel_scheduled_change(driver: BillingDriver, name: str) -> Outcome:
    return attempt(lambda: driver.cancel_scheduled_change(name))


@when(words("{name:Name} cancels {pronoun:Pronoun} subscription"))
def cancels(driver: BillingDriver, name: str, pronoun: str) -> None:
    driver.cancel(name)


@when(words("{name:Name} tries to cancel {pronoun:Pronoun} subscription"), target_fixture="outcome")
def tries_to_cancel(driver: BillingDriver, name: str, pronoun: str) -> Outcome:
    return attempt(lambda: driver.cancel(name))


@when(words("{name:Name} resumes {pronoun:Pronoun} subscription"))
def resumes(driver: BillingDriver, name: str, pronoun: str) -> None:
    driver.resume(name)


@when(words("{name:Name} tries to resume {pronoun:Pronoun} subscription"), target_fixture="outcome")
def tries_to_resume(driver: BillingDriver, name: str, pronoun: str) -> Outcome:
    return attempt(lambda: driver.resume(name))


# -- Then: refusals ------------------------------------------------------------------------------


# The reasons a scenario may give for a refusal, and the stable code each one means.
REFUSAL_REASONS = {
    "there is no cancellation to undo": "subscription.not_resumable",
    "the subscription is already set to cancel": "subscription.already_canceling",
    "there is no subscription": "subscription.not_found",
    "the card was declined": "payment.declined",
    "the account already has a subscription": "subscription.already_active",
    "there is no such plan": "plan.unknown",
    "there is no scheduled change to undo": "plan_change.none_pending",
    "the account has never subscribed": "customer.not_found",
    "the quoted price has expired": "quote.expired",
    "the subscription is not active": "subscription.not_active",
    "there is no such invoice": "invoice.not_found",
    "that is the current plan already": "plan_change.same_plan",
}


@then(parsers.parse("it is refused because {reason}"))
def refused_because(outcome: Outcome, reason: str) -> None:
    assert reason in REFUSAL_REASONS, f"no refusal reason reads {reason!r}: add it with its code"
    code = REFUSAL_REASONS[reason]
    assert outcome.refusal is not None, f"expected a refusal ({code}), got {outcome.value!r}"
    assert outcome.refusal.code == code, outcome.refusal


@then("it succeeds")
def succeeds(outcome: Outcome) -> None:
    assert outcome.refusal is None, outcome.refusal


# -- Then: plan, features and dates --------------------------------------------------------------


@then(words("{name:Name} is on {plan:Plan} {interval:Interval}"))
def is_on(driver: BillingDriver, name: str, plan: str, interval: str) -> None:
    facts = driver.subscription(name)
    assert (facts.plan, facts.interval) == (plan, interval), facts


@then(words("{name:Name} has the {plan:Plan} features"))
def has_features_of(driver: BillingDriver, name: str, plan: str) -> None:
    now = driver.entitlements(name)
    published = PRICING[plan]
    assert now.plan == plan, now
    assert (now.seats, now.monthly_responses, now.flags) == (
        published.seats,
        published.monthly_responses,
        published.flags,
    ), now


@then(words("{name:Name} has no access"))
def has_no_access(driver: BillingDriver, name: str) -> None:
    now = driver.entitlements(name)
    assert now.plan is None, now
    assert (now.seats, now.monthly_responses, now.flags) == (0, 0, frozenset()), now


@then(words("{name:Name} keeps access until {moment:Date}"))
def keeps_access_until(driver: BillingDriver, name: str, moment: datetime) -> None:
    now = driver.entitlements(name)
    assert now.plan is not None and now.access_until == moment, now


@then(words("{name:Name}'s subscription renews on {moment:Date}"))
def renews_on(driver: BillingDriver, name: str, moment: datetime) -> None:
    facts = driver.subscription(name)
    assert facts.status == "active", facts
    assert not facts.cancel_at_period_end, facts
    assert facts.period_end == moment, facts


@then(
    words(
        "{name:Name}'s subscription is scheduled to change to {plan:Plan} {interval:Interval} "
        "on {moment:Date}"
    )
)
def scheduled_change_on(
    driver: BillingDriver, name: str, plan: str, interval: str, moment: datetime
) -> None:
    change = driver.subscription(name).scheduled_change
    assert change is not None, f"{name} has no scheduled change"
    assert (change.plan, change.interval, change.effective_at) == (plan, interval, moment), change


@then(words("{name:Name} has no scheduled change"))
def no_scheduled_change(driver: BillingDriver, name: str) -> None:
    facts = driver.subscription(name)
    assert facts.scheduled_change is None, facts


@then(words("{name:Name}'s subscription ends on {moment:Date}"))
def ends_on(driver: BillingDriver, name: str, moment: datetime) -> None:
    facts = driver.subscription(name)
    assert facts.cancel_at_period_end and facts.period_end == moment, facts


@then(words("{name:Name}'s subscription has ended"))
def has_ended(driver: BillingDriver, name: str) -> None:
    facts = driver.subscription(name)
    assert facts.status == "canceled", facts


# -- Then: money ------------------------------------------------------------------------------------


@then(words("{name:Name} is charged {amount:Amount} now"))
def charged_now(driver: BillingDriver, name: str, amount: int) -> None:
    charged_on(driver, name, amount, driver.now())


@then(words("{name:Name} is charged {amount:Amount} on {moment:Date}"))
def charged_on(driver: BillingDriver, name: str, amount: int, moment: datetime) -> None:
    paid = paid_on(driver, name, moment)
    assert len(paid) == 1, f"expected one payment of {money(amount)} on {moment:%B %d}: {paid}"
    assert paid[0].amount_paid == amount, (
        f"{name} paid {money(paid[0].amount_paid)}, not {money(amount)}"
    )
    assert paid[0].currency == "USD", paid[0]


@then(
    words(
        "{name:Name} is charged {amount:Amount} now, or on {other:Gateway}, {rule}, "
        "{other_amount:Amount}"
    )
)
def charged_now_unless_on(
    driver: BillingDriver, gateway: str, name: str, amount: int, other: str, rule: str,
    other_amount: int,
) -> None:  # fmt: skip
    """An amount that differs on one gateway, with that gateway's rule in the scenario's words."""
    assert rule.strip(), "say the gateway's rule that makes the amount differ"
    charged_now(driver, name, other_amount if gateway == other else amount)


@then(words("{name:Name} is charged nothing now"))
def charged_nothing_now(driver: BillingDriver, name: str) -> None:
    charged_nothing_on(driver, name, driver.now())


@then(words("{name:Name} is charged nothing on {moment:Date}"))
def charged_nothing_on(driver: BillingDriver, name: str, moment: datetime) -> None:
    paid = paid_on(driver, name, moment)
    assert paid == [], f"{name} was charged on {moment:%B %d}: {paid}"


# -- cards --------------------------------------------------------------------------------------


@then(words("{name:Name}'s card on file is {card:Card} ending {last4:Last4}"))
def card_on_file(driver: BillingDriver, name: str, card: str, last4: str) -> None:
    facts = driver.subscription(name)
    assert facts.card is not None, f"{name} has no card on file"
    assert (facts.card.brand, facts.card.last4) == (card, last4), facts.card


@then(words("{name:Name}'s {moment:Date} payment was taken from {card:Card} ending {last4:Last4}"))
def payment_taken_from(
    driver: BillingDriver, name: str, moment: datetime, card: str, last4: str
) -> None:
    """The receipt (the invoice PDF) of that day's payment names the card that paid it."""
    payments = paid_on(driver, name, moment)
    assert len(payments) == 1, f"expected one payment on {moment:%B %d}: {payments}"
    text = pdf_text(driver.invoice_pdf(name, payments[0].id))
    assert re.search(rf"\b{card}\s+ending\s+(?:in\s+)?{last4}\b", text, re.I), text


@when(words("{name:Name} replaces {pronoun:Pronoun} card with a {card:Card} in the billing portal"))
@when(
    words("{name:Name} replaces {pronoun:Pronoun} card with an {card:Card} in the billing portal")
)
def replaces_card_in_portal(driver: BillingDriver, name: str, pronoun: str, card: str) -> None:
    driver.portal_update_payment_method(name, card)


# -- previews -----------------------------------------------------------------------------------


@given(
    words("{name:Name} has previewed a change to {plan:Plan} {interval:Interval}"),
    target_fixture="quote",
)
@when(
    words("{name:Name} previews a change to {plan:Plan} {interval:Interval}"),
    target_fixture="quote",
)
def previews(driver: BillingDriver, name: str, plan: str, interval: str) -> QuoteFacts:
    return driver.preview(name, plan, interval)


@then(words("the preview says it takes effect now for {amount:Amount}"))
def preview_now(quote: QuoteFacts, amount: int) -> None:
    assert quote.takes_effect == "now", quote
    assert (quote.amount_due_now, quote.currency) == (amount, "USD"), money(quote.amount_due_now)


@then(words("the preview says it takes effect on {moment:Date} for {amount:Amount}"))
def preview_later(quote: QuoteFacts, moment: datetime, amount: int) -> None:
    assert (quote.takes_effect, quote.effective_at) == ("end_of_period", moment), quote
    assert (quote.amount_due_now, quote.currency) == (amount, "USD"), money(quote.amount_due_now)


@when(words("{name:Name} confirms the previewed change"))
def confirms_preview(driver: BillingDriver, name: str, quote: QuoteFacts) -> None:
    driver.change_plan(name, quote.plan, quote.interval, quote_id=quote.id)


@when(words("{name:Name} tries to confirm the previewed change"), target_fixture="outcome")
def tries_to_confirm_preview(driver: BillingDriver, name: str, quote: QuoteFacts) -> Outcome:
    return attempt(lambda: driver.change_plan(name, quote.plan, quote.interval, quote_id=quote.id))
