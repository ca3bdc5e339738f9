"""Alembic, configured from Python (no alembic.ini), so migrations run from an installed package."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import URL, Connection

from responseiq_billing.adapters.sql.database import create_engine_from_url, normalise_url
from responseiq_billing.adapters.sql.tables import metadata

SCRIPT_LOCATION = "responseiq_billing.adapters.sql:migrations"
UPGRADE_COMMAND = "billing db upgrade"


class SchemaOutOfDate(RuntimeError):
    """The database schema is not the one this version of the service was built for."""


def alembic_config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", SCRIPT_LOCATION)
    config.attributes["connection"] = connection
    return config


@contextmanager
def _connected(url: str | URL) -> Iterator[Connection]:
    engine = create_engine_from_url(url)
    try:
        with engine.begin() as conn:
            yield conn
    finally:
        engine.dispose()


def upgrade(url: str | URL, revision: str = "head") -> None:
    with _connected(url) as conn:
        command.upgrade(alembic_config(conn), revision)


def downgrade(url: str | URL, revision: str = "base") -> None:
    with _connected(url) as conn:
        command.downgrade(alembic_config(conn), revision)


def current_revision(url: str | URL) -> str | None:
    """The revision the database is at; None for an empty (never migrated) database."""
    with _connected(url) as conn:
        return MigrationContext.configure(conn).get_current_revision()


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:
        raise RuntimeError("the migrations package has no revisions")
    return head


def is_up_to_date(url: str | URL) -> bool:
    return current_revision(url) == head_revision()


def ensure_schema(url: str | URL) -> None:
    """Called on start: SQLite (the embedded default) migrates itself; PostgreSQL must be
    migrated by an operator, so an out-of-date schema stops the service with the command to run.
    """
    if normalise_url(url).get_backend_name() == "sqlite":
        upgrade(url)
        return
    current, head = current_revision(url), head_revision()
    if current != head:
        where = normalise_url(url).render_as_string(hide_password=True)
        raise SchemaOutOfDate(
            f"The database schema at {where} is at revision {current or 'none (empty)'}, "
            f"but this service needs {head}. Run `{UPGRADE_COMMAND}` (with the same "
            "BILLING_DATABASE_URL) and start the service again."
        )


def schema_diff(url: str | URL) -> list[Any]:
    """Differences between `tables.metadata` and the database (Alembic autogenerate); [] if none."""
    with _connected(url) as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        return list(compare_metadata(context, metadata))


def make_revision(url: str | URL, message: str) -> None:
    """For developers: write a new migration from the difference between tables.py and `url`."""
    with _connected(url) as conn:
        command.revision(alembic_config(conn), message=message, autogenerate=True)
