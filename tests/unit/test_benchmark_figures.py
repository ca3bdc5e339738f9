"""The table `benchmarks/run` prints: which number each target judges, and what it says."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from benchmarks.figures import record, render


@pytest.fixture
def rows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "figures.jsonl"
    monkeypatch.setenv("BENCH_ROWS", str(path))
    return path


def table(rows: Path) -> dict[str, list[str]]:
    """Each figure's row, split on runs of two spaces, by figure name."""
    lines = [json.loads(x) for x in rows.read_text().splitlines()]
    out = render(lines)
    assert set(out[1]) == {"-", " "}
    return {
        cells[1]: cells
        for cells in ([c.strip() for c in line.split("  ") if c.strip()] for line in out[2:])
    }


def test_a_figure_with_a_baseline_is_judged_by_its_ratio(rows: Path) -> None:
    record("reads", "at", 3500, "req/s", baseline=7000, target=(">=", 0.5))
    record("reads", "under", 3430, "req/s", baseline=7000, target=(">=", 0.5))
    got = table(rows)
    assert got["at"] == ["reads", "at", "3,500 req/s", "7,000 req/s", "0.50", ">= 0.5x", "yes"]
    assert got["under"][-3:] == ["0.49", ">= 0.5x", "NO"]


def test_an_absolute_target_judges_the_value_even_beside_a_baseline(rows: Path) -> None:
    target = (">=", 1500)
    record("apply", "fast baseline", 1400, "events/s", baseline=400, target=target, on_value=True)
    record("apply", "enough", 1500, "events/s", baseline=400, target=target, on_value=True)
    got = table(rows)
    assert got["fast baseline"][-3:] == ["3.50", ">= 1,500 events/s", "NO"]
    assert got["enough"][-1] == "yes"


def test_a_figure_without_a_baseline_is_judged_by_its_value(rows: Path) -> None:
    record("start", "slow", 1.51, "s", target=("<=", 1.5))
    record("start", "quick", 0.9, "s", target=("<=", 1.5))
    record("start", "memory", 94, "MiB")
    got = table(rows)
    assert got["slow"] == ["start", "slow", "1.51 s", "<= 1.50 s", "NO"]
    assert got["quick"][-1] == "yes"
    assert got["memory"] == ["start", "memory", "94 MiB"]  # no target: nothing to meet


def test_without_a_rows_file_nothing_is_recorded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("BENCH_ROWS", raising=False)
    monkeypatch.chdir(tmp_path)
    record("start", "quick", 0.9, "s", target=("<=", 1.5))
    assert list(tmp_path.iterdir()) == []
