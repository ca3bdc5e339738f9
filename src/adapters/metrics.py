"""What `GET /metrics` answers: the inbox's backlog in Prometheus text, read at a bounded rate.

Free of Litestar, so the composition root (which the worker and the CLI build too) can hold
one `MetricsScrapes` per process without importing the web framework.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import attrs

from responseiq_billing.application.ports import InboxBacklog

# How long one answer of `/metrics` is shared by every scrape of this process. Prometheus
# scrapes every 15 s or more; anyone else asking more often gets the held answer.
METRICS_MAX_AGE_SECONDS = 1.0


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
