"""The plan catalog: plans, their prices per billing interval, and the features they grant."""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping

import attrs

from responseiq_billing.domain.errors import UnknownInterval, UnknownPlan
from responseiq_billing.domain.money import Money


def _as_dict(value: Mapping[Interval, Money]) -> dict[Interval, Money]:
    return dict(value)


def _as_flags(value: Iterable[str]) -> frozenset[str]:
    return frozenset(value)


def _as_plans(value: Iterable[Plan]) -> tuple[Plan, ...]:
    return tuple(value)


class Interval(enum.Enum):
    """A billing interval. `months` orders intervals: a longer interval is a larger commitment."""

    MONTH = "month"
    YEAR = "year"

    @property
    def months(self) -> int:
        return 1 if self is Interval.MONTH else 12

    @classmethod
    def parse(cls, value: str) -> Interval:
        try:
            return cls(value)
        except ValueError:
            # The message never repeats what was sent: it may be anything a client typed.
            raise UnknownInterval("Unknown billing interval; use 'month' or 'year'.") from None


@attrs.frozen
class Features:
    """What a plan grants. Limits are counts; `None` means unlimited."""

    seats: int | None
    monthly_responses: int | None
    flags: frozenset[str] = attrs.field(factory=frozenset, converter=_as_flags)

    @classmethod
    def none(cls) -> Features:
        """What an account without a live subscription gets."""
        return cls(seats=0, monthly_responses=0)


@attrs.frozen
class PlanPrice:
    """The price of one plan at one interval."""

    plan_id: str
    interval: Interval
    amount: Money


@attrs.frozen
class Plan:
    id: str
    name: str
    prices: Mapping[Interval, Money] = attrs.field(converter=_as_dict)
    features: Features
    rank: int = 0  # position in the catalog, for display order only

    def price(self, interval: Interval) -> PlanPrice:
        try:
            return PlanPrice(self.id, interval, self.prices[interval])
        except KeyError:
            raise UnknownInterval(f"This plan is not sold per {interval.value}.") from None

    @classmethod
    def from_row(
        cls,
        id: str,
        name: str,
        currency: str,
        amounts: Mapping[str, int],
        features: Features,
        rank: int = 0,
    ) -> Plan:
        """Build a plan from plain values: `amounts` maps interval names to minor units."""
        return cls(
            id=id,
            name=name,
            prices={Interval.parse(k): Money(v, currency) for k, v in amounts.items()},
            features=features,
            rank=rank,
        )


@attrs.frozen
class Catalog:
    """The plans on sale. Lookups raise the domain's `plan.unknown` / `plan.unknown_interval`."""

    plans: tuple[Plan, ...] = attrs.field(converter=_as_plans)

    @plans.validator
    def _unique(self, _: attrs.Attribute[tuple[Plan, ...]], value: tuple[Plan, ...]) -> None:
        ids = [p.id for p in value]
        if len(ids) != len(set(ids)):
            raise ValueError("plan ids in a catalog must be unique")
        if not value:
            raise ValueError("a catalog needs at least one plan")

    def plan(self, plan_id: str) -> Plan:
        for plan in self.plans:
            if plan.id == plan_id:
                return plan
        raise UnknownPlan("There is no such plan; GET /billing/plans lists them.")

    def price(self, plan_id: str, interval: Interval | str) -> PlanPrice:
        if isinstance(interval, str):
            interval = Interval.parse(interval)
        return self.plan(plan_id).price(interval)

    def all_prices(self) -> Iterable[PlanPrice]:
        for plan in self.plans:
            for interval in Interval:
                if interval in plan.prices:
                    yield plan.price(interval)


def default_catalog() -> Catalog:
    """The sandbox catalog: Starter, Growth, Business; a year costs ten months."""
    return Catalog(
        (
            Plan.from_row(
                "starter",
                "Starter",
                "USD",
                {"month": 1900, "year": 19000},
                Features(seats=2, monthly_responses=1_000),
                rank=1,
            ),
            Plan.from_row(
                "growth",
                "Growth",
                "USD",
                {"month": 4900, "year": 49000},
                Features(seats=10, monthly_responses=10_000, flags=frozenset({"ai_replies"})),
                rank=2,
            ),
            Plan.from_row(
                "business",
                "Business",
                "USD",
                {"month": 9900, "year": 99000},
                Features(
                    seats=None,
                    monthly_responses=100_000,
                    flags=frozenset({"ai_replies", "sso", "priority_support"}),
                ),
                rank=3,
            ),
        )
    )
