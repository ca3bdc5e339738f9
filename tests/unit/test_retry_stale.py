"""A write that meets a concurrent one is retried on fresh state, a bounded number of times."""

from __future__ import annotations

import pytest

from responseiq_billing.application.use_cases import RECORD_ATTEMPTS, retry_stale
from responseiq_billing.domain.errors import StaleVersion


def test_a_stale_write_is_retried_until_it_lands() -> None:
    tries: list[int] = []

    def attempt() -> str:
        tries.append(1)
        if len(tries) < RECORD_ATTEMPTS:
            raise StaleVersion()
        return "recorded"

    assert retry_stale(attempt) == "recorded"
    assert len(tries) == RECORD_ATTEMPTS


def test_a_write_that_stays_stale_gives_up_with_the_conflict() -> None:
    tries: list[int] = []

    def attempt() -> str:
        tries.append(1)
        raise StaleVersion()

    with pytest.raises(StaleVersion):
        retry_stale(attempt)
    assert len(tries) == RECORD_ATTEMPTS


def test_other_errors_are_not_retried() -> None:
    tries: list[int] = []

    def attempt() -> str:
        tries.append(1)
        raise ValueError("not a conflict")

    with pytest.raises(ValueError):
        retry_stale(attempt)
    assert len(tries) == 1
