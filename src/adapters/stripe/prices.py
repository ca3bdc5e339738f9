"""The catalog's current Stripe prices: which price id each plan and interval sells at now.

`billing stripe setup` moves a plan's lookup key to a new price when the plan is repriced, so
the ids are listed again when they are an hour old, when one is missing, and when Stripe
refuses one as inactive (`StripePrices.priced`, the repriced-plan retry).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any, TypeVar

import stripe

from responseiq_billing.adapters.stripe import translate
from responseiq_billing.application.ports import Clock
from responseiq_billing.domain.errors import GatewayRejected, QuoteMismatch
from responseiq_billing.domain.plans import Catalog, Interval, PlanPrice

# How long the catalog's current price ids are trusted before they are listed again: a run of
# `billing stripe setup` elsewhere moves a lookup key to a new price.
PRICE_MAP_MAX_AGE = timedelta(hours=1)

T = TypeVar("T")


class StripePrices:
    """The price map of one gateway and when it was last listed; shared by all its threads."""

    def __init__(self, client: stripe.StripeClient, catalog: Catalog, clock: Clock) -> None:
        self._client = client
        self._catalog = catalog
        self._clock = clock
        # The gateway reads this map as it is (its `_prices`): the views list no prices.
        self.map = translate.PriceMap(
            plans=[plan.id for plan in catalog.plans], resolve=self._retrieve_price
        )
        self._loaded_at: datetime | None = None
        # Stripe's `created` of each current price: a quote made before it was for another one.
        self._created: dict[str, int] = {}
        self.generation = 0  # how many times the current prices have been listed
        self._lock = threading.RLock()

    def load(self, *, force: bool = False) -> None:
        """The catalog's current prices by lookup key, reloaded once older than
        `PRICE_MAP_MAX_AGE` (another process may have run `billing stripe setup`)."""
        with self._lock:
            now = self._clock.now()
            loaded = self._loaded_at
            if not force and loaded is not None and now - loaded < PRICE_MAP_MAX_AGE:
                return
            keys = [translate.lookup_key(p.plan_id, p.interval) for p in self._catalog.all_prices()]
            current: dict[tuple[str, Interval], str] = {}
            created: dict[str, int] = {}
            with translate.translated():
                for start in range(0, len(keys), 10):  # Stripe takes at most 10 lookup keys
                    page = self._client.v1.prices.list(
                        {"lookup_keys": keys[start : start + 10], "active": True, "limit": 100}
                    )
                    for price in page.data:
                        parsed = translate.parse_lookup_key(price.lookup_key)
                        if parsed is not None:
                            current[parsed] = price.id
                            created[price.id] = int(price.created)
            self.map.replace_current(current)
            self._created = created
            self._loaded_at = now
            self.generation += 1

    def _retrieve_price(self, price_id: str) -> Mapping[str, Any] | None:
        """A price the map has not seen (a schedule phase names prices by id only)."""
        try:
            with translate.translated():
                return self._client.v1.prices.retrieve(price_id).to_dict()
        except GatewayRejected:
            return None

    def price_id(self, price: PlanPrice) -> str:
        """The current price id of a catalog entry, listed again once on a miss."""
        self.load()
        found = self.map.price_id(price.plan_id, price.interval)
        if found is None:
            self.load(force=True)  # a miss: setup may have added it since
            found = self.map.price_id(price.plan_id, price.interval)
        if found is None:
            raise GatewayRejected(
                f"Stripe has no active price with lookup key "
                f"{translate.lookup_key(price.plan_id, price.interval)!r}; run `billing stripe setup`."
            )
        return found

    def priced(self, first: str, send: Callable[[str], T], *, since: int, where: str) -> T:
        """`send(price_id)`: a write that names `first`, a catalog price, at the parameter
        `where`. When Stripe refuses that price as inactive or missing, the map that gave it is
        stale (`billing stripe setup` has moved its lookup key since): that is a miss. The
        current prices are listed again, at most once per call (not when they have been listed
        since `since`, the call's starting `generation`), and the write is sent once more with
        the entry's current price. `send` names the price in the write's idempotency key, so
        the retry is its own Stripe request and a retry of the whole command meets the same two.
        """
        try:
            return send(first)
        except GatewayRejected as error:
            fresh = self._replacement(first, error, since=since, where=where)
            if fresh is None:
                raise
        return send(fresh)

    def _replacement(
        self, refused: str, error: GatewayRejected, *, since: int, where: str
    ) -> str | None:
        """The current price of `refused`'s catalog entry when Stripe refused `refused` as
        inactive or missing at `where` and the entry now has another one; else None."""
        if not translate.refused_price(error, where):
            return None
        try:
            entry = self.map.entry(refused)
        except GatewayRejected:
            return None  # not a price of ours: nothing to replace it with
        with self._lock:
            if self.generation == since:
                self.load(force=True)
            fresh = self.map.price_id(*entry)
        return fresh if fresh != refused else None

    def check_quote(self, price_id: str, proration_at: datetime) -> None:
        """A quote charges what it showed or nothing: the price an upgrade would charge was made
        after the quote's instant (setup repriced the plan since the preview), so the preview's
        amount is not what Stripe would charge now; the customer previews again."""
        created = self._created.get(price_id)
        if created is not None and created > int(proration_at.timestamp()):
            raise QuoteMismatch(
                "The price of this plan changed after the preview; preview the change again."
            )
