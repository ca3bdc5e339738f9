"""Units of work for webhook ingestion on PostgreSQL: one statement each, so autocommit."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from responseiq_billing.adapters.sql.repositories import SqlUnitOfWork


class IngestUnits:
    """Units of work for `ReceiveGatewayEvent`, whose unit runs one INSERT and commits.

    A pool of its own, in autocommit and without pre-ping: the INSERT is durable when it
    returns (synchronous commit), so BEGIN, COMMIT and the ping were three round trips of
    four. A connection that died since its last use fails that one delivery with 503, which
    Stripe retries (the pool is replaced on a disconnect), so no event is lost by it.
    """

    def __init__(self, engine: Engine) -> None:
        self._engine = sa.create_engine(
            engine.url, isolation_level="AUTOCOMMIT", pool_pre_ping=False, hide_parameters=True
        )

    @staticmethod
    def fit(engine: Engine) -> bool:
        return engine.dialect.name == "postgresql"

    def __call__(self) -> SqlUnitOfWork:
        return SqlUnitOfWork(self._engine)

    def dispose(self) -> None:
        self._engine.dispose()
