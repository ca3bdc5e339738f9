"""The catalog's active Paddle prices: which price id each plan and interval sells at now.

`billing paddle setup` archives a repriced plan's price and makes another, so the prices are
listed on first use, again on a miss, and again when Paddle refuses one as not found
(`PaddlePrices.priced`, the repriced-plan retry).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import TypeVar

from paddle_billing import Client
from paddle_billing.Resources.Prices.Operations import ListPrices
from paddle_billing.Resources.Shared.Operations import Pager

from responseiq_billing.adapters.paddle import translate
from responseiq_billing.domain.errors import GatewayRejected, QuoteMismatch
from responseiq_billing.domain.plans import Interval, PlanPrice

# Paddle's largest per_page for prices, transactions and subscriptions (every part lists with it).
MAX_PAGE = 200

T = TypeVar("T")


class PaddlePrices:
    """The price map of one gateway and how often it was listed; shared by all its threads."""

    def __init__(self, client: Client) -> None:
        self._client = client
        self._prices: dict[tuple[str, Interval], str] = {}
        self._created: dict[str, datetime] = {}  # Paddle's `created_at` of each current price
        self.generation = 0  # how many times the current prices have been listed
        self._lock = threading.Lock()

    def _load_prices(self) -> None:
        """The catalog's active prices, by the plan and interval setup wrote in custom_data.
        Called with the lock held."""
        with translate.translated():
            page = self._client.prices.list(
                ListPrices(pager=Pager(per_page=MAX_PAGE), statuses=[_active()])
            )
        prices: dict[tuple[str, Interval], str] = {}
        created: dict[str, datetime] = {}
        for entity in page.items:
            entry = translate.price_entry(entity)
            if entry is not None:
                prices[entry] = entity.id
                created[entity.id] = translate.utc(entity.created_at)
        self._prices, self._created = prices, created
        self.generation += 1

    def price_id(self, price: PlanPrice) -> str:
        """The catalog entry's active price: listed on first use and again on a miss (setup
        may have made it since). A price archived since it was listed is found out when Paddle
        refuses it (`priced`)."""
        entry = (price.plan_id, price.interval)
        with self._lock:
            if entry not in self._prices:
                self._load_prices()
            found = self._prices.get(entry)
        if found is None:
            raise GatewayRejected(
                f"Paddle has no active price for {price.plan_id}/{price.interval.value}; "
                "run `billing paddle setup`."
            )
        return found

    def priced(self, entry: tuple[str, Interval], send: Callable[[str], T], since: int) -> T:
        """`send(price_id)` with the entry's price as listed. When Paddle refuses that price as
        not found (`billing paddle setup` archived it since and made another), the map is a
        miss: the active prices are listed again, at most once per call (not when they have
        been listed since `since`, the call's starting `generation`), and `send` runs once
        more with the new id. Paddle takes no idempotency key; each `send` is safe to repeat
        by itself (a checkout is looked up by its command key, a change is read-compare-write)."""
        first = self._prices[entry]
        try:
            return send(first)
        except GatewayRejected as error:
            if not translate.refused_price(error):
                raise
            with self._lock:
                if self.generation == since:
                    self._load_prices()
                fresh = self._prices.get(entry)
            if fresh is None or fresh == first:
                raise
        return send(fresh)

    def check_quote(self, price_id: str, proration_at: datetime) -> None:
        """A preview made before the target's current price existed was for another price:
        refused, not charged at another amount (Stripe's adapter does the same)."""
        created = self._created.get(price_id)
        if created is not None and created > translate.utc(proration_at):
            raise QuoteMismatch(
                "The price of this plan changed after the preview; preview the change again."
            )

    def entries(self) -> Mapping[str, tuple[str, Interval]]:
        """Paddle price id -> (plan, interval) for the prices listed so far; never a request."""
        with self._lock:
            return {price_id: entry for entry, price_id in self._prices.items()}


def _active() -> object:
    from paddle_billing.Entities.Shared import Status

    return Status.Active
