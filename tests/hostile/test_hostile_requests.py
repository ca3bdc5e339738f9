"""Hostile requests against a real `billing serve`, on SQLite and on PostgreSQL.

Every case in `corpus.py` is sent as raw bytes. Afterwards: no answer was a 5xx, every card
number was refused with `card_data_rejected`, no honest value was, no answer echoed what was
sent, and no card number (nor a forged line) is in the server's log or in any database row.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import jwt
import pytest
import sqlalchemy as sa

from tests.hostile.corpus import CARDS, TOKEN, Case, abuse_cases, card_cases, honest_cases
from tests.hostile.rawhttp import Reply, send
from tests.serving import BILLING, billing_serve, clean_env
from tests.sql_fixtures import postgres_database, sqlite_url

ACCOUNT = "acct_hostile"
SANDBOX_SECRET = "sandbox-only-development-secret-not-for-production"
START = "2027-01-31T12:00:00+00:00"
SEPARATORS = re.compile(r"[\s\-./\u00a0]+")


def _token(claims: dict[str, object]) -> str:
    return jwt.encode(claims, SANDBOX_SECRET, algorithm="HS256")


def _soon() -> datetime:
    return datetime.now(UTC) + timedelta(hours=1)


def _corpus(token: str) -> list[Case]:
    cases = [
        *card_cases(),
        *abuse_cases(
            _token({"sub": "a" * 200, "exp": _soon()}),
            _token({"sub": "acct\x00x", "exp": _soon()}),
            _token({"sub": ACCOUNT, "exp": datetime.now(UTC) + timedelta(days=3650)}),
        ),
        *honest_cases(),
    ]
    bearer = token.encode()
    return [
        Case(
            case.name,
            case.method,
            case.target,
            tuple((name, value.replace(TOKEN.encode(), bearer)) for name, value in case.headers),
            case.body,
            case.chunks,
            case.expect,
            case.secret,
        )
        for case in cases
    ]


def _subscribe(base: str, token: str) -> None:
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}) as api:
        started = api.post("/billing/checkout", json={"plan": "growth", "interval": "month"})
        assert started.status_code == 201, started.text
        checkout = started.json()["checkout_id"]
        paid = api.post(
            f"/sandbox/checkout/{checkout}/complete", data={"outcome": "succeeded", "card": "visa"}
        )
        assert paid.status_code in (200, 303), paid.text
        assert api.get("/billing/subscription").json()["plan"] == "growth"


def _problems(case: Case, reply: Reply) -> list[str]:
    problems = []
    if reply.status == 0 or reply.status >= 500:
        problems.append(f"answered {reply.status}")
    if case.expect == "card" and (reply.status, reply.code) != (400, "card_data_rejected"):
        problems.append(f"card number not refused: {reply.status} {reply.code}")
    if case.expect == "refused" and not 400 <= reply.status < 500:
        problems.append(f"not refused: {reply.status}")
    if case.expect == "honest" and reply.code == "card_data_rejected":
        problems.append("honest input refused as card data")
    if case.secret and case.secret.encode() in reply.body:
        problems.append("the answer echoes what was sent")
    return problems


def _database_text(url: str) -> str:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            rows = []
            for table in sa.inspect(connection).get_table_names():
                rows += [
                    repr(tuple(row))
                    for row in connection.execute(sa.text(f'SELECT * FROM "{table}"'))
                ]
        return "\n".join(rows)
    finally:
        engine.dispose()


def _run(cwd: Path, url: str) -> None:
    with billing_serve(
        cwd, env={"BILLING_DATABASE_URL": url, "BILLING_SANDBOX_CLOCK_START": START}
    ) as base:
        token = subprocess.run(
            [str(BILLING), "token", ACCOUNT],
            cwd=cwd,
            env=clean_env(),
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        _subscribe(base, token)
        corpus = _corpus(token)
        assert len(corpus) >= 200
        failures = {}
        for case in corpus:
            reply = send(
                base,
                case.method,
                case.target,
                list(case.headers),
                case.body,
                chunks=list(case.chunks) if case.chunks else None,
            )
            problems = _problems(case, reply)
            if problems:
                failures[case.name] = problems
        assert not failures, "\n".join(f"{name}: {', '.join(p)}" for name, p in failures.items())
        # Nothing that was refused changed the account.
        with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}) as api:
            sub = api.get("/billing/subscription").json()
        assert (sub["plan"], sub["status"], sub["cancel_at_period_end"]) == (
            "growth",
            "active",
            False,
        )
    log = (cwd / "serve.log").read_text()
    stored = _database_text(url)
    for where, text in (("log", log), ("database", stored)):
        # Each line with the separators people type removed, so "4242 4242 …" counts too.
        squeezed = "\n".join(SEPARATORS.sub("", line) for line in text.splitlines())
        for brand, number in CARDS.items():
            assert number not in squeezed, f"the {brand} number is in the {where}"
    for forged in ("forged-line", "forged-route"):
        assert forged not in log
    assert not any(line.startswith(("INFO forged", "ERROR forged")) for line in log.splitlines())


@pytest.fixture
def cwd(tmp_path: Path) -> Iterator[Path]:
    folder = tmp_path / "serve"
    folder.mkdir()
    yield folder


def test_hostile_requests_on_sqlite(cwd: Path) -> None:
    _run(cwd, sqlite_url(cwd))


@pytest.mark.postgres
def test_hostile_requests_on_postgresql(cwd: Path) -> None:
    with postgres_database("billing_hostile") as url:
        subprocess.run(
            [str(BILLING), "db", "upgrade"],
            cwd=cwd,
            env={**clean_env(), "BILLING_DATABASE_URL": url},
            check=True,
            capture_output=True,
        )
        _run(cwd, url)
