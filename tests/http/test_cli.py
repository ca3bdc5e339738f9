"""The `billing` command: help, development tokens, the plan list, one-line errors."""

from __future__ import annotations

import argparse
from datetime import timedelta

import jwt
import pytest

from responseiq_billing.adapters.cli import build_parser, main, parse_ttl
from tests.http.conftest import SECRET


def test_help_lists_every_command_and_the_settings(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--help"])
    assert exited.value.code == 0
    out = capsys.readouterr().out
    for word in ("serve", "db", "token", "plans", "BILLING_DATABASE_URL", "BILLING_CATALOG"):
        assert word in out


def test_token_prints_only_a_token_for_the_account(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("BILLING_AUTH_SECRET", SECRET)
    assert main(["token", "acct_cli", "--ttl", "30m"]) == 0
    token = capsys.readouterr().out.strip()
    claims = jwt.decode(token, SECRET, algorithms=["HS256"])
    assert claims["sub"] == "acct_cli"
    assert claims["exp"] - claims["iat"] == 1800


@pytest.mark.parametrize(
    ("text", "seconds"), [("90", 90), ("90s", 90), ("30m", 1800), ("12h", 43200), ("7d", 604800)]
)
def test_ttl_accepts_seconds_minutes_hours_and_days(text: str, seconds: int) -> None:
    assert parse_ttl(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["0", "-5m", "1w", "soon", ""])
def test_a_bad_ttl_is_refused(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError):
        parse_ttl(text)


def test_plans_prints_the_catalog(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plans"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].split()[:4] == ["starter", "Starter", "19.00", "USD"]
    assert "seats unlimited" in lines[3]


def test_db_on_memory_storage_is_a_one_line_configuration_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("BILLING_DATABASE_URL", "memory://")
    assert main(["db", "upgrade"]) == 2
    assert capsys.readouterr().err == (
        "billing: configuration error: BILLING_DATABASE_URL: memory:// has no schema to migrate\n"
    )


def test_serve_refuses_several_workers_with_the_in_process_sandbox(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("STRIPE_API_KEY", raising=False)
    assert main(["serve", "--workers", "2"]) == 2
    assert "--workers" in capsys.readouterr().err


def test_serve_in_stripe_mode_refuses_to_guess_its_public_url(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("STRIPE_API_KEY", "sk_test_123")
    monkeypatch.setenv("BILLING_AUTH_SECRET", SECRET)
    monkeypatch.delenv("BILLING_PUBLIC_URL", raising=False)
    assert main(["serve"]) == 2
    assert "BILLING_PUBLIC_URL" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("args", "setting"),
    [
        (["token", "acct\nforged"], "ACCOUNT_ID"),
        (["token", "a" * 65], "ACCOUNT_ID"),
        (["token", "acct_1", "--ttl", "400d"], "--ttl"),
    ],
)
def test_token_refuses_what_the_service_would_refuse(
    args: list[str], setting: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(args) == 2
    assert setting in capsys.readouterr().err


def test_every_subcommand_has_a_description() -> None:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    assert {"serve", "db", "token", "plans"} <= set(sub.choices)
    assert [name for name, p in sub.choices.items() if not p.description] == []
