"""Every query the repositories run is served by the index meant for it, on a seeded PostgreSQL.

20,000 subscriptions with their accounts, checkouts, quotes, invoices, audit entries and applied
inbox events are written by COPY (`tests/scale_data.py`) into a database of their own and
analysed; then every repository method runs once (`scale_data.probe`, rolled back) and each
statement it emitted is EXPLAINed with its own parameters. No timing: only the plans.
`benchmarks/scale.py` prints the same plans at 1,000,000 subscriptions (README, Performance).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from responseiq_billing.adapters.sql.batch import SqlBatch
from responseiq_billing.adapters.sql.database import create_engine_from_url
from responseiq_billing.adapters.sql.inbox import SqlInbox
from responseiq_billing.adapters.sql.migrate import upgrade
from responseiq_billing.adapters.sql.repositories import (
    SqlAudit,
    SqlCheckouts,
    SqlCustomers,
    SqlInvoices,
    SqlQuotes,
    SqlSubscriptions,
)
from responseiq_billing.adapters.sql.tables import metadata
from tests import scale_data
from tests.sql_fixtures import postgres_database

pytestmark = pytest.mark.postgres
REPOSITORIES = {
    cls.__name__: cls
    for cls in (
        SqlCustomers,
        SqlSubscriptions,
        SqlCheckouts,
        SqlQuotes,
        SqlInvoices,
        SqlAudit,
        SqlInbox,
    )
}

SUBSCRIPTIONS = 20_000

# The indexes each repository method's statements may use; a plan using any other index, or
# reading one of the big tables whole, fails. A method missing here fails too: say which index
# serves it before it ships.
EXPECTED: dict[str, set[str]] = {
    "SqlCustomers.get": {"pk_accounts"},
    "SqlCustomers.account_for": {"uq_accounts_customer_ref"},
    "SqlCustomers.add": set(),  # INSERT
    "SqlSubscriptions.for_account": {"ix_subscriptions_account_id"},
    "SqlSubscriptions.by_gateway_ref": {"uq_subscriptions_subscription_ref"},
    "SqlSubscriptions.pending_changes_due": {"ix_subscriptions_pending_due"},
    "SqlSubscriptions.save": {"uq_subscriptions_subscription_ref"},
    "SqlSubscriptions.add": set(),  # INSERT
    "SqlCheckouts.get": {"pk_checkouts"},
    "SqlCheckouts.open_for": {"uq_checkouts_one_open_per_account"},
    "SqlCheckouts.open": {"pk_accounts"},  # the account's row, locked; then an INSERT
    "SqlCheckouts.close": {"uq_checkouts_one_open_per_account", "pk_checkouts"},
    "SqlQuotes.get": {"pk_quotes"},
    "SqlQuotes.save": {"pk_quotes"},  # ON CONFLICT (id)
    "SqlInvoices.get": {"pk_invoices"},
    "SqlInvoices.upsert": {"pk_invoices"},  # ON CONFLICT (id)
    # the page (newest first) and the next page after a cursor; the cursor's row by its id
    "SqlInvoices.list_for_account": {"ix_invoices_account_created", "pk_invoices"},
    "SqlAudit.append": set(),  # INSERT
    "SqlAudit.for_account": {"ix_audit_log_account_id"},
    "SqlInbox.add": {"uq_webhook_inbox_event_id"},  # ON CONFLICT (event_id)
    "SqlInbox.add_many": {"uq_webhook_inbox_event_id"},
    # due events among the pending ones; then the claimed rows by id, and the older events
    # of their objects
    "SqlInbox.claim": {"ix_webhook_inbox_due", "pk_webhook_inbox", "ix_webhook_inbox_object_ref"},
    "SqlInbox.newest_applied": {"ix_webhook_inbox_object_ref"},
    "SqlInbox.newest_applied_many": {"ix_webhook_inbox_object_ref"},
    "SqlInbox.get": {"uq_webhook_inbox_event_id"},
    # by event id, among pending rows: either index narrows to a few rows
    "SqlInbox.mark_applied": {"uq_webhook_inbox_event_id", "ix_webhook_inbox_due"},
    "SqlInbox.mark_applied_many": {"uq_webhook_inbox_event_id", "ix_webhook_inbox_due"},
    "SqlInbox.mark_failed": {"uq_webhook_inbox_event_id", "ix_webhook_inbox_due"},
    "SqlInbox.release": {"uq_webhook_inbox_event_id", "ix_webhook_inbox_due"},
    "SqlInbox.requeue": {"uq_webhook_inbox_event_id", "ix_webhook_inbox_due"},
    "SqlInbox.park": {"uq_webhook_inbox_event_id", "ix_webhook_inbox_due"},
    "SqlInbox.list": {"ix_webhook_inbox_due"},  # by status; unfiltered: see WHOLE
    "SqlInbox.backlog": {"ix_webhook_inbox_due"},  # /metrics: the unapplied rows only
    # not hot: reads every row by design
    "SqlInbox.stats": set(),
    "SqlCustomers.accounts": set(),
}
# Methods that read a whole table by design, and why that is fine (README, Performance):
WHOLE = {
    "SqlCustomers.accounts": "accounts",  # `billing reconcile` without --account: every account
    "SqlInbox.stats": "webhook_inbox",  # `billing inbox stats`: counts every applied row
    "SqlInbox.list": "webhook_inbox",  # `billing inbox list` without a status: newest first
}


@pytest.fixture(scope="module")
def seeded() -> Iterator[tuple[Engine, str]]:
    with postgres_database("billing_plans") as url:
        upgrade(url)
        done = scale_data.seed(url, SUBSCRIPTIONS, sample=1, vacuum=False)
        engine = create_engine_from_url(url)
        try:
            yield engine, done.sample[0]
        finally:
            engine.dispose()


def test_every_repository_statement_uses_its_index(seeded: tuple[Engine, str]) -> None:
    engine, account = seeded
    statements = scale_data.describe([scale_data.probe(engine, account)])
    ran = {c.caller for c in statements}
    assert ran <= set(EXPECTED), "a repository method without an expected index"
    exists = {m for m in EXPECTED if hasattr(REPOSITORIES[m.split(".")[0]], m.split(".")[1])}
    assert exists <= ran, "a repository method the probe did not run"

    tables = metadata.tables.values()
    names = [i.name for t in tables for i in t.indexes] + [
        c.name for t in tables for c in t.constraints
    ]
    indexes = {name for name in names if isinstance(name, str)}
    assert set().union(*EXPECTED.values()) <= indexes, "an expected index is not in tables.py"

    wrong = []
    for captured in statements:
        plan = scale_data.explain(engine, captured)
        allowed = EXPECTED[captured.caller]
        scans = set(plan.seq_scans()) & set(scale_data.BIG)
        if scans and scans != {WHOLE.get(captured.caller)}:
            wrong.append(f"{captured.caller}: reads {scans} whole\n{plan.text}")
        used = plan.indexes | set(plan.arbiters)
        if not used <= allowed:
            wrong.append(f"{captured.caller}: uses {used - allowed}\n{plan.text}")
        reads = [a for a in plan.accesses if a.node not in ("Insert", "Update", "Delete")]
        if reads and not used and captured.caller not in WHOLE:
            wrong.append(f"{captured.caller}: no index\n{plan.text}")
    assert not wrong, "\n\n".join(wrong)


def test_a_batch_holds_its_customers_through_their_indexes(seeded: tuple[Engine, str]) -> None:
    """`SqlBatch.hold`: the customers locked, with their account links and subscriptions, in
    one statement (the inbox's hottest read of a batch)."""
    engine, account = seeded
    with engine.connect() as conn:
        customer = SqlCustomers(conn).get(account)
    seen: list[tuple[str, Any]] = []

    def note(_conn: object, _cursor: object, statement: str, parameters: Any, *_: object) -> None:
        seen.append((statement, parameters))

    with SqlBatch(engine) as tx:
        sa.event.listen(tx.connection, "before_cursor_execute", note)
        assert tx.hold([customer or "cus_missing", "cus_nobody"]) == set()
    [(statement, parameters)] = seen
    plan = scale_data.explain(engine, scale_data.Captured("SqlBatch.hold", statement, parameters))
    assert plan.indexes == {"uq_accounts_customer_ref", "ix_subscriptions_customer_ref"}, plan.text
    assert not set(plan.seq_scans()) & set(scale_data.BIG), plan.text
