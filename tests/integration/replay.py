"""What the replay tests share: the tally of a delivery run, draining, and audit counts."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field

import sqlalchemy as sa

from responseiq_billing.adapters.container import Container
from responseiq_billing.adapters.sql.tables import audit_log

DRAIN_TIMEOUT = 60.0


@dataclass
class Delivery:
    """What one shuffled delivery run sent, and what the webhook route answered."""

    sent: int = 0
    distinct: int = 0
    duplicates: int = 0
    acknowledged_as_duplicate: int = 0
    refused: list[str] = field(default_factory=list)


def wait_until_drained(container: Container, timeout: float = DRAIN_TIMEOUT) -> bool:
    """True once the inbox has nothing pending, False if `timeout` seconds pass first."""
    deadline = time.monotonic() + timeout
    admin = container.inbox_admin()
    while time.monotonic() < deadline:
        if admin.stats().pending == 0:
            return True
        time.sleep(0.05)
    return False


def audit_counts(database: str) -> Counter[str]:
    """How many times each event id was audited as applied (`gateway_event.*` entries)."""
    engine = sa.create_engine(database)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                sa.select(audit_log.c.inputs).where(audit_log.c.action.like("gateway_event.%"))
            ).scalars()
            return Counter(str(inputs["event_id"]) for inputs in rows)
    finally:
        engine.dispose()
