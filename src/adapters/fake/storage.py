"""`BILLING_DATABASE_URL=memory://`: the storage of the composition root over an in-memory store."""

from __future__ import annotations

from typing import TYPE_CHECKING

from responseiq_billing.adapters.config import MEMORY_URL
from responseiq_billing.adapters.fake.repositories import InMemoryStore

if TYPE_CHECKING:
    from responseiq_billing.adapters.read_cache import Freshness
    from responseiq_billing.application.ports import UnitOfWork


class MemoryStorage:
    """State in this process only (tests, demos); `store` shares one a test already holds."""

    url = MEMORY_URL

    def __init__(self, store: InMemoryStore | None = None) -> None:
        self.store = store if store is not None else InMemoryStore()

    def unit_of_work(self) -> UnitOfWork:
        return self.store.unit_of_work()

    def prepare(self) -> None:
        return None

    def readiness(self) -> str | None:
        return None

    def close(self) -> None:
        return None

    def freshness(self) -> Freshness | None:
        return None
