"""Subscriptions by account, served from memory for as long as the database says nothing changed."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Protocol

import anyio.to_thread

from responseiq_billing.domain.subscription import Subscription

log = logging.getLogger("billing.read_cache")

Invalidate = Callable[[str | None], None]  # an account id, or None: every account


class Freshness(Protocol):
    """How a process learns of writes committed by any process (its own included)."""

    def listen(self, invalidate: Invalidate) -> None:
        """Call `invalidate` for every change learnt of, on the event loop's thread."""
        ...

    async def open(self) -> None: ...

    async def barrier(self) -> bool:
        """Learn of every write committed before this call began (through `invalidate`).

        False when it cannot tell (the database is unreachable): the caller must not trust
        what it holds, and reads the database itself.
        """
        ...

    async def close(self) -> None: ...


class ReadCache:
    """The subscription of each account as last read, kept until a write may have changed it.

    Every read first passes the freshness barrier, so a write committed in any process before
    the read began is never hidden by what was held. A row read is held only if nothing was
    invalidated while it was read (the read may predate that write). Without a `freshness`
    (in-memory storage) every read goes to the store. Event-loop only: `subscription` awaits.
    """

    def __init__(
        self,
        load: Callable[[str], Subscription | None],
        freshness: Freshness | None,
        *,
        max_entries: int = 100_000,
    ) -> None:
        self._load = load
        self._freshness = freshness
        self._max = max_entries
        self._held: dict[str, Subscription | None] = {}
        self._generation = 0
        if freshness is not None:
            freshness.listen(self._invalidate)

    def _invalidate(self, account_id: str | None) -> None:
        self._generation += 1
        if account_id is None:
            self._held.clear()
        else:
            self._held.pop(account_id, None)

    async def open(self) -> None:
        if self._freshness is not None:
            await self._freshness.open()

    async def close(self) -> None:
        if self._freshness is not None:
            await self._freshness.close()

    async def subscription(self, account_id: str) -> Subscription | None:
        """The account's subscription as `SubscriptionRepository.for_account` reads it now."""
        if self._freshness is None or not await self._freshness.barrier():
            self._invalidate(None)
            return await anyio.to_thread.run_sync(self._load, account_id)
        try:
            return self._held[account_id]
        except KeyError:
            pass
        generation = self._generation
        sub = await anyio.to_thread.run_sync(self._load, account_id)
        if generation == self._generation:
            if len(self._held) >= self._max:
                del self._held[next(iter(self._held))]  # the oldest entry
            self._held[account_id] = sub
        return sub
