"""Engines and unit-of-work factories from a database URL; nothing is connected at import."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import URL, Engine, make_url

from responseiq_billing.adapters.sql.repositories import READ_ONLY, SqlUnitOfWork

DATABASE_URL_ENV = "BILLING_DATABASE_URL"
DEFAULT_DATABASE_URL = "sqlite:///./billing.db"  # the embedded default, in the working directory
SQLITE_BUSY_TIMEOUT_MS = 5_000


def database_url_from_env(environ: dict[str, str] | None = None) -> str:
    """`BILLING_DATABASE_URL`, else a SQLite file in the working directory."""
    env = os.environ if environ is None else environ
    return env.get(DATABASE_URL_ENV, "").strip() or DEFAULT_DATABASE_URL


def normalise_url(url: str | URL) -> URL:
    """PostgreSQL URLs without a driver use psycopg 3, the driver this project installs."""
    parsed = make_url(url)
    if parsed.drivername in ("postgres", "postgresql"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def create_engine_from_url(url: str | URL, **kwargs: Any) -> Engine:
    """An engine for SQLite (foreign keys, WAL, busy timeout) or PostgreSQL (psycopg).

    `hide_parameters`: an error's message never carries the bound values, which come from
    clients and gateways (a careless client's card number once reached a 500's log line).
    """
    parsed = normalise_url(url)
    kwargs.setdefault("hide_parameters", True)
    if parsed.get_backend_name() == "sqlite":
        engine = sa.create_engine(parsed, **kwargs)
        _configure_sqlite(engine, in_memory=parsed.database in (None, "", ":memory:"))
        return engine
    return sa.create_engine(parsed, pool_pre_ping=True, **kwargs)


def _configure_sqlite(engine: Engine, *, in_memory: bool) -> None:
    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # pysqlite opens transactions lazily and mishandles SAVEPOINT; take control of BEGIN.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        if not in_memory:
            cursor.execute("PRAGMA journal_mode = WAL")
            cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.close()

    @sa.event.listens_for(engine, "begin")
    def _on_begin(connection: sa.Connection) -> None:
        # Take the write lock up front: a unit of work reads, then writes, and a deferred
        # transaction upgrading to a writer fails at once with SQLITE_BUSY instead of waiting.
        # A unit that only reads never upgrades: deferred, it waits for no writer and no other
        # reader (WAL), and reads one snapshot from its first SELECT.
        if connection.get_execution_options().get(READ_ONLY):
            connection.exec_driver_sql("BEGIN")
        else:
            connection.exec_driver_sql("BEGIN IMMEDIATE")


def sql_unit_of_work_factory(
    engine: Engine, *, read_only: bool = False
) -> Callable[[], SqlUnitOfWork]:
    """What the composition root hands to use cases as their `UnitOfWorkFactory`; `read_only`
    units (the read paths) refuse to commit and, on SQLite, take no write lock."""

    def make() -> SqlUnitOfWork:
        return SqlUnitOfWork(engine, read_only=read_only)

    return make
