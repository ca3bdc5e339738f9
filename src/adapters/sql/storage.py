"""SQLite or PostgreSQL as the composition root's storage: units of work, readiness, freshness."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from responseiq_billing.adapters.read_cache import Freshness
    from responseiq_billing.adapters.sql.ingest import IngestUnits
    from responseiq_billing.application.inbox import InboxBatchFactory
    from responseiq_billing.application.ports import UnitOfWork


class SqlStorage:
    """SQLite or PostgreSQL through `adapters.sql`; the engine is made on first use.

    `fresh=True` (the sandbox's own SQLite file) starts from an empty database on the first
    `prepare()`: the sandbox gateway keeps its state in memory, so a mirror of an earlier
    run's sandbox would describe customers and subscriptions that no longer exist.
    """

    def __init__(self, url: str, *, fresh: bool = False) -> None:
        from responseiq_billing.adapters.sql.database import (
            create_engine_from_url,
            sql_unit_of_work_factory,
        )

        self.url = url
        self.engine = create_engine_from_url(url)
        self._factory = sql_unit_of_work_factory(self.engine)
        self.read_unit_of_work = sql_unit_of_work_factory(self.engine, read_only=True)
        self._reset_pending = fresh
        self._ingest: IngestUnits | None = None

    def unit_of_work(self) -> UnitOfWork:
        return self._factory()

    def prepare(self) -> None:
        from responseiq_billing.adapters.sql.migrate import ensure_schema

        if self._reset_pending:
            self._reset_pending = False
            self.engine.dispose()
            path = self.engine.url.database
            for suffix in ("", "-wal", "-shm", "-journal"):
                if path:
                    Path(f"{path}{suffix}").unlink(missing_ok=True)
        ensure_schema(self.url)

    def readiness(self) -> str | None:
        import sqlalchemy as sa

        from responseiq_billing.adapters.sql.migrate import head_revision

        try:
            with self.engine.connect() as conn:
                conn.execute(sa.text("SELECT 1"))
                current = conn.execute(sa.text("SELECT version_num FROM alembic_version"))
                revision = current.scalar_one_or_none()
        except sa.exc.SQLAlchemyError as error:
            # The driver's message can include the URL; name the failure's class only.
            return f"database unreachable or not migrated ({type(error).__name__})"
        if revision != head_revision():
            return "database schema is not current; run `billing db upgrade`"
        return None

    def ingest_unit_of_work(self) -> UnitOfWork:
        """For `ReceiveGatewayEvent`: autocommit on a pool of its own on PostgreSQL (ADR 0011)."""
        from responseiq_billing.adapters.sql.ingest import IngestUnits

        if not IngestUnits.fit(self.engine):
            return self._factory()
        if self._ingest is None:
            self._ingest = IngestUnits(self.engine)
        return self._ingest()

    def inbox_batch(self) -> InboxBatchFactory:
        """A claimed batch of inbox events applied in one transaction (ADR 0011)."""
        from responseiq_billing.adapters.sql.batch import SqlBatch

        engine = self.engine
        return lambda: SqlBatch(engine)

    def close(self) -> None:
        self.engine.dispose()
        if self._ingest is not None:
            self._ingest.dispose()

    def freshness(self) -> Freshness | None:
        from responseiq_billing.adapters.sql.freshness import PostgresFreshness, SqliteFreshness

        url = self.engine.url
        if url.get_backend_name() == "postgresql":
            return PostgresFreshness(self.url)
        if url.database in (None, "", ":memory:"):
            return None
        return SqliteFreshness(url.database)
