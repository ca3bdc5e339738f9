"""Databases for tests: a SQLite file per test, and a throwaway PostgreSQL database on 127.0.0.1."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

POSTGRES_HOST = os.environ.get("BILLING_TEST_POSTGRES_HOST", "127.0.0.1")
POSTGRES_PORT = int(os.environ.get("BILLING_TEST_POSTGRES_PORT", "5432"))
POSTGRES_USER = os.environ.get("BILLING_TEST_POSTGRES_USER", "postgres")
REQUIRED_ENV = "BILLING_TEST_POSTGRES_REQUIRED"  # set by .ci/run: skipping is a failure there


def sqlite_url(tmp_path: Path, name: str = "billing.db") -> str:
    return f"sqlite:///{tmp_path / name}"


def postgres_url(database: str) -> str:
    return f"postgresql+psycopg://{POSTGRES_USER}@{POSTGRES_HOST}:{POSTGRES_PORT}/{database}"


def _admin() -> psycopg.Connection[tuple[object, ...]]:
    return psycopg.connect(
        host=POSTGRES_HOST,
        port=POSTGRES_PORT,
        user=POSTGRES_USER,
        dbname="postgres",
        autocommit=True,
        connect_timeout=3,
    )


def require_postgres() -> None:
    """Skip loudly when no server answers; in CI (`BILLING_TEST_POSTGRES_REQUIRED=1`) fail."""
    try:
        with _admin() as conn:
            conn.execute("SELECT 1")
    except psycopg.OperationalError as error:
        reason = (
            f"PostgreSQL TESTS NOT RUN: no server at {POSTGRES_HOST}:{POSTGRES_PORT} "
            f"({str(error).strip().splitlines()[0]}). Start it (see .ci/run) to run them."
        )
        if os.environ.get(REQUIRED_ENV):
            pytest.fail(reason + f" {REQUIRED_ENV} is set, so this is a failure.")
        pytest.skip(reason)


@contextmanager
def postgres_database(prefix: str = "billing_test") -> Iterator[str]:
    """Create a uniquely named database, yield its SQLAlchemy URL, drop it afterwards."""
    require_postgres()
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with _admin() as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield postgres_url(name)
    finally:
        with _admin() as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
