"""A PostgreSQL billing database filled fast, and the plans of the queries the service runs on it.

Used by `benchmarks/scale.py` (10,000 and 1,000,000 subscriptions) and by
`tests/integration/test_query_plans_pg.py` (tens of thousands).

`seed` writes every table of one account in one pass, through one `COPY … FROM STDIN` per table
on connections of their own (in text format, built here, never through the API), with
`session_replication_role = replica` so the foreign-key checks and the triggers (NOTIFY, the
audit log's append-only guard) do not run per row; the indexes are those of the migrations,
kept up to date row by row as in a database that grew. Each subscription gets its account,
customer, one checkout, three invoices, three audit entries and four applied inbox events;
one account in four a quote; some subscriptions are trialing, past due, cancelled, or carry a
kept downgrade or a cancellation at period end. Rows the service itself wrote (`Spliced`, read
from another database) can be put among them, each account's rows at a random account's place.

`capture` records the SQL the repositories emit, named by the repository method that ran it;
`probe` runs every repository method once; `explain` reads a statement's plan.
"""

from __future__ import annotations

import random
import re
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import attrs
import psycopg
import sqlalchemy as sa
from sqlalchemy.engine import Engine, make_url

# The columns each COPY writes, in this order (explicit: a new NOT NULL column fails loudly).
COLUMNS: dict[str, tuple[str, ...]] = {
    "accounts": ("account_id", "customer_ref", "created_at"),
    "subscriptions": (
        "id",
        "account_id",
        "subscription_ref",
        "customer_ref",
        "plan_id",
        "interval",
        "status",
        "current_period_start",
        "current_period_end",
        "cancel_at_period_end",
        "pending_plan_id",
        "pending_interval",
        "pending_effective_at",
        "payment_method_brand",
        "payment_method_last4",
        "version",
        "synced_at",
        "ended_at",
        "created_at",
        "updated_at",
        "cancels_at",
    ),
    "checkouts": ("id", "account_id", "plan_id", "interval", "status", "created_at", "closed_at"),
    "quotes": (
        "id",
        "account_id",
        "subscription_ref",
        "from_plan",
        "from_interval",
        "to_plan",
        "to_interval",
        "timing",
        "amount_due_now",
        "currency",
        "effective_at",
        "proration_at",
        "created_at",
        "expires_at",
        "redeemed_at",
    ),
    "invoices": (
        "id",
        "account_id",
        "customer_ref",
        "subscription_ref",
        "number",
        "status",
        "amount_due",
        "amount_paid",
        "currency",
        "created",
        "period_start",
        "period_end",
        "billing_reason",
        "pdf_url",
        "hosted_url",
    ),
    "audit_log": ("id", "account_id", "action", "inputs", "outcome", "at"),
    "webhook_inbox": (
        "id",
        "gateway",
        "event_id",
        "type",
        "payload",
        "received_at",
        "applied_at",
        "parked_at",
        "outcome",
        "attempts",
        "last_error",
        "next_attempt_at",
        "locked_until",
        "locked_by",
        "object_ref",
        "event_created",
    ),
}
# Tables whose id is a sequence: rows read from elsewhere get a new id here.
SERIAL = ("subscriptions", "audit_log", "webhook_inbox")
# Big tables: their plans must never read them whole.
BIG = ("accounts", "subscriptions", "invoices", "audit_log", "webhook_inbox", "checkouts", "quotes")

NOW = datetime(2026, 3, 1, 9, tzinfo=UTC)  # the seeded history ends here
_FIRST_DAY = date(2023, 12, 1)
_DAYS = [(_FIRST_DAY + timedelta(days=d)).isoformat() for d in range(1200)]
_NOW_DAY = (NOW.date() - _FIRST_DAY).days
_PLANS = (("starter", 1900), ("growth", 4900), ("business", 9900))
_N = "\\N"  # NULL in COPY's text format


def _ts(day: int, second: int) -> str:
    return f"{_DAYS[day]} {second // 3600:02d}:{second // 60 % 60:02d}:{second % 60:02d}+00"


# -- rows the service wrote elsewhere ---------------------------------------------------------


@dataclass
class Spliced:
    """Rows of a few accounts as COPY text lines, per table and account (serial ids removed)."""

    rows: dict[str, dict[str, list[str]]] = field(default_factory=dict)

    @property
    def accounts(self) -> list[str]:
        return sorted(self.rows.get("accounts", {}))

    def lines(self, table: str, account_id: str) -> list[str]:
        return self.rows.get(table, {}).get(account_id, [])


def _psycopg_url(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def dump(url: str) -> Spliced:
    """Every row of a (small) database, grouped by account; inbox events by their object's account."""
    spliced = Spliced()
    with psycopg.connect(_psycopg_url(url)) as conn:
        conn.execute("SET TimeZone = 'UTC'")
        owner: dict[str, str] = {}
        for sql in (
            "SELECT customer_ref, account_id FROM accounts",
            "SELECT subscription_ref, account_id FROM subscriptions",
            "SELECT customer_ref, account_id FROM subscriptions",
            "SELECT id, account_id FROM invoices",
            "SELECT id, account_id FROM checkouts",
        ):
            owner.update(dict(conn.execute(sql).fetchall()))
        for table, columns in COLUMNS.items():
            kept = columns[1:] if table in SERIAL else columns
            order = "id" if "id" in columns else columns[0]
            per_account: dict[str, list[str]] = {}
            with conn.cursor().copy(
                f"COPY (SELECT {', '.join(kept)} FROM {table} ORDER BY {order}) TO STDOUT"
            ) as copy:
                text = b"".join(bytes(block) for block in copy).decode()
            for line in text.splitlines():
                values = line.split("\t")
                if table == "webhook_inbox":
                    ref = values[kept.index("object_ref")]
                    account = owner.get(ref, "")
                else:
                    account = values[kept.index("account_id")]
                per_account.setdefault(account, []).append(line)
            spliced.rows[table] = per_account
    return spliced


# -- seeding ----------------------------------------------------------------------------------


@dataclass
class Seeded:
    subscriptions: int
    rows: dict[str, int]
    seconds: float  # the COPY and its commits, the sequences and the foreign-key check
    vacuum_seconds: float  # VACUUM (ANALYZE) afterwards
    sample: list[str]  # account ids picked at random among the generated ones
    spliced_accounts: list[str]

    @property
    def total_rows(self) -> int:
        return sum(self.rows.values())

    @property
    def rows_per_second(self) -> float:
        return self.total_rows / self.seconds


class _Writer:
    """One table's COPY on its own connection, fed in blocks of lines."""

    def __init__(self, stack: ExitStack, url: str, table: str) -> None:
        conn = stack.enter_context(psycopg.connect(url))
        conn.execute("SET session_replication_role = replica")  # no FK checks, no triggers
        conn.execute("SET TimeZone = 'UTC'")
        self.conn = conn
        self.copy = stack.enter_context(
            conn.cursor().copy(f"COPY {table} ({', '.join(COLUMNS[table])}) FROM STDIN")
        )
        self.lines: list[str] = []
        self.count = 0

    def add(self, line: str) -> None:
        self.lines.append(line)

    def flush(self) -> None:
        if self.lines:
            self.count += len(self.lines)
            self.copy.write("\n".join(self.lines) + "\n")
            self.lines.clear()


def seed(
    url: str,
    subscriptions: int,
    *,
    seed: int = 11,
    spliced: Spliced | None = None,
    sample: int = 0,
    vacuum: bool = True,
    log: Any = None,
) -> Seeded:
    """Fill a migrated, empty database with `subscriptions` accounts' rows, then VACUUM ANALYZE
    (or only ANALYZE: `vacuum=False`, for tests that need the statistics, not the visibility map).

    The accounts of `spliced` take the places of randomly chosen generated ones; `sample`
    generated account ids are returned, picked at random, for readers.
    """
    rng = random.Random(seed)
    pg = _psycopg_url(url)
    spliced = spliced or Spliced()
    own = spliced.accounts
    if len(own) > subscriptions:
        raise ValueError("more spliced accounts than subscriptions")
    slots = rng.sample(range(subscriptions), len(own) + sample)
    splice_at = dict(zip(slots[: len(own)], own, strict=True))
    sampled = set(slots[len(own) :])
    picked: list[str] = []
    ids = {table: 0 for table in SERIAL}
    began = time.perf_counter()
    with ExitStack() as stack:
        w = {table: _Writer(stack, pg, table) for table in COLUMNS}

        def spliced_rows(account: str) -> None:
            for table in COLUMNS:
                for line in spliced.lines(table, account):
                    if table in SERIAL:
                        ids[table] += 1
                        line = f"{ids[table]}\t{line}"
                    w[table].add(line)

        for i in range(subscriptions):
            if i in splice_at:
                spliced_rows(splice_at[i])
            else:
                account = _generated(i, rng, w, ids)
                if i in sampled:
                    picked.append(account)
            if i % 2000 == 1999:
                for writer in w.values():
                    writer.flush()
                if log is not None and i % 100_000 == 99_999:
                    log(f"  seeded {i + 1:,} accounts, {time.perf_counter() - began:.0f} s")
        if spliced.lines("webhook_inbox", ""):
            spliced_rows("")  # inbox events whose object belongs to no account
        for writer in w.values():
            writer.flush()
        rows = {table: writer.count for table, writer in w.items()}
    # Leaving the ExitStack ended each COPY and committed each connection.
    with psycopg.connect(pg, autocommit=True) as conn:
        for table in SERIAL:
            conn.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                f"(SELECT coalesce(max(id), 1) FROM {table}))"
            )
        orphans = conn.execute(
            "SELECT (SELECT count(*) FROM subscriptions s WHERE NOT EXISTS "
            "(SELECT 1 FROM accounts a WHERE a.account_id = s.account_id))"
            " + (SELECT count(*) FROM checkouts c WHERE NOT EXISTS "
            "(SELECT 1 FROM accounts a WHERE a.account_id = c.account_id))"
        ).fetchone()
        if orphans is None or orphans[0] != 0:
            raise RuntimeError(f"seeded rows break a foreign key: {orphans}")
        seconds = time.perf_counter() - began
        vacuum_began = time.perf_counter()
        conn.execute("VACUUM (ANALYZE)" if vacuum else "ANALYZE")
        vacuum_seconds = time.perf_counter() - vacuum_began
    rng.shuffle(picked)
    return Seeded(subscriptions, rows, seconds, vacuum_seconds, picked, own)


def _generated(i: int, rng: random.Random, w: Mapping[str, _Writer], ids: dict[str, int]) -> str:
    """One generated account: its rows in every table. Returns its account id."""
    bits = rng.getrandbits
    tag = f"{i:07x}"  # unique per account; the random part before it spreads keys over indexes
    account = f"acct_{bits(44):011x}{tag}"
    customer = f"cus_{bits(68):017x}{tag}"
    sub_ref = f"sub_{bits(68):017x}{tag}"
    roll = rng.random()
    plan, price = _PLANS[0 if roll < 0.4 else 1 if roll < 0.85 else 2]
    yearly = rng.random() < 0.15
    interval, length = ("year", 365) if yearly else ("month", 30)
    if yearly:
        price *= 10
    created_day = rng.randrange(30, _NOW_DAY - 1)
    second = rng.randrange(86_400)
    start_day = created_day + (_NOW_DAY - created_day) // length * length
    if start_day == _NOW_DAY:
        start_day -= length
    start_day = max(start_day, created_day)
    end_day = start_day + length
    status = rng.random()
    pending = (_N, _N, _N)
    ended = cancels = _N
    cancel_at_end = "f"
    if status < 0.07:
        status_text = "canceled"
        ended = _ts(start_day + rng.randrange(1, length), second)
    elif status < 0.09:
        status_text = "past_due"
    elif status < 0.12:
        status_text = "trialing"
    else:
        status_text = "active"
        extra = rng.random()
        if extra < 0.03 and plan != "starter":
            pending = ("starter", interval, _ts(end_day, second))
        elif extra < 0.07:
            cancel_at_end, cancels = "t", _ts(end_day, second)
    started = _ts(start_day, second)
    created = _ts(created_day, second)
    synced = _ts(start_day, (second + 5) % 86_400)
    brand, last4 = (
        ("visa", "4242") if rng.random() < 0.7 else ("mastercard", f"{bits(13):04d}"[-4:])
    )
    version = 1 + (_NOW_DAY - created_day) // length

    w["accounts"].add(f"{account}\t{customer}\t{created}")
    ids["subscriptions"] += 1
    w["subscriptions"].add(
        f"{ids['subscriptions']}\t{account}\t{sub_ref}\t{customer}\t{plan}\t{interval}\t"
        f"{status_text}\t{started}\t{_ts(end_day, second)}\t{cancel_at_end}\t"
        f"{pending[0]}\t{pending[1]}\t{pending[2]}\t{brand}\t{last4}\t{version}\t{synced}\t"
        f"{ended}\t{created}\t{synced}\t{cancels}"
    )
    w["checkouts"].add(
        f"cs_{bits(68):017x}{tag}\t{account}\t{plan}\t{interval}\tcomplete\t{created}\t{created}"
    )
    if i % 4 == 0:
        w["quotes"].add(
            f"qt_{bits(68):017x}{tag}\t{account}\t{sub_ref}\t{plan}\t{interval}\tstarter\t"
            f"{interval}\tend_of_period\t0\tUSD\t{_ts(end_day, second)}\t{started}\t{started}\t"
            f"{_ts(start_day + 1, second)}\t{_N}"
        )
    for k in range(3):  # the last three periods' invoices, newest last
        day = max(created_day, start_day - (2 - k) * length)
        invoice = f"in_{bits(68):017x}{tag}"
        reason = "subscription_create" if day == created_day else "subscription_cycle"
        page = f"https://pay.example.test/invoices/{invoice}"
        w["invoices"].add(
            f"{invoice}\t{account}\t{customer}\t{sub_ref}\tRIQ-{i:07d}-{k}\tpaid\t{price}\t"
            f"{price}\tUSD\t{_ts(day, second)}\t{_ts(day, second)}\t{_ts(day + length, second)}\t"
            f"{reason}\t{page}.pdf\t{page}"
        )
        ids["audit_log"] += 1
        event = f"evt_{bits(68):017x}{tag}{k}"
        w["audit_log"].add(
            f"{ids['audit_log']}\t{account}\tgateway_event.invoice_changed\t"
            f'{{"event_id": "{event}", "type": "invoice.paid"}}\tapplied\t'
            f"{_ts(day, min(second + 2, 86_399))}"
        )
    for k, (kind, ref) in enumerate(
        (
            ("customer.created", customer),
            ("customer.subscription.created", sub_ref),
            ("customer.subscription.updated", sub_ref),
            ("invoice.paid", f"in_{bits(68):017x}{tag}"),
        )
    ):
        day = created_day if k < 2 else start_day
        at = _ts(day, second)
        ids["webhook_inbox"] += 1
        event = f"evt_{bits(68):017x}{tag}"
        payload = (
            f'{{"account_id": "{account}", "checkout_id": null, "created": "{at}", '
            f'"customer": "{customer}", "default_payment_method_changed": false, '
            f'"id": "{event}", "kind": "{kind}", "object": "{ref}", "subscription": '
            f'{{"cancel_at_period_end": false, "current_period_end": "{_ts(end_day, second)}", '
            f'"current_period_start": "{started}", "customer": "{customer}", '
            f'"id": "{sub_ref}", "interval": "{interval}", "plan": "{plan}", '
            f'"status": "{status_text}", "payment_method": {{"brand": "{brand}", '
            f'"last4": "{last4}"}}}}, "type": "{kind}"}}'
        )
        w["webhook_inbox"].add(
            f"{ids['webhook_inbox']}\tsandbox\t{event}\t{kind}\t{payload}\t{at}\t{at}\t{_N}\t"
            f"applied\t1\t{_N}\t{at}\t{_N}\t{_N}\t{ref}\t{at}"
        )
    return account


# -- the SQL the repositories emit, and its plans ---------------------------------------------

_REPOSITORY_FILES = ("adapters/sql/repositories.py", "adapters/sql/inbox.py")
_DML = ("SELECT", "INSERT", "UPDATE", "DELETE", "WITH")


@dataclass
class Captured:
    caller: str  # the repository method that ran it, e.g. "SqlSubscriptions.for_account"
    statement: str
    parameters: Any


def _caller() -> str | None:
    """The repository method running the statement: the outermost of the repository frames
    around a private helper (`_one`, `_update_held`, `_upsert`), else the innermost."""
    frame: Any = sys._getframe(2)
    found: str | None = None
    while frame is not None:
        code = frame.f_code
        if code.co_filename.replace("\\", "/").endswith(_REPOSITORY_FILES):
            found = code.co_qualname
            if not code.co_name.startswith("_"):
                return found
        elif found is not None:
            return found
        frame = frame.f_back
    return found


class Capture:
    """Every distinct DML statement the repositories run on the engines it listens to."""

    def __init__(self) -> None:
        self.seen: dict[str, Captured] = {}
        self._targets: list[Any] = []

    def listen(self, engine: Engine) -> None:
        sa.event.listen(engine, "before_cursor_execute", self._on)
        self._targets.append(engine)

    def listen_all(self) -> None:
        """Every engine of the process, those made later included."""
        sa.event.listen(Engine, "before_cursor_execute", self._on)
        self._targets.append(Engine)

    def stop(self) -> None:
        for target in self._targets:
            sa.event.remove(target, "before_cursor_execute", self._on)
        self._targets.clear()

    def _on(self, _conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if statement in self.seen or not statement.lstrip()[:6].upper().startswith(_DML):
            return
        caller = _caller()
        if caller is not None:
            self.seen[statement] = Captured(caller, statement, parameters)

    def by_caller(self) -> list[Captured]:
        return sorted(self.seen.values(), key=lambda c: (c.caller, c.statement))


@contextmanager
def capturing(engine: Engine) -> Iterator[Capture]:
    capture = Capture()
    capture.listen(engine)
    try:
        yield capture
    finally:
        capture.stop()


@dataclass
class Access:
    node: str  # "Index Scan", "Seq Scan", "Insert", …
    relation: str | None
    index: str | None

    def __str__(self) -> str:
        where = f" on {self.relation}" if self.relation else ""
        using = f" using {self.index}" if self.index else ""
        return f"{self.node}{where}{using}"


@dataclass
class Plan:
    accesses: list[Access]
    arbiters: list[str]  # INSERT … ON CONFLICT: the unique index that decides the conflict
    milliseconds: float | None  # EXPLAIN ANALYZE only
    buffers: int | None  # shared blocks hit + read, EXPLAIN ANALYZE only
    text: str  # the plan as PostgreSQL prints it

    @property
    def indexes(self) -> set[str]:
        return {a.index for a in self.accesses if a.index}

    def seq_scans(self) -> list[str]:
        return [a.relation for a in self.accesses if a.node == "Seq Scan" and a.relation]

    def summary(self) -> str:
        reads = [str(a) for a in self.accesses if a.node not in ("Insert", "Update", "Delete")]
        writes = [str(a) for a in self.accesses if a.node in ("Insert", "Update", "Delete")]
        parts = reads + writes
        if self.arbiters:
            parts.append(f"conflict arbiter {', '.join(self.arbiters)}")
        return "; ".join(parts) or "no table read"


def _walk(node: Mapping[str, Any], accesses: list[Access], arbiters: list[str]) -> None:
    kind = node["Node Type"]
    relation, index = node.get("Relation Name"), node.get("Index Name")
    if kind == "ModifyTable":
        accesses.append(Access(node["Operation"], relation, None))
        arbiters.extend(node.get("Conflict Arbiter Indexes", []))
    elif relation or index:
        accesses.append(Access(kind, relation, index))
    for child in node.get("Plans", []):
        _walk(child, accesses, arbiters)


def explain(engine: Engine, captured: Captured, *, analyze: bool = False) -> Plan:
    """The statement's plan with its captured parameters. With `analyze` it runs, rolled back;
    a statement that cannot run again as captured (a row it needs was rolled back) is only
    planned, and has no time."""
    params = captured.parameters
    if isinstance(params, list | tuple) and params and isinstance(params[0], Mapping):
        params = params[0]  # executemany: the first row's plan
    statement = captured.statement
    with engine.connect() as conn:
        try:
            text = "\n".join(conn.exec_driver_sql(f"EXPLAIN {statement}", params).scalars())
            raw = None
            if analyze:
                try:
                    with conn.begin_nested():
                        raw = conn.exec_driver_sql(
                            f"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) {statement}", params
                        ).scalar_one()
                except sa.exc.DBAPIError:
                    raw = None
            if raw is None:
                raw = conn.exec_driver_sql(
                    f"EXPLAIN (FORMAT JSON) {statement}", params
                ).scalar_one()
        finally:
            conn.rollback()
    top = raw[0]
    accesses: list[Access] = []
    arbiters: list[str] = []
    _walk(top["Plan"], accesses, arbiters)
    ms = top.get("Execution Time")
    buffers = None
    if ms is not None:
        plan = top["Plan"]
        buffers = int(plan.get("Shared Hit Blocks", 0)) + int(plan.get("Shared Read Blocks", 0))
    return Plan(accesses, arbiters, ms, buffers, text)


# -- every repository method, once ------------------------------------------------------------


def probe(engine: Engine, account_id: str, *, now: datetime = NOW) -> Capture:
    """Run every repository method the service uses, for a seeded account, in one transaction
    that is rolled back; return what they emitted."""
    from responseiq_billing.adapters.sql.repositories import SqlUnitOfWork
    from responseiq_billing.application.ports import (
        AuditEntry,
        CheckoutRecord,
        CheckoutStatus,
        InboxEvent,
        LeaseLost,
    )
    from responseiq_billing.application.ports import InboxStatus as IS
    from responseiq_billing.domain.invoices import Invoice
    from responseiq_billing.domain.plans import Interval

    with engine.connect() as conn:
        sub_ref, customer, quote, checkout, object_ref, event_id = conn.execute(
            sa.text(
                "SELECT s.subscription_ref, s.customer_ref,"
                " (SELECT id FROM quotes ORDER BY id LIMIT 1),"
                " (SELECT id FROM checkouts c WHERE c.account_id = s.account_id LIMIT 1),"
                " (SELECT object_ref FROM webhook_inbox w WHERE w.object_ref = s.subscription_ref"
                "  LIMIT 1),"
                " (SELECT event_id FROM webhook_inbox w WHERE w.object_ref = s.subscription_ref"
                "  LIMIT 1)"
                " FROM subscriptions s WHERE s.account_id = :a LIMIT 1"
            ),
            {"a": account_id},
        ).one()
    capture = Capture()
    capture.listen(engine)
    try:
        with SqlUnitOfWork(engine) as uow:
            uow.customers.get(account_id)
            uow.customers.account_for(customer)
            sub = uow.subscriptions.for_account(account_id)
            assert sub is not None
            uow.subscriptions.by_gateway_ref(sub_ref)
            uow.subscriptions.pending_changes_due(now, limit=50)
            uow.subscriptions.save(sub)
            uow.subscriptions.add(
                attrs.evolve(
                    sub,
                    account_id="acct_probe",
                    customer_ref="cus_probe",
                    subscription_ref="sub_probe",
                )
            )
            uow.checkouts.get(checkout)
            uow.checkouts.open_for(account_id)
            record = CheckoutRecord(
                id="cs_probe",
                account_id=account_id,
                plan_id="growth",
                interval=Interval.MONTH,
                status=CheckoutStatus.OPEN,
                created_at=now,
            )
            uow.checkouts.open(record)
            uow.checkouts.close("cs_probe", CheckoutStatus.EXPIRED, now)
            held = uow.quotes.get(quote)
            if held is not None:
                uow.quotes.save(held)
            first = uow.invoices.list_for_account(account_id, limit=2, starting_after=None)
            uow.invoices.list_for_account(
                account_id, limit=2, starting_after=first.items[-1].id if first.items else "x"
            )
            if first.items:
                invoice: Invoice = first.items[0]
                uow.invoices.get(invoice.id)
                uow.invoices.upsert(account_id, invoice)
            uow.audit.append(
                AuditEntry(account_id, "probe", {"event_id": "evt_probe"}, "applied", now)
            )
            uow.audit.for_account(account_id)
            fresh = InboxEvent(
                event_id="evt_probe",
                gateway="sandbox",
                type="customer.subscription.updated",
                payload="{}",
                received_at=now,
                event_created=now,
                object_ref=object_ref,
                next_attempt_at=now,
            )
            uow.inbox.add(fresh)
            uow.inbox.add_many([attrs.evolve(fresh, event_id="evt_probe_2")])  # group commit
            lease = timedelta(seconds=60)
            uow.inbox.claim(worker="probe", now=now, lease=lease, limit=20)
            uow.inbox.newest_applied(object_ref, excluding="evt_probe")
            uow.inbox.newest_applied_many([object_ref, "evt_probe_object"])
            uow.inbox.get(event_id)
            uow.inbox.release(["evt_probe"], worker="probe")
            uow.inbox.claim(worker="probe", now=now, lease=lease, limit=20)
            uow.inbox.mark_failed("evt_probe", worker="probe", at=now, error="probe", retry_at=now)
            uow.inbox.claim(worker="probe", now=now, lease=lease, limit=20)
            uow.inbox.mark_applied_many({"evt_probe": "applied"}, worker="probe", at=now)
            with suppress(LeaseLost):  # applied already: the statement is what is wanted
                uow.inbox.mark_applied("evt_probe", worker="probe", at=now, outcome="applied")
            uow.inbox.requeue("evt_probe", at=now)
            uow.inbox.park("evt_probe", at=now, reason="probe")
            uow.inbox.list(IS.PARKED, limit=20)
            uow.inbox.list(None, limit=20)
            uow.inbox.stats(now)
            uow.inbox.backlog(now)
            uow.customers.accounts()
            uow.rollback()
    finally:
        capture.stop()
    return capture


_PARAM = re.compile(r"%\(\w+\)s(?:::(?:TIMESTAMP WITH TIME ZONE|[A-Z]+))?")  # and its cast
_LIST = re.compile(r"IN \(\?(, \?)*\)")
_WHENS = re.compile(r"(WHEN \? THEN \? )+")


def shape(statement: str) -> str:
    """The statement with its parameters as `?` and lists of them (IN, CASE) as one."""
    text = _PARAM.sub("?", statement)
    return _WHENS.sub("WHEN ? THEN ? ", _LIST.sub("IN (?, ...)", text))


def describe(captures: Sequence[Capture]) -> list[Captured]:
    """One statement per repository method and shape (an IN list of any length is one shape),
    the one with the most parameters kept; sorted by method."""
    merged: dict[tuple[str, str], Captured] = {}
    for capture in captures:
        for statement, captured in capture.seen.items():
            key = (captured.caller, shape(statement))
            held = merged.get(key)
            if held is None or statement.count("%(") > held.statement.count("%("):
                merged[key] = captured
    return sorted(merged.values(), key=lambda c: (c.caller, shape(c.statement)))
