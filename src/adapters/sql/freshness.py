"""How a serving process learns that a subscription changed: SQLite's data_version, PostgreSQL's NOTIFY."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from typing import Any

from sqlalchemy.engine import make_url

from responseiq_billing.adapters.read_cache import Invalidate

log = logging.getLogger("billing.read_cache")

CHANNEL = "billing_subscriptions"  # migration 0004's trigger notifies it with the account id
RECONNECT_SECONDS = 1.0


def _ignore(_account_id: str | None) -> None:
    return None


class SqliteFreshness:
    """`PRAGMA data_version` on a connection of its own, which never writes: its value changes
    whenever any other connection, of this process or another, commits to the file. Any change
    drops everything held (SQLite does not say what changed)."""

    def __init__(self, path: str) -> None:
        self._path = path
        self._conn: sqlite3.Connection | None = None
        self._seen: int | None = None
        self._invalidate: Invalidate = _ignore

    def listen(self, invalidate: Invalidate) -> None:
        self._invalidate = invalidate

    async def open(self) -> None:
        # No busy timeout: the event loop never waits on a lock; busy means "cannot tell".
        conn = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA busy_timeout = 0")
        self._conn = conn

    async def barrier(self) -> bool:
        if self._conn is None:
            return False
        try:
            version = self._conn.execute("PRAGMA data_version").fetchone()[0]
        except sqlite3.Error:
            return False
        if version != self._seen:
            self._seen = version
            self._invalidate(None)
        return True

    async def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


class PostgresFreshness:
    """LISTEN on a connection of its own; a barrier is one round trip on it.

    A transaction's NOTIFY reaches listeners after it commits, and a listening backend sends
    notifications that are waiting before it answers a query, so a round trip that starts after
    a write's commit returns after that write's notification was handled. Requests that arrive
    while one round trip is running share the next one (one in flight at a time), so the cost
    per read falls as load rises. If the connection is lost, nothing held is trusted: reads go
    to the database until it is back, and everything held is dropped then (notifications sent
    meanwhile are lost).
    """

    def __init__(self, url: str) -> None:
        self._conninfo = (
            make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
        )
        self._conn: Any = None
        self._invalidate: Invalidate = _ignore
        self._next: asyncio.Future[bool] | None = None
        self._runner: asyncio.Task[None] | None = None
        self._retry_at = 0.0

    def listen(self, invalidate: Invalidate) -> None:
        self._invalidate = invalidate

    async def open(self) -> None:
        await self._connect()

    async def _connect(self) -> bool:
        import psycopg

        self._retry_at = time.monotonic() + RECONNECT_SECONDS
        try:
            conn = await psycopg.AsyncConnection.connect(
                self._conninfo, autocommit=True, connect_timeout=3
            )
            conn.add_notify_handler(lambda n: self._invalidate(n.payload))
            await conn.execute(f"LISTEN {CHANNEL}")
        except psycopg.Error as error:
            log.warning("read cache: cannot listen for changes (%s)", type(error).__name__)
            return False
        self._conn = conn
        self._invalidate(None)
        return True

    async def barrier(self) -> bool:
        if self._conn is None or self._conn.closed:
            self._conn = None
            if time.monotonic() < self._retry_at or not await self._connect():
                return False
        if self._next is None:
            self._next = asyncio.get_running_loop().create_future()
            if self._runner is None or self._runner.done():
                self._runner = asyncio.create_task(self._run())
        # Shielded: a client leaving must not cancel the round trip others wait on.
        return await asyncio.shield(self._next)

    async def _run(self) -> None:
        import psycopg

        while self._next is not None:
            # Every waiter on `due` arrived before this round trip starts.
            due, self._next = self._next, None
            conn = self._conn
            try:
                if conn is None:
                    raise psycopg.OperationalError("not connected")
                await conn.execute("SELECT 1")
            except psycopg.Error as error:
                log.warning("read cache: lost the change feed (%s)", type(error).__name__)
                self._conn = None
                self._invalidate(None)
                due.set_result(False)
                if conn is not None:
                    await conn.close()
            else:
                due.set_result(True)

    async def close(self) -> None:
        if self._conn is not None:
            await self._conn.close()
            self._conn = None
