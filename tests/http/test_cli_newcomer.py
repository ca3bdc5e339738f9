"""What a newcomer meets on the command line: sandbox commands that leave the server alone,
a missing database named as such, help that shows defaults."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from responseiq_billing.adapters.cli import main
from tests.serving import BILLING, billing_serve, clean_env
from tests.sql_fixtures import postgres_url, require_postgres


def _billing(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BILLING), *args], cwd=cwd, env=clean_env(), capture_output=True, text=True, timeout=60
    )


def test_sandbox_commands_never_touch_the_running_servers_database(tmp_path: Path) -> None:
    with billing_serve(tmp_path) as base:
        database = tmp_path / "billing-sandbox.db"
        inode = os.stat(database).st_ino
        token = _billing(tmp_path, "token", "acct_newcomer").stdout.strip()
        auth = {"Authorization": f"Bearer {token}"}
        started = httpx.post(
            f"{base}/billing/checkout", headers=auth, json={"plan": "growth", "interval": "month"}
        ).json()
        httpx.post(
            f"{base}/sandbox/checkout/{started['checkout_id']}/complete",
            data={"outcome": "succeeded", "card": "visa"},
        )

        stats = _billing(tmp_path, "inbox")
        assert stats.returncode == 0, stats.stderr
        for refused in (("worker", "--once"), ("reconcile", "--all")):
            result = _billing(tmp_path, *refused)
            assert result.returncode == 2
            assert "lives inside `billing serve`" in result.stderr

        assert os.stat(database).st_ino == inode, "the server's database was recreated"
        subscription = httpx.get(f"{base}/billing/subscription", headers=auth).json()
        assert (subscription["plan"], subscription["status"]) == ("growth", "active")


def test_inbox_without_a_sandbox_server_says_to_start_one(tmp_path: Path) -> None:
    result = _billing(tmp_path, "inbox")
    assert result.returncode == 2
    assert "start `billing serve` first" in result.stderr
    assert not (tmp_path / "billing-sandbox.db").exists()


@pytest.mark.postgres
def test_a_missing_postgresql_database_is_named_as_missing(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    require_postgres()
    monkeypatch.setenv("BILLING_DATABASE_URL", postgres_url("billing_no_such_database_here"))
    assert main(["db", "upgrade"]) != 0
    err = capsys.readouterr().err
    assert "does not exist" in err and "createdb" in err


def test_python_m_adapters_cli_is_the_billing_command() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "responseiq_billing.adapters.cli", "--help"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0
    assert "serve" in result.stdout and "worker" in result.stdout


def test_worker_help_shows_the_defaults(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["worker", "--help"])
    out = capsys.readouterr().out
    assert "(default: 1.0)" in out and "(default: 100)" in out
