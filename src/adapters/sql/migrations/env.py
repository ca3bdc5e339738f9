"""Alembic environment: runs on the connection `adapters.sql.migrate` hands over."""

from __future__ import annotations

from alembic import context

from responseiq_billing.adapters.sql.tables import metadata

config = context.config
connection = config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through adapters.sql.migrate (or `billing db upgrade`)")

context.configure(
    connection=connection,
    target_metadata=metadata,
    # SQLite alters tables by copying them; batch mode lets later migrations do that.
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
