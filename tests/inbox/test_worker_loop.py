"""The worker loop: inbox passes, and the core's scheduled work at its own pace."""

from __future__ import annotations

import logging
import threading

import pytest

from responseiq_billing.adapters.config import Settings
from responseiq_billing.adapters.container import build_container
from responseiq_billing.adapters.worker import run_worker
from responseiq_billing.application.inbox import ProcessInbox


def _process() -> ProcessInbox:
    container = build_container(Settings.from_env({"BILLING_DATABASE_URL": "memory://"}))
    process: ProcessInbox = container.process_inbox()
    return process


def test_scheduled_work_runs_on_the_first_pass_and_then_at_most_every_interval() -> None:
    runs: list[int] = []

    run_worker(
        _process(),
        threading.Event(),
        idle_seconds=0,
        max_passes=5,
        due=lambda: runs.append(1),
        due_every=3600,
    )
    assert runs == [1]

    run_worker(
        _process(),
        threading.Event(),
        idle_seconds=0,
        max_passes=5,
        due=lambda: runs.append(2),
        due_every=0,
    )
    assert runs == [1, 2, 2, 2, 2, 2]


def test_failing_scheduled_work_is_logged_and_tried_again_without_stopping_the_worker(
    caplog: pytest.LogCaptureFixture,
) -> None:
    attempts: list[int] = []

    def due() -> None:
        attempts.append(1)
        raise RuntimeError("the gateway is down")

    with caplog.at_level(logging.ERROR, logger="billing.worker"):
        run_worker(
            _process(),
            threading.Event(),
            idle_seconds=0,
            max_passes=3,
            due=due,
            due_every=0,
        )
    assert len(attempts) == 3
    assert [r.getMessage() for r in caplog.records] == [
        "scheduled work failed; retrying on the next run"
    ] * 3
