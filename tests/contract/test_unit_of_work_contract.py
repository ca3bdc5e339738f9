"""One suite of the unit-of-work and repository promises, run on memory, SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import attrs
import pytest
import sqlalchemy as sa

from responseiq_billing.adapters.fake.repositories import InMemoryStore
from responseiq_billing.adapters.sql.database import (
    create_engine_from_url,
    sql_unit_of_work_factory,
)
from responseiq_billing.adapters.sql.migrate import upgrade
from responseiq_billing.adapters.sql.tables import metadata
from responseiq_billing.application.ports import (
    AuditEntry,
    CheckoutRecord,
    CheckoutStatus,
    InboxBacklog,
    InboxEvent,
    InboxStatus,
    LeaseLost,
    UnitOfWork,
)
from responseiq_billing.domain.errors import StaleVersion
from responseiq_billing.domain.invoices import BillingReason, Invoice, InvoiceStatus
from responseiq_billing.domain.money import Money
from responseiq_billing.domain.plans import Interval
from responseiq_billing.domain.quotes import Quote
from responseiq_billing.domain.rules import ChangeTiming
from responseiq_billing.domain.subscription import (
    PaymentMethodSummary,
    PendingChange,
    Status,
    Subscription,
)
from tests.sql_fixtures import postgres_database, sqlite_url

Factory = Callable[[], UnitOfWork]

# An offset other than UTC on the way in: storage must keep the instant.
CEST = timezone(timedelta(hours=2))
T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
T1 = datetime(2026, 4, 1, 9, 0, tzinfo=UTC)


# -- the three implementations --------------------------------------------------------------


@pytest.fixture(scope="session")
def migrated_postgres() -> Iterator[str]:
    """One database for the whole session, migrated once; each test empties it first."""
    with postgres_database("billing_contract") as url:
        upgrade(url)
        yield url


@pytest.fixture(params=["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def uow(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Factory]:
    if request.param == "memory":
        yield InMemoryStore().unit_of_work
        return
    if request.param == "sqlite":
        url = sqlite_url(tmp_path)
        upgrade(url)
    else:
        url = request.getfixturevalue("migrated_postgres")
    engine = create_engine_from_url(url)
    if request.param == "postgres":
        with engine.begin() as conn:
            names = ", ".join(t.name for t in metadata.sorted_tables)
            conn.execute(sa.text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    try:
        yield sql_unit_of_work_factory(engine)
    finally:
        engine.dispose()


# -- builders ---------------------------------------------------------------------------------


def subscription(
    account: str = "acct_ada",
    ref: str = "sub_1",
    *,
    customer: str = "cus_ada",
    status: Status = Status.ACTIVE,
    start: datetime = T0,
    **more: Any,
) -> Subscription:
    return Subscription(
        account_id=account,
        customer_ref=customer,
        subscription_ref=ref,
        plan_id="growth",
        interval=Interval.MONTH,
        status=status,
        current_period_start=start,
        current_period_end=start + timedelta(days=31),
        **more,
    )


def fields(sub: Subscription | None) -> dict[str, Any]:
    assert sub is not None
    return {f.name: getattr(sub, f.name) for f in attrs.fields(Subscription) if f.name != "events"}


def invoice(ref: str, created: datetime, **more: Any) -> Invoice:
    values: dict[str, Any] = {
        "id": ref,
        "customer_ref": "cus_ada",
        "subscription_ref": "sub_1",
        "number": f"RIQ-{ref}",
        "status": InvoiceStatus.OPEN,
        "amount_due": Money(4900, "USD"),
        "amount_paid": Money(0, "USD"),
        "created": created,
        "period_start": T0,
        "period_end": T1,
        "billing_reason": BillingReason.SUBSCRIPTION_CYCLE,
        "pdf_url": f"https://files.example/{ref}.pdf",
        "hosted_url": None,
    }
    values.update(more)
    return Invoice(**values)


def quote(quote_id: str = "q_1") -> Quote:
    return Quote(
        id=quote_id,
        account_id="acct_ada",
        subscription_ref="sub_1",
        from_plan="starter",
        from_interval=Interval.MONTH,
        to_plan="growth",
        to_interval=Interval.YEAR,
        timing=ChangeTiming.IMMEDIATE,
        amount_due_now=Money(12345, "EUR"),
        effective_at=datetime(2026, 3, 10, 12, 0, 1, 250000, tzinfo=CEST),
        proration_at=datetime(2026, 3, 10, 12, 0, 1, tzinfo=CEST),
        created_at=T0,
        expires_at=T0 + timedelta(minutes=30),
    )


def add(uow: Factory, *subs: Subscription) -> None:
    with uow() as u:
        for sub in subs:
            u.subscriptions.add(sub)
        u.commit()


def load(uow: Factory, ref: str = "sub_1") -> Subscription | None:
    with uow() as u:
        return u.subscriptions.by_gateway_ref(ref)


# -- subscriptions ----------------------------------------------------------------------------


def test_an_added_subscription_comes_back_with_every_field_at_version_one(uow: Factory) -> None:
    sub = subscription(
        start=datetime(2026, 3, 1, 11, 0, 0, 123456, tzinfo=CEST),
        cancel_at_period_end=True,
        pending_change=PendingChange("starter", Interval.YEAR, datetime(2026, 4, 1, tzinfo=CEST)),
        payment_method=PaymentMethodSummary("visa", "4242"),
        synced_at=datetime(2026, 3, 2, 8, 30, 5, 999999, tzinfo=UTC),
        ended_at=datetime(2026, 3, 3, tzinfo=CEST),
        cancels_at=datetime(2026, 3, 20, 12, 0, 0, 250000, tzinfo=CEST),
        status=Status.PAST_DUE,
    )
    add(uow, sub)
    assert sub.version == 1

    stored = load(uow)

    assert fields(stored) == fields(sub)
    assert stored is not None and stored.events == []
    assert stored.pending_change is not None and stored.synced_at is not None
    for moment in (
        stored.current_period_start,
        stored.synced_at,
        stored.pending_change.effective_at,
    ):
        assert moment.utcoffset() is not None


def test_a_subscription_without_pending_change_or_payment_method_comes_back_without_them(
    uow: Factory,
) -> None:
    sub = subscription()
    add(uow, sub)

    stored = load(uow)

    assert stored is not None
    assert (stored.pending_change, stored.payment_method, stored.synced_at, stored.ended_at) == (
        None,
        None,
        None,
        None,
    )
    assert fields(stored) == fields(sub)


def test_an_unknown_subscription_or_account_is_none(uow: Factory) -> None:
    with uow() as u:
        assert u.subscriptions.by_gateway_ref("sub_nope") is None
        assert u.subscriptions.for_account("acct_nobody") is None


def test_for_account_returns_the_live_subscription_over_newer_ended_ones(uow: Factory) -> None:
    add(
        uow,
        subscription(ref="sub_old", status=Status.CANCELED, start=T0 - timedelta(days=90)),
        subscription(ref="sub_live", start=T0 - timedelta(days=60)),
        subscription(ref="sub_newer_ended", status=Status.INCOMPLETE_EXPIRED, start=T0),
    )
    with uow() as u:
        found = u.subscriptions.for_account("acct_ada")
    assert found is not None and found.subscription_ref == "sub_live"


def test_for_account_returns_the_most_recent_ended_one_when_none_is_live(uow: Factory) -> None:
    add(
        uow,
        subscription(ref="sub_a", status=Status.CANCELED, start=T0 - timedelta(days=90)),
        subscription(ref="sub_b", status=Status.CANCELED, start=T0),
        subscription(ref="sub_c", status=Status.CANCELED, start=T0 - timedelta(days=30)),
    )
    with uow() as u:
        found = u.subscriptions.for_account("acct_ada")
    assert found is not None and found.subscription_ref == "sub_b"


def test_pending_changes_due_are_the_live_ones_by_then_soonest_first_and_bounded(
    uow: Factory,
) -> None:
    def kept(days: int) -> PendingChange:
        return PendingChange("starter", Interval.MONTH, T0 + timedelta(days=days))

    add(
        uow,
        subscription("acct_a", "sub_a", customer="cus_a", pending_change=kept(20)),
        subscription("acct_b", "sub_b", customer="cus_b", pending_change=kept(10)),
        subscription("acct_c", "sub_c", customer="cus_c", pending_change=kept(40)),
        subscription("acct_d", "sub_d", customer="cus_d"),
        subscription(
            "acct_e", "sub_e", customer="cus_e", status=Status.CANCELED, pending_change=kept(5)
        ),
    )
    with uow() as u:
        due = u.subscriptions.pending_changes_due(T0 + timedelta(days=20), limit=10)
        first = u.subscriptions.pending_changes_due(T0 + timedelta(days=30), limit=1)
        none = u.subscriptions.pending_changes_due(T0, limit=10)

    assert [s.subscription_ref for s in due] == ["sub_b", "sub_a"]  # the 20th is included
    assert fields(due[1]) == fields(load(uow, "sub_a"))
    assert [s.subscription_ref for s in first] == ["sub_b"]
    assert none == []


def test_saving_writes_every_change_and_bumps_the_version_by_one(uow: Factory) -> None:
    add(uow, subscription())
    with uow() as u:
        sub = u.subscriptions.by_gateway_ref("sub_1")
        assert sub is not None
        sub.plan_id, sub.interval = "scale", Interval.YEAR
        sub.cancel_at_period_end = True
        sub.pending_change = PendingChange("starter", Interval.MONTH, T1)
        sub.payment_method = PaymentMethodSummary("mastercard", "0005")
        sub.synced_at = T1
        u.subscriptions.save(sub)
        assert sub.version == 2
        u.subscriptions.save(sub)  # a second save in the same unit builds on the first
        u.commit()

    stored = load(uow)
    assert stored is not None and stored.version == 3
    assert fields(stored) == fields(sub)


def test_a_stale_save_raises_stale_version_and_keeps_the_newer_state(uow: Factory) -> None:
    add(uow, subscription())
    mine, theirs = load(uow), load(uow)
    assert mine is not None and theirs is not None
    with uow() as u:
        theirs.cancel_at_period_end = True
        u.subscriptions.save(theirs)
        u.commit()

    with uow() as u:
        mine.plan_id = "scale"
        with pytest.raises(StaleVersion):
            u.subscriptions.save(mine)
        u.commit()

    stored = load(uow)
    assert stored is not None
    assert (stored.version, stored.plan_id, stored.cancel_at_period_end) == (2, "growth", True)


def test_saving_a_subscription_that_was_never_added_is_stale(uow: Factory) -> None:
    sub = subscription()
    sub.version = 1
    with uow() as u:
        with pytest.raises(StaleVersion):
            u.subscriptions.save(sub)
        u.commit()
    assert load(uow) is None


def test_an_account_cannot_have_two_live_subscriptions(uow: Factory) -> None:
    add(uow, subscription(ref="sub_1"))
    with uow() as u:
        with pytest.raises(StaleVersion):
            u.subscriptions.add(subscription(ref="sub_2", status=Status.TRIALING))
        # The conflict leaves the unit usable: its other writes still commit.
        u.audit.append(AuditEntry("acct_ada", "subscribe", {}, "conflict", T0))
        u.commit()

    assert load(uow, "sub_2") is None
    with uow() as u:
        assert [e.outcome for e in u.audit.for_account("acct_ada")] == ["conflict"]


def test_an_ended_subscription_does_not_block_a_new_live_one(uow: Factory) -> None:
    add(uow, subscription(ref="sub_1", status=Status.CANCELED))
    add(uow, subscription(ref="sub_2", start=T1))
    with uow() as u:
        found = u.subscriptions.for_account("acct_ada")
    assert found is not None and found.subscription_ref == "sub_2"


def test_reviving_an_ended_subscription_beside_a_live_one_is_stale(uow: Factory) -> None:
    add(uow, subscription(ref="sub_1", status=Status.CANCELED))
    add(uow, subscription(ref="sub_2", start=T1))
    old = load(uow, "sub_1")
    assert old is not None
    with uow() as u:
        old.status = Status.ACTIVE
        with pytest.raises(StaleVersion):
            u.subscriptions.save(old)
        u.commit()
    stored = load(uow, "sub_1")
    assert stored is not None and (stored.status, stored.version) == (Status.CANCELED, 1)


def test_a_gateway_subscription_reference_is_stored_once(uow: Factory) -> None:
    add(uow, subscription(ref="sub_1", status=Status.CANCELED))
    with uow() as u:
        with pytest.raises(StaleVersion):
            u.subscriptions.add(subscription("acct_bob", "sub_1", customer="cus_bob"))
        u.commit()
    stored = load(uow)
    assert stored is not None and stored.account_id == "acct_ada"
    with uow() as u:
        assert u.customers.get("acct_bob") is None  # the failed add linked nothing


# -- customers --------------------------------------------------------------------------------


def test_an_account_has_one_customer_and_a_customer_one_account(uow: Factory) -> None:
    with uow() as u:
        u.customers.add("acct_ada", "cus_ada")
        u.customers.add("acct_ada", "cus_ada")  # the same pair again changes nothing
        with pytest.raises(StaleVersion):
            u.customers.add("acct_ada", "cus_other")
        with pytest.raises(StaleVersion):
            u.customers.add("acct_bob", "cus_ada")
        u.customers.add("acct_bob", "cus_bob")
        u.commit()

    with uow() as u:
        assert (u.customers.get("acct_ada"), u.customers.get("acct_bob")) == ("cus_ada", "cus_bob")
        assert u.customers.account_for("cus_ada") == "acct_ada"
        assert u.customers.account_for("cus_other") is None
        assert u.customers.get("acct_nobody") is None


def test_every_linked_account_is_listed_in_a_stable_order(uow: Factory) -> None:
    with uow() as u:
        assert list(u.customers.accounts()) == []
        for account in ("acct_b", "acct_B", "acct_a", "acct-c"):
            u.customers.add(account, f"cus_{account}")
        u.commit()
    with uow() as u:
        assert list(u.customers.accounts()) == ["acct-c", "acct_B", "acct_a", "acct_b"]


def test_adding_a_subscription_links_an_unlinked_account_to_its_customer(uow: Factory) -> None:
    add(uow, subscription())
    with uow() as u:
        assert u.customers.get("acct_ada") == "cus_ada"
        assert u.customers.account_for("cus_ada") == "acct_ada"


def test_a_subscription_whose_customer_belongs_to_another_account_is_stale(uow: Factory) -> None:
    with uow() as u:
        u.customers.add("acct_bob", "cus_ada")
        u.commit()
    with uow() as u:
        with pytest.raises(StaleVersion):
            u.subscriptions.add(subscription("acct_ada", customer="cus_ada"))
        u.commit()
    assert load(uow) is None


# -- checkouts --------------------------------------------------------------------------------


def checkout(checkout_id: str, account: str = "acct_ada", at: datetime = T0) -> CheckoutRecord:
    return CheckoutRecord(checkout_id, account, "growth", Interval.MONTH, CheckoutStatus.OPEN, at)


def link(uow: Factory, *accounts: str) -> None:
    with uow() as u:
        for account in accounts:
            u.customers.add(account, f"cus_{account}")
        u.commit()


def test_an_opened_checkout_comes_back_as_the_accounts_open_one(uow: Factory) -> None:
    link(uow, "acct_ada")
    at = datetime(2026, 3, 1, 11, 0, 0, 123456, tzinfo=CEST)
    with uow() as u:
        assert u.checkouts.open(checkout("cs_1", at=at)) is None
        u.commit()
    with uow() as u:
        assert u.checkouts.get("cs_1") == checkout("cs_1", at=at)
        assert u.checkouts.open_for("acct_ada") == checkout("cs_1", at=at)
        assert u.checkouts.get("cs_unknown") is None
        assert u.checkouts.open_for("acct_bob") is None


def test_opening_a_checkout_closes_the_accounts_earlier_one_as_expired(uow: Factory) -> None:
    link(uow, "acct_ada", "acct_bob")
    with uow() as u:
        u.checkouts.open(checkout("cs_1"))
        u.checkouts.open(checkout("cs_bob", "acct_bob"))
        u.commit()
    with uow() as u:
        replaced = u.checkouts.open(checkout("cs_2", at=T1))
        u.commit()

    expired = attrs.evolve(checkout("cs_1"), status=CheckoutStatus.EXPIRED, closed_at=T1)
    assert replaced == expired
    with uow() as u:
        assert u.checkouts.get("cs_1") == expired
        assert u.checkouts.open_for("acct_ada") == checkout("cs_2", at=T1)
        assert u.checkouts.open_for("acct_bob") == checkout("cs_bob", "acct_bob")


def test_closing_a_checkout_leaves_the_account_none_open_and_happens_once(uow: Factory) -> None:
    link(uow, "acct_ada")
    with uow() as u:
        u.checkouts.open(checkout("cs_1"))
        u.commit()
    with uow() as u:
        assert u.checkouts.close("cs_1", CheckoutStatus.COMPLETE, T1) is True
        assert u.checkouts.close("cs_1", CheckoutStatus.EXPIRED, T1) is False
        assert u.checkouts.close("cs_unknown", CheckoutStatus.EXPIRED, T1) is False
        u.commit()
    with uow() as u:
        assert u.checkouts.open_for("acct_ada") is None
        closed = u.checkouts.get("cs_1")
        assert closed is not None and (closed.status, closed.closed_at) == (
            CheckoutStatus.COMPLETE,
            T1,
        )
        # With none open, the next checkout replaces nothing.
        assert u.checkouts.open(checkout("cs_2", at=T1)) is None


def test_a_checkout_id_is_stored_once_and_needs_the_accounts_customer(uow: Factory) -> None:
    link(uow, "acct_ada")
    with uow() as u:
        u.checkouts.open(checkout("cs_1"))
        u.commit()
    with uow() as u:
        u.checkouts.close("cs_1", CheckoutStatus.EXPIRED, T1)
        with pytest.raises(StaleVersion):
            u.checkouts.open(checkout("cs_1", at=T1))
        with pytest.raises(StaleVersion):
            u.checkouts.open(checkout("cs_nobody", "acct_nobody"))
        # The conflicts leave the unit usable: its other writes still commit.
        u.checkouts.open(checkout("cs_2", at=T1))
        u.commit()
    with uow() as u:
        assert u.checkouts.open_for("acct_ada") == checkout("cs_2", at=T1)
        assert u.checkouts.get("cs_nobody") is None


def test_a_checkout_opened_in_a_unit_that_is_not_committed_is_not_kept(uow: Factory) -> None:
    link(uow, "acct_ada")
    with uow() as u:
        u.checkouts.open(checkout("cs_1"))
        u.commit()
    with uow() as u:
        u.checkouts.open(checkout("cs_2", at=T1))
    with uow() as u:
        assert u.checkouts.open_for("acct_ada") == checkout("cs_1")
        assert u.checkouts.get("cs_2") is None


def test_concurrent_checkouts_of_one_account_leave_exactly_one_open(uow: Factory) -> None:
    # Each unit opens its checkout and commits; one that meets another's write retries on
    # fresh state (SQL queues them on the account's row; memory's later commit conflicts).
    threads_count = 8
    link(uow, "acct_ada")
    start = threading.Barrier(threads_count)
    errors: list[BaseException] = []

    def open_one(n: int) -> None:
        start.wait()
        try:
            for _ in range(50):
                try:
                    with uow() as u:
                        u.checkouts.open(checkout(f"cs_{n}", at=T0 + timedelta(seconds=n)))
                        u.commit()
                    return
                except StaleVersion:
                    continue
            raise AssertionError(f"cs_{n} was never recorded")
        except BaseException as error:  # collected so the main thread fails loudly
            errors.append(error)

    threads = [threading.Thread(target=open_one, args=(n,)) for n in range(threads_count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    with uow() as u:
        stored = [u.checkouts.get(f"cs_{n}") for n in range(threads_count)]
        still_open = u.checkouts.open_for("acct_ada")
    assert all(c is not None for c in stored)
    statuses = [c.status for c in stored if c is not None]
    assert statuses.count(CheckoutStatus.OPEN) == 1
    assert statuses.count(CheckoutStatus.EXPIRED) == threads_count - 1
    assert still_open is not None and still_open.status is CheckoutStatus.OPEN


# -- transactions -----------------------------------------------------------------------------


def _write_one_of_everything(u: UnitOfWork) -> None:
    u.customers.add("acct_ada", "cus_ada")
    u.subscriptions.add(subscription())
    u.quotes.add(quote())
    u.invoices.upsert("acct_ada", invoice("in_1", T0))
    u.audit.append(AuditEntry("acct_ada", "plan.change", {"plan": "growth"}, "ok", T0))


def _nothing_stored(uow: Factory) -> bool:
    with uow() as u:
        return (
            u.customers.get("acct_ada") is None
            and u.subscriptions.for_account("acct_ada") is None
            and u.quotes.get("q_1") is None
            and u.invoices.get("in_1") is None
            and list(u.audit.for_account("acct_ada")) == []
        )


def test_leaving_a_unit_of_work_without_commit_keeps_nothing(uow: Factory) -> None:
    with uow() as u:
        _write_one_of_everything(u)
    assert _nothing_stored(uow)


def test_an_exception_inside_a_unit_of_work_keeps_nothing(uow: Factory) -> None:
    with pytest.raises(RuntimeError), uow() as u:
        _write_one_of_everything(u)
        raise RuntimeError("the gateway fell over")
    assert _nothing_stored(uow)


def test_rollback_drops_the_writes_so_far_and_the_unit_stays_usable(uow: Factory) -> None:
    with uow() as u:
        _write_one_of_everything(u)
        u.rollback()
        assert u.customers.get("acct_ada") is None
        u.customers.add("acct_bob", "cus_bob")
        u.commit()
    assert _nothing_stored(uow)
    with uow() as u:
        assert u.customers.get("acct_bob") == "cus_bob"


def test_a_committed_unit_of_work_keeps_everything(uow: Factory) -> None:
    with uow() as u:
        _write_one_of_everything(u)
        u.commit()
    with uow() as u:
        assert u.customers.get("acct_ada") == "cus_ada"
        assert u.subscriptions.for_account("acct_ada") is not None
        assert u.quotes.get("q_1") == quote()
        assert u.invoices.get("in_1") == ("acct_ada", invoice("in_1", T0))
        assert len(u.audit.for_account("acct_ada")) == 1


# -- quotes -----------------------------------------------------------------------------------


def test_a_quote_round_trips_and_saving_records_its_redemption(uow: Factory) -> None:
    with uow() as u:
        u.quotes.add(quote())
        u.commit()
    with uow() as u:
        stored = u.quotes.get("q_1")
        assert stored == quote()
        assert stored is not None and stored.redeemed_at is None
        u.quotes.save(stored.redeemed(T1))
        u.commit()
    with uow() as u:
        redeemed = u.quotes.get("q_1")
        assert redeemed is not None and redeemed.redeemed_at == T1
        assert u.quotes.get("q_unknown") is None


def test_a_quote_id_is_stored_once(uow: Factory) -> None:
    with uow() as u:
        u.quotes.add(quote())
        with pytest.raises(StaleVersion):
            u.quotes.add(attrs.evolve(quote(), amount_due_now=Money(1, "EUR")))
        u.commit()
    with uow() as u:
        assert u.quotes.get("q_1") == quote()


# -- invoices ---------------------------------------------------------------------------------


def test_an_invoice_upsert_inserts_then_updates_and_get_names_the_owner(uow: Factory) -> None:
    with uow() as u:
        u.invoices.upsert("acct_ada", invoice("in_1", T0))
        u.commit()
    paid = invoice(
        "in_1",
        T0,
        status=InvoiceStatus.PAID,
        amount_paid=Money(4900, "USD"),
        hosted_url="https://pay.example/in_1",
        billing_reason=BillingReason.MANUAL,
    )
    with uow() as u:
        u.invoices.upsert("acct_ada", paid)
        u.commit()
    with uow() as u:
        assert u.invoices.get("in_1") == ("acct_ada", paid)
        assert u.invoices.get("in_unknown") is None


def test_an_invoice_never_moves_back_a_stage_whoever_writes_it(uow: Factory) -> None:
    draft = invoice("in_1", T0, status=InvoiceStatus.DRAFT, pdf_url=None)
    opened = invoice("in_1", T0)
    unpaid = invoice("in_1", T0, status=InvoiceStatus.UNCOLLECTIBLE)
    paid = invoice("in_1", T0, status=InvoiceStatus.PAID, amount_paid=Money(4900, "USD"))
    receipt = attrs.evolve(paid, hosted_url="https://pay.example/in_1")
    with uow() as u:
        written = [u.invoices.upsert("acct_ada", i) for i in (opened, draft, unpaid, opened)]
        u.commit()
    assert written == [True, False, True, False]
    with uow() as u:
        assert u.invoices.get("in_1") == ("acct_ada", unpaid)
        # uncollectible may still be paid; the same stage takes the newer details
        assert [u.invoices.upsert("acct_ada", i) for i in (paid, receipt)] == [True, True]
        assert [u.invoices.upsert("acct_ada", i) for i in (unpaid, opened, draft)] == [False] * 3
        u.commit()
    with uow() as u:
        assert u.invoices.get("in_1") == ("acct_ada", receipt)


def test_invoices_list_newest_first_in_pages(uow: Factory) -> None:
    # in_c and in_d share a second: the larger id comes first, as everywhere.
    created = {
        "in_a": T0,
        "in_b": T0 + timedelta(days=1),
        "in_c": T0 + timedelta(days=2),
        "in_d": T0 + timedelta(days=2),
        "in_e": T0 + timedelta(days=3, microseconds=1),
    }
    with uow() as u:
        for ref, at in created.items():
            u.invoices.upsert("acct_ada", invoice(ref, at))
        u.invoices.upsert("acct_bob", invoice("in_bob", T1, customer_ref="cus_bob"))
        u.commit()

    with uow() as u:
        first = u.invoices.list_for_account("acct_ada", limit=2, starting_after=None)
        second = u.invoices.list_for_account("acct_ada", limit=2, starting_after="in_d")
        last = u.invoices.list_for_account("acct_ada", limit=2, starting_after="in_b")
        everything = u.invoices.list_for_account("acct_ada", limit=5, starting_after=None)
        foreign_cursor = u.invoices.list_for_account("acct_ada", limit=2, starting_after="in_bob")

    assert ([i.id for i in first.items], first.has_more) == (["in_e", "in_d"], True)
    assert ([i.id for i in second.items], second.has_more) == (["in_c", "in_b"], True)
    assert ([i.id for i in last.items], last.has_more) == (["in_a"], False)
    assert ([i.id for i in everything.items], everything.has_more) == (
        ["in_e", "in_d", "in_c", "in_b", "in_a"],
        False,
    )
    assert everything.items[0] == invoice("in_e", created["in_e"])
    assert (foreign_cursor.items, foreign_cursor.has_more) == ((), False)


# -- audit ------------------------------------------------------------------------------------


def test_the_audit_log_keeps_entries_in_order_per_account(uow: Factory) -> None:
    entries = [
        AuditEntry("acct_ada", "checkout.start", {"plan": "growth", "interval": "month"}, "ok", T0),
        AuditEntry("acct_bob", "cancel", {}, "ok", T0),
        AuditEntry("acct_ada", "plan.change", {"plan": "scale"}, "payment.declined", T1),
        AuditEntry("acct_ada", "event.plan_changed", {}, "recorded", T0),
    ]
    with uow() as u:
        for entry in entries[:2]:
            u.audit.append(entry)
        u.commit()
    with uow() as u:
        for entry in entries[2:]:
            u.audit.append(entry)
        u.commit()

    with uow() as u:
        ada = list(u.audit.for_account("acct_ada"))
        bob = list(u.audit.for_account("acct_bob"))
    # Order of appending, not of `at`: the log is what happened, in the order it was written.
    assert ada == [entries[0], entries[2], entries[3]]
    assert bob == [entries[1]]
    assert all(e.at.utcoffset() is not None for e in ada)


# -- webhook inbox ----------------------------------------------------------------------------


def delivery(event_id: str, created: datetime, *, object_ref: str | None = "sub_1") -> InboxEvent:
    return InboxEvent(
        event_id=event_id,
        gateway="sandbox",
        type="customer.subscription.updated",
        payload=f'{{"id": "{event_id}"}}',
        received_at=T0,
        event_created=created,
        object_ref=object_ref,
        next_attempt_at=T0,
    )


def test_an_inbox_delivery_is_stored_once(uow: Factory) -> None:
    with uow() as u:
        assert u.inbox.add(delivery("evt_1", T0)) is True
        assert u.inbox.add(attrs.evolve(delivery("evt_1", T0), payload="{}")) is False
        u.commit()
    with uow() as u:
        assert u.inbox.get("evt_1") == delivery("evt_1", T0)
        assert u.inbox.get("evt_unknown") is None


def test_inbox_deliveries_stored_together_say_each_whether_it_was_new(uow: Factory) -> None:
    with uow() as u:
        u.inbox.add(delivery("evt_old", T0))
        u.commit()
    with uow() as u:
        stored = u.inbox.add_many(
            [
                delivery("evt_a", T0),
                delivery("evt_old", T0),  # stored before
                delivery("evt_b", T1, object_ref=None),
                attrs.evolve(delivery("evt_a", T0), payload="{}"),  # twice in one write
            ]
        )
        assert u.inbox.add_many([]) == []
        u.commit()
    with uow() as u:
        assert u.inbox.get("evt_a") == delivery("evt_a", T0)  # the first of the two
        assert u.inbox.get("evt_b") == delivery("evt_b", T1, object_ref=None)
    assert stored == [True, False, True, False]


def test_claiming_leases_due_events_oldest_first_and_only_once(uow: Factory) -> None:
    now = T0 + timedelta(minutes=1)
    with uow() as u:
        u.inbox.add(delivery("evt_late", T0 + timedelta(seconds=2)))
        u.inbox.add(delivery("evt_early", T0 + timedelta(seconds=1)))
        u.inbox.add(attrs.evolve(delivery("evt_later", T0, object_ref="sub_2"), next_attempt_at=T1))
        u.commit()
    with uow() as u:
        first = u.inbox.claim(worker="w1", now=now, lease=timedelta(seconds=60), limit=10)
        u.commit()
    with uow() as u:
        again = u.inbox.claim(worker="w2", now=now, lease=timedelta(seconds=60), limit=10)
        u.commit()

    assert [e.event_id for e in first] == ["evt_early", "evt_late"]
    assert all(e.locked_by == "w1" and e.attempts == 1 for e in first)
    assert first[0].locked_until == now + timedelta(seconds=60)
    assert again == []


def test_an_event_waits_while_an_older_event_of_its_object_is_pending(uow: Factory) -> None:
    now = T0 + timedelta(minutes=1)
    with uow() as u:
        u.inbox.add(attrs.evolve(delivery("evt_retrying", T0), next_attempt_at=T1))
        u.inbox.add(delivery("evt_newer", T0 + timedelta(seconds=1)))
        u.inbox.add(delivery("evt_other", T0 + timedelta(seconds=2), object_ref="sub_2"))
        u.inbox.add(delivery("evt_none", T0 + timedelta(seconds=3), object_ref=None))
        u.commit()
    with uow() as u:
        first = u.inbox.claim(worker="w1", now=now, lease=timedelta(seconds=60), limit=10)
        u.commit()
    with uow() as u:
        u.inbox.mark_applied("evt_other", worker="w1", at=now, outcome="applied")
        u.inbox.mark_applied("evt_none", worker="w1", at=now, outcome="applied")
        u.inbox.park("evt_retrying", at=now, reason="test")
        u.commit()
    with uow() as u:
        after_park = u.inbox.claim(worker="w2", now=now, lease=timedelta(seconds=60), limit=10)
        u.commit()

    assert [e.event_id for e in first] == ["evt_other", "evt_none"]
    assert [e.event_id for e in after_park] == ["evt_newer"]


def test_a_batch_is_marked_applied_in_one_call_only_while_every_lease_is_held(
    uow: Factory,
) -> None:
    with uow() as u:
        for n in range(3):
            u.inbox.add(delivery(f"evt_{n}", T0 + timedelta(seconds=n), object_ref=None))
        u.inbox.claim(worker="w1", now=T0, lease=timedelta(seconds=60), limit=2)
        u.commit()
    with uow() as u, pytest.raises(LeaseLost):
        u.inbox.mark_applied_many({"evt_0": "applied", "evt_2": "applied"}, worker="w1", at=T0)
    with uow() as u:
        u.inbox.mark_applied_many({"evt_0": "applied", "evt_1": "stale"}, worker="w1", at=T0)
        u.commit()
    with uow() as u:
        stored = [u.inbox.get(f"evt_{n}") for n in range(3)]
    assert [e.outcome if e else "missing" for e in stored] == ["applied", "stale", None]


def test_an_expired_lease_is_claimed_again_and_the_old_worker_loses_it(uow: Factory) -> None:
    with uow() as u:
        u.inbox.add(delivery("evt_1", T0))
        u.inbox.claim(worker="w1", now=T0, lease=timedelta(seconds=60), limit=1)
        u.commit()
    later = T0 + timedelta(minutes=5)
    with uow() as u:
        [taken] = u.inbox.claim(worker="w2", now=later, lease=timedelta(seconds=60), limit=1)
        u.commit()
    assert (taken.locked_by, taken.attempts) == ("w2", 2)

    with uow() as u:
        with pytest.raises(LeaseLost):
            u.inbox.mark_applied("evt_1", worker="w1", at=later, outcome="applied")
        u.inbox.mark_applied("evt_1", worker="w2", at=later, outcome="applied")
        u.commit()
    with uow() as u:
        stored = u.inbox.get("evt_1")
        assert stored is not None
        assert (stored.status, stored.outcome, stored.locked_by) == (
            InboxStatus.APPLIED,
            "applied",
            None,
        )
        assert u.inbox.newest_applied("sub_1", excluding="evt_other") == T0
        assert u.inbox.newest_applied("sub_1", excluding="evt_1") is None
        assert u.inbox.newest_applied_many(["sub_1", "sub_none"]) == {"sub_1": T0}
        assert u.inbox.newest_applied_many([]) == {}


def test_failures_back_off_park_and_requeue(uow: Factory) -> None:
    lease = timedelta(seconds=60)
    with uow() as u:
        u.inbox.add(delivery("evt_1", T0))
        u.inbox.claim(worker="w1", now=T0, lease=lease, limit=1)
        u.inbox.mark_failed("evt_1", worker="w1", at=T0, error="boom", retry_at=T1)
        u.commit()
    with uow() as u:
        assert u.inbox.claim(worker="w1", now=T0, lease=lease, limit=1) == []
        [retry] = u.inbox.claim(worker="w1", now=T1, lease=lease, limit=1)
        u.inbox.mark_failed("evt_1", worker="w1", at=T1, error="boom again", retry_at=None)
        u.commit()
    assert retry.last_error == "boom"
    with uow() as u:
        parked = u.inbox.get("evt_1")
        assert parked is not None and parked.status is InboxStatus.PARKED
        assert [e.event_id for e in u.inbox.list(InboxStatus.PARKED, limit=10)] == ["evt_1"]
        assert u.inbox.claim(worker="w1", now=T1, lease=lease, limit=1) == []
        assert u.inbox.requeue("evt_1", at=T1) is True
        assert u.inbox.requeue("evt_unknown", at=T1) is False
        u.commit()
    with uow() as u:
        [back] = u.inbox.claim(worker="w1", now=T1, lease=lease, limit=1)
        assert (back.status, back.attempts) == (InboxStatus.PENDING, 3)
        assert u.inbox.park("evt_1", at=T1, reason="operator") is True
        u.commit()
    with uow() as u:
        stored = u.inbox.get("evt_1")
        assert stored is not None and (stored.status, stored.last_error) == (
            InboxStatus.PARKED,
            "operator",
        )


def test_inbox_lists_newest_received_first_and_counts_by_status(uow: Factory) -> None:
    with uow() as u:
        for n in range(3):
            u.inbox.add(attrs.evolve(delivery(f"evt_{n}", T0), received_at=T0 + timedelta(n)))
        u.inbox.claim(worker="w", now=T1, lease=timedelta(seconds=1), limit=1)
        u.inbox.mark_applied("evt_0", worker="w", at=T1, outcome="applied")
        u.inbox.park("evt_1", at=T1, reason="bad")
        assert u.inbox.park("evt_0", at=T1, reason="too late") is False  # applied stays applied
        u.commit()
    with uow() as u:
        listed = [e.event_id for e in u.inbox.list(None, limit=10)]
        pending = [e.event_id for e in u.inbox.list(InboxStatus.PENDING, limit=10)]
        stats = u.inbox.stats(T0 + timedelta(days=3))
        backlog = u.inbox.backlog(T0 + timedelta(days=3))
    assert listed == ["evt_2", "evt_1", "evt_0"]
    assert pending == ["evt_2"]
    assert (stats.pending, stats.parked, stats.applied) == (1, 1, 1)
    assert stats.oldest_pending_age_seconds == timedelta(days=1).total_seconds()
    # The backlog counts the same unapplied events; the applied one is not in it.
    assert backlog == InboxBacklog(
        pending=1, oldest_pending_age_seconds=timedelta(days=1).total_seconds(), parked=1
    )
