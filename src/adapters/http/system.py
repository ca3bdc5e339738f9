"""Probes: `/health` (alive), `/ready` (database reachable, schema current), `/metrics`."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

import attrs
from litestar import Response, get

from responseiq_billing.adapters.http import examples, schemas
from responseiq_billing.adapters.http.deps import Dep
from responseiq_billing.adapters.http.errors import error_response
from responseiq_billing.application.ports import InboxBacklog

# How long one answer of `/metrics` is shared by every scrape of this process. Prometheus
# scrapes every 15 s or more; anyone else asking more often gets the held answer.
METRICS_MAX_AGE_SECONDS = 1.0


class Storage(Protocol):
    """What `/ready` asks of the storage the composition root chose."""

    def readiness(self) -> str | None:
        """None when reachable with a current schema, else what is wrong (no secrets)."""
        ...


@get(
    "/health",
    tags=["probes"],
    summary="The service is alive",
    responses=examples.responses(200, schemas.HealthOut, {"status": "ok"}),
)
async def health() -> schemas.HealthOut:
    return schemas.HealthOut(status="ok")


@get(
    "/ready",
    tags=["probes"],
    sync_to_thread=True,
    summary="The service can serve: database reachable and its schema current",
    responses=examples.responses(200, schemas.HealthOut, {"status": "ready"}),
)
def ready(
    storage: Dep[Storage],
) -> Response[Any]:
    problem = storage.readiness()
    if problem is not None:
        return error_response(503, "not_ready", problem)
    return Response(schemas.HealthOut(status="ready"))


def render_metrics(backlog: InboxBacklog) -> str:
    """Prometheus text exposition of the inbox's backlog."""
    oldest = backlog.oldest_pending_age_seconds or 0.0
    lines = [
        "# HELP billing_inbox_pending Gateway events stored but not yet applied.",
        "# TYPE billing_inbox_pending gauge",
        f"billing_inbox_pending {backlog.pending}",
        "# HELP billing_inbox_oldest_pending_age_seconds Age of the oldest unapplied event.",
        "# TYPE billing_inbox_oldest_pending_age_seconds gauge",
        f"billing_inbox_oldest_pending_age_seconds {oldest:.3f}",
        "# HELP billing_inbox_parked Events set aside after repeated failures.",
        "# TYPE billing_inbox_parked gauge",
        f"billing_inbox_parked {backlog.parked}",
    ]
    return "\n".join(lines) + "\n"


@attrs.define
class MetricsScrapes:
    """`/metrics` is unauthenticated, so what it costs must not follow how often it is asked:
    one reading of the backlog at a time per process (scrapes that arrive meanwhile wait for it
    and share it), and that answer is served for `max_age` seconds before the next reading."""

    read: Callable[[], InboxBacklog]
    max_age: float = METRICS_MAX_AGE_SECONDS
    monotonic: Callable[[], float] = time.monotonic
    _lock: threading.Lock = attrs.field(factory=threading.Lock, init=False)
    _held: tuple[float, str] | None = attrs.field(default=None, init=False)

    def text(self) -> str:
        with self._lock:
            if self._held is None or self.monotonic() - self._held[0] >= self.max_age:
                answer = render_metrics(self.read())
                self._held = (self.monotonic(), answer)
            return self._held[1]


@get(
    "/metrics",
    tags=["probes"],
    sync_to_thread=True,
    summary="Webhook inbox backlog in Prometheus text format",
    description=(
        "`billing_inbox_pending`, `billing_inbox_oldest_pending_age_seconds`, "
        "`billing_inbox_parked`: counted over the unapplied events only, and at most "
        "once a second per process (every scrape in that second gets the same answer)."
    ),
    media_type="text/plain; version=0.0.4",
)
def metrics(metrics_scrapes: Dep[MetricsScrapes]) -> str:
    return metrics_scrapes.text()
