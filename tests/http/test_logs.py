"""What a failure writes to the log: the route template and the error's type, never a client's input."""

from __future__ import annotations

import logging
from typing import Any

import pytest
import sqlalchemy as sa
from litestar import get
from litestar.params import FromPath
from litestar.testing import TestClient

from responseiq_billing.adapters.app import create_app
from responseiq_billing.adapters.container import Container
from responseiq_billing.adapters.sql.database import create_engine_from_url

CARD = "4111111111111111"


@get("/boom/{value:str}", sync_to_thread=False)
def boom(value: FromPath[str]) -> None:
    # A library error that quotes what it was given, as SQLAlchemy and msgspec errors do.
    raise RuntimeError(f"cannot handle {value!r} from {CARD}")


class Kept(logging.Handler):
    """Keeps what the `billing` loggers emit (Litestar's logging setup replaces root handlers)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


def test_an_unexpected_error_logs_the_route_template_and_type_only(container: Container) -> None:
    app = create_app(container, extra_route_handlers=[boom])
    kept = Kept()
    with TestClient(app) as client:
        logging.getLogger("billing").addHandler(kept)
        try:
            response = client.get("/boom/forged%0Aline%20INFO%20fake?q=secret-query")
        finally:
            logging.getLogger("billing").removeHandler(kept)
    assert response.status_code == 500
    assert response.json() == {"code": "internal", "detail": "Something went wrong on our side."}
    logged = "\n".join(kept.lines)
    assert "unhandled RuntimeError on GET /boom/{value}" in logged
    for leaked in ("forged", "fake", "secret-query", CARD):
        assert leaked not in logged


def test_database_errors_never_carry_the_bound_values(tmp_path: Any) -> None:
    engine = create_engine_from_url(f"sqlite:///{tmp_path / 'x.db'}")
    with engine.begin() as connection:
        connection.exec_driver_sql("CREATE TABLE t (id TEXT PRIMARY KEY)")
        connection.execute(sa.text("INSERT INTO t VALUES (:id)"), {"id": CARD})
    with pytest.raises(sa.exc.IntegrityError) as caught, engine.begin() as connection:
        connection.execute(sa.text("INSERT INTO t VALUES (:id)"), {"id": CARD})
    assert CARD not in str(caught.value)
    engine.dispose()


def test_the_stripe_library_logs_nothing_below_warning() -> None:
    from responseiq_billing.adapters.stripe.client import build_client

    build_client("sk_test_123", api_base="http://127.0.0.1:9")
    assert logging.getLogger("stripe").getEffectiveLevel() == logging.WARNING
