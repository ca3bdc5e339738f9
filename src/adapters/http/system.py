"""Probes: `/health` (alive), `/ready` (database reachable, schema current), `/metrics`."""

from __future__ import annotations

from typing import Any, Protocol

from litestar import Response, get

from responseiq_billing.adapters.http import examples, schemas
from responseiq_billing.adapters.http.deps import Dep
from responseiq_billing.adapters.http.errors import error_response
from responseiq_billing.adapters.metrics import MetricsScrapes


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
