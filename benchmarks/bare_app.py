"""The baseline for read benchmarks: a bare Litestar app answering a four-field JSON document."""

from __future__ import annotations

from litestar import Litestar, get


@get("/bare", sync_to_thread=False)
def bare() -> dict[str, object]:
    return {
        "plan": "growth",
        "interval": "month",
        "status": "active",
        "cancel_at_period_end": False,
    }


app = Litestar(route_handlers=[bare])
