"""What a batch keeps to save round trips (ADR 0011): audit entries held until it commits, and
account links read once. Neither may outlive an event rolled back to its savepoint."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta, timezone

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from responseiq_billing.adapters.sql.batch import SqlBatch
from responseiq_billing.adapters.sql.database import create_engine_from_url
from responseiq_billing.adapters.sql.repositories import SqlSubscriptions
from responseiq_billing.adapters.sql.tables import accounts, audit_log
from responseiq_billing.application.ports import AuditEntry
from responseiq_billing.domain.errors import StaleVersion
from responseiq_billing.domain.plans import Interval
from responseiq_billing.domain.subscription import (
    PaymentMethodSummary,
    PendingChange,
    Status,
    Subscription,
)

T0 = datetime(2026, 3, 1, 9, tzinfo=UTC)
T1 = datetime(2026, 4, 1, 9, tzinfo=UTC)


@pytest.fixture
def engine(migrated: str) -> Iterator[Engine]:
    engine = create_engine_from_url(migrated)
    yield engine
    engine.dispose()


def _entry(action: str) -> AuditEntry:
    return AuditEntry("acct_1", action, {"event_id": f"evt_{action}"}, "ok", T0)


def _actions(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        return list(conn.scalars(sa.select(audit_log.c.action).order_by(audit_log.c.id)))


def _link(engine: Engine, account_id: str, customer_ref: str) -> None:
    with engine.begin() as conn:
        conn.execute(
            accounts.insert().values(
                account_id=account_id, customer_ref=customer_ref, created_at=T0
            )
        )


@contextmanager
def _selects(engine: Engine) -> Iterator[list[str]]:
    """The SELECTs run on `engine` within the block."""
    seen: list[str] = []

    def note(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            seen.append(statement)

    sa.event.listen(engine, "before_cursor_execute", note)
    try:
        yield seen
    finally:
        sa.event.remove(engine, "before_cursor_execute", note)


def test_held_audit_entries_are_written_with_the_batch_and_dropped_with_their_event(
    engine: Engine,
) -> None:
    with SqlBatch(engine) as tx:
        tx.savepoint()
        with tx.unit_of_work() as u:
            u.audit.append(_entry("kept"))
            u.commit()
        tx.savepoint()
        with tx.unit_of_work() as u:
            u.audit.append(_entry("rolled back"))
            u.commit()
        tx.rollback_to_savepoint()
        tx.savepoint()
        with tx.unit_of_work() as u:
            u.audit.append(_entry("read back, then rolled back"))
            # Reading the log in the batch sees what it holds (written for the read)
            assert [e.action for e in u.audit.for_account("acct_1")] == [
                "kept",
                "read back, then rolled back",
            ]
            u.commit()
        tx.rollback_to_savepoint()  # undoes the entry written for the read too
        tx.savepoint()
        with tx.unit_of_work() as u:
            u.audit.append(_entry("after"))
            u.commit()
        tx.commit()

    assert _actions(engine) == ["kept", "after"]


def test_a_unit_left_holding_an_uncommitted_audit_entry_taints_its_event(engine: Engine) -> None:
    with SqlBatch(engine) as tx:
        tx.savepoint()
        with tx.unit_of_work() as u:
            u.audit.append(_entry("never committed"))
        assert tx.tainted
        tx.rollback_to_savepoint()
        tx.commit()

    assert _actions(engine) == []


def test_account_links_of_held_customers_are_read_once_for_the_batch(engine: Engine) -> None:
    _link(engine, "acct_1", "cus_1")
    with SqlBatch(engine) as tx:
        assert tx.hold(["cus_1", "cus_unknown"]) == set()
        with _selects(engine) as selects:
            for _ in range(2):  # two events of the customer
                tx.savepoint()
                with tx.unit_of_work() as u:
                    assert u.customers.account_for("cus_1") == "acct_1"
                    assert u.customers.get("acct_1") == "cus_1"
                    u.commit()
        assert selects == []
        with _selects(engine) as selects:
            for _ in range(2):  # not linked: asked by each event, as one may be written
                tx.savepoint()
                with tx.unit_of_work() as u:
                    assert u.customers.account_for("cus_unknown") is None
        assert len(selects) == 2
        tx.commit()


def test_a_link_written_by_an_event_rolled_back_is_forgotten_and_a_kept_one_is_known(
    engine: Engine,
) -> None:
    with SqlBatch(engine) as tx:
        tx.savepoint()
        with tx.unit_of_work() as u:
            u.customers.add("acct_2", "cus_2")
            u.commit()
        tx.rollback_to_savepoint()
        tx.savepoint()
        with tx.unit_of_work() as u:
            assert u.customers.get("acct_2") is None
            assert u.customers.account_for("cus_2") is None
            u.customers.add("acct_3", "cus_3")
            u.commit()
        tx.savepoint()
        with _selects(engine) as selects, tx.unit_of_work() as u:
            assert u.customers.account_for("cus_3") == "acct_3"
        assert selects == []
        tx.commit()

    with engine.connect() as conn:
        assert list(conn.execute(sa.select(accounts.c.account_id, accounts.c.customer_ref))) == [
            ("acct_3", "cus_3")
        ]


def _subscription(account: str, ref: str, customer: str) -> Subscription:
    return Subscription(
        account_id=account,
        customer_ref=customer,
        subscription_ref=ref,
        plan_id="growth",
        interval=Interval.MONTH,
        status=Status.ACTIVE,
        current_period_start=T0,
        current_period_end=T0 + timedelta(days=31),
    )


def test_a_conflicting_write_taints_an_unguarded_event_and_is_stale_in_a_guarded_one(
    engine: Engine,
) -> None:
    """An unguarded event takes no savepoint for a write that may conflict: the conflict
    taints it (the inbox then runs the batch again guarded). Guarded, the write's own savepoint
    keeps the transaction usable after the conflict."""
    with engine.begin() as conn:
        SqlSubscriptions(conn).add(_subscription("acct_ada", "sub_1", "cus_ada"))
    duplicate = _subscription("acct_bob", "sub_1", "cus_bob")  # the same gateway reference
    with SqlBatch(engine) as tx:
        tx.next_event()
        with tx.unit_of_work() as u:
            with pytest.raises(StaleVersion):
                u.subscriptions.add(duplicate)
            u.commit()  # as if the event's code took the conflict in its stride
        assert tx.tainted
    with SqlBatch(engine) as tx:
        tx.savepoint()
        with tx.unit_of_work() as u:
            with pytest.raises(StaleVersion):
                u.subscriptions.add(duplicate)
            stored = u.subscriptions.by_gateway_ref("sub_1")
            assert stored is not None and stored.account_id == "acct_ada"
            assert u.customers.get("acct_bob") is None  # undone with the insert


def test_a_batch_tells_which_of_our_copies_the_current_event_wrote_and_at_what_version(
    engine: Engine,
) -> None:
    """What `BatchGateway.wrote` is told instead of reading our copy again after a write."""
    with engine.begin() as conn:
        SqlSubscriptions(conn).add(_subscription("acct_ada", "sub_ada", "cus_ada"))
    with SqlBatch(engine) as tx:
        tx.next_event()
        with tx.unit_of_work() as u:
            u.subscriptions.add(_subscription("acct_bob", "sub_bob", "cus_bob"))
            ada = u.subscriptions.by_gateway_ref("sub_ada")
            assert ada is not None
            ada.cancel_at_period_end = True
            u.subscriptions.save(ada)
            u.commit()
        assert tx.versions_written == {"sub_bob": 1, "sub_ada": 2}

        tx.next_event()  # an event that writes none of them
        with tx.unit_of_work() as u:
            u.audit.append(_entry("plan.change"))
            u.commit()
        assert tx.versions_written == {}

        tx.savepoint()  # one rolled back: what it wrote is undone, so not reported
        with tx.unit_of_work() as u:
            ada = u.subscriptions.by_gateway_ref("sub_ada")
            assert ada is not None
            ada.cancel_at_period_end = False
            u.subscriptions.save(ada)
            u.commit()
        assert tx.versions_written == {"sub_ada": 3}
        tx.rollback_to_savepoint()
        assert tx.versions_written == {}
        tx.commit()
    with engine.connect() as conn:
        held = SqlSubscriptions(conn).by_gateway_ref("sub_ada")
    assert held is not None and held.version == 2


def test_an_unguarded_event_reads_the_held_customers_copies_without_a_round_trip(
    engine: Engine,
) -> None:
    """Read with the hold; what the batch writes is what its next read returns, exactly as
    the database returns it; a guarded event reads afresh."""
    with engine.begin() as conn:
        SqlSubscriptions(conn).add(_subscription("acct_ada", "sub_ada", "cus_ada"))
    eastern = timezone(timedelta(hours=-5))
    with SqlBatch(engine) as tx:
        tx.hold(["cus_ada"])
        tx.next_event()
        with _selects(engine) as seen, tx.unit_of_work() as u:
            held = u.subscriptions.by_gateway_ref("sub_ada")
            assert held is not None and held.version == 1
            held.pending_change = PendingChange("starter", Interval.YEAR, T1.astimezone(eastern))
            held.payment_method = PaymentMethodSummary("visa", "4242")
            held.cancel_at_period_end = True
            held.cancels_at = T1
            held.synced_at = T0.astimezone(eastern)
            u.subscriptions.save(held)
            u.commit()
        assert seen == []

        tx.next_event()
        with _selects(engine) as seen, tx.unit_of_work() as u:
            kept = u.subscriptions.by_gateway_ref("sub_ada")
        assert seen == []
        stored = SqlSubscriptions(tx.connection).by_gateway_ref("sub_ada")
        assert kept is not None and kept.version == 2
        assert kept == stored
        assert kept is not stored
        assert kept.synced_at is not None and kept.pending_change is not None
        assert (kept.synced_at.tzinfo, kept.pending_change.effective_at.tzinfo) == (UTC, UTC)

        tx.savepoint()
        with _selects(engine) as seen, tx.unit_of_work() as u:
            assert u.subscriptions.by_gateway_ref("sub_ada") == stored
        assert len(seen) == 1


def test_a_request_that_writes_a_held_copy_meanwhile_is_caught_by_the_events_write(
    engine: Engine,
) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite has one writer: nothing can be written while a batch is open")
    with engine.begin() as conn:
        SqlSubscriptions(conn).add(_subscription("acct_ada", "sub_ada", "cus_ada"))
    with SqlBatch(engine) as tx:
        tx.hold(["cus_ada"])
        with engine.begin() as other:  # another tab's plan change, after the hold
            request = SqlSubscriptions(other).by_gateway_ref("sub_ada")
            assert request is not None
            request.plan_id = "business"
            SqlSubscriptions(other).save(request)
        tx.next_event()
        with tx.unit_of_work() as u:
            held = u.subscriptions.by_gateway_ref("sub_ada")
            assert held is not None and held.version == 1  # the bet: read with the hold
            held.cancel_at_period_end = True
            with pytest.raises(StaleVersion):
                u.subscriptions.save(held)
        assert tx.tainted  # the inbox runs the batch again, guarded: every read afresh
        tx.connection.rollback()
    with engine.connect() as conn:
        now = SqlSubscriptions(conn).by_gateway_ref("sub_ada")
    assert now is not None and (now.plan_id, now.cancel_at_period_end) == ("business", False)


def test_a_customer_held_by_another_batch_is_named_and_its_rows_are_not_read(
    engine: Engine,
) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite has one writer: batches never overlap, nothing is held")
    for n in (1, 2, 3):
        with engine.begin() as conn:
            SqlSubscriptions(conn).add(_subscription(f"acct_{n}", f"sub_{n}", f"cus_{n}"))
    with SqlBatch(engine) as first, SqlBatch(engine) as second:
        assert first.hold(["cus_1", "cus_2"]) == set()
        assert second.hold(["cus_2", "cus_3"]) == {"cus_2"}
        second.next_event()
        with _selects(engine) as selects, second.unit_of_work() as u:
            assert u.customers.account_for("cus_3") == "acct_3"
            held = u.subscriptions.by_gateway_ref("sub_3")
            assert held is not None and held.account_id == "acct_3"
        assert selects == []  # read with the hold
        with _selects(engine) as selects, second.unit_of_work() as u:
            assert u.customers.account_for("cus_2") == "acct_2"
            assert u.subscriptions.by_gateway_ref("sub_2") is not None
        assert len(selects) == 2  # not held: not read with the hold
        first.commit()  # its locks go with its transaction
        with SqlBatch(engine) as third:
            assert third.hold(["cus_1", "cus_2"]) == set()
