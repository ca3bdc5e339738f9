"""The inbox worker loop: claim due events, apply them, sleep when idle, stop when told."""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable

from responseiq_billing.application.inbox import ProcessInbox

log = logging.getLogger("billing.worker")

# How often a worker looks for scheduled work (a kept downgrade due before its renewal); well
# inside `APPLY_LEAD`, so a change is switched at the gateway long before the renewal bills.
DUE_EVERY_SECONDS = 60.0


def worker_name() -> str:
    """Unique per process and run, readable in `billing inbox` (host:pid:random)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


def run_worker(
    process: ProcessInbox,
    stop: threading.Event,
    *,
    idle_seconds: float = 1.0,
    batch: int = 100,
    max_passes: int | None = None,
    due: Callable[[], object] | None = None,
    due_every: float = DUE_EVERY_SECONDS,
) -> int:
    """Run passes until `stop` is set (or `max_passes` ran). Returns how many events it applied.

    A pass that finds work is followed at once by another; an idle pass sleeps, waking early
    when `stop` is set. A failing pass is logged and retried after the idle pause: the inbox
    keeps the events, so nothing is lost by waiting. `due` (the core's scheduled work, e.g.
    `ApplyDueChanges`) runs on the first pass and then at most every `due_every` seconds.
    """
    applied = passes = 0
    due_at = time.monotonic()
    while not stop.is_set() and (max_passes is None or passes < max_passes):
        passes += 1
        if due is not None and time.monotonic() >= due_at:
            due_at = time.monotonic() + due_every
            run_due(due)
        try:
            report = process.run_once(limit=batch)
        except Exception:
            log.exception("inbox pass failed; retrying after %.1fs", idle_seconds)
            stop.wait(idle_seconds)
            continue
        applied += report.applied + report.stale
        if report.claimed:
            log.info(
                "inbox pass: claimed=%d applied=%d stale=%d failed=%d parked=%d",
                report.claimed,
                report.applied,
                report.stale,
                report.failed,
                report.parked,
            )
        else:
            stop.wait(idle_seconds)
    return applied


def run_due(due: Callable[[], object]) -> None:
    """One run of the scheduled work; a failure is logged, and the next run retries it."""
    try:
        done = due()
    except Exception:
        log.exception("scheduled work failed; retrying on the next run")
        return
    if done:
        log.info("scheduled work: %s", done)


def start_worker_thread(
    process: ProcessInbox,
    *,
    idle_seconds: float = 1.0,
    due: Callable[[], object] | None = None,
) -> tuple[threading.Thread, threading.Event]:
    """The in-process worker `billing serve` runs beside the HTTP server."""
    stop = threading.Event()
    thread = threading.Thread(
        target=run_worker,
        args=(process, stop),
        kwargs={"idle_seconds": idle_seconds, "due": due},
        name="billing-inbox-worker",
        daemon=True,
    )
    thread.start()
    return thread, stop
