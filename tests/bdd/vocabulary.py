"""The words of the feature files: dates, amounts, plans and cards parsed into plain values."""

from __future__ import annotations

import calendar
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, cast

import parse as base_parse  # type: ignore[import-untyped]
from pytest_bdd import parsers

# Dates in the feature files leave out the year; they are in the scenario's year.
SCENARIO_YEAR = 2026

_MONTHS = {name: number for number, name in enumerate(calendar.month_name) if name}

DATE_PATTERN = (
    r"(?:January|February|March|April|May|June|July|August|September|October|November|December)"
    r" \d{1,2}(?:, \d{4})?(?: at \d{1,2}:\d{2}(?::\d{2})?)?"
)


def _typed(pattern: str) -> Callable[[Callable[[str], Any]], Callable[[str], Any]]:
    def wrap(convert: Callable[[str], Any]) -> Callable[[str], Any]:
        return cast(Callable[[str], Any], base_parse.with_pattern(pattern)(convert))

    return wrap


@_typed(DATE_PATTERN)
def moment(text: str) -> datetime:
    """`March 16`, `March 1, 2027`, `March 16 at 10:20` (UTC; midnight unless a time is given)."""
    found = re.fullmatch(
        r"(?P<month>[A-Za-z]+) (?P<day>\d{1,2})(?:, (?P<year>\d{4}))?"
        r"(?: at (?P<h>\d{1,2}):(?P<m>\d{2})(?::(?P<s>\d{2}))?)?",
        text,
    )
    if found is None:
        raise ValueError(f"not a date: {text!r}")
    return datetime(
        int(found["year"] or SCENARIO_YEAR),
        _MONTHS[found["month"]],
        int(found["day"]),
        int(found["h"] or 0),
        int(found["m"] or 0),
        int(found["s"] or 0),
        tzinfo=UTC,
    )


@_typed(r"\$\d{1,3}(?:,\d{3})*\.\d{2}")
def cents(text: str) -> int:
    """`$1,234.56` -> 123456: amounts are written with cents, always."""
    whole, frac = text.lstrip("$").replace(",", "").split(".")
    return int(whole) * 100 + int(frac)


@_typed(r"[A-Z][a-z]+")
def plan_id(text: str) -> str:
    """Plan names as the pricing page writes them: `Growth` -> `growth`."""
    return text.lower()


@_typed(r"monthly|yearly")
def interval(text: str) -> str:
    return {"monthly": "month", "yearly": "year"}[text]


@_typed(r"Visa|Mastercard|Amex")
def card(text: str) -> str:
    """A Stripe test card by brand; the sandbox never sees a card number."""
    return text.lower()


@_typed(r"[A-Z][a-z]+")
def person(text: str) -> str:
    """The people of the scenarios; each has an account named after them."""
    return text.lower()


@_typed(r"\d{4}")
def last4(text: str) -> str:
    return text


@_typed(r"Stripe|Paddle")
def gateway(text: str) -> str:
    """A payment gateway by name, where a scenario says what differs on it."""
    return text


@_typed(r"her|his|their")
def pronoun(text: str) -> str:
    return text


TYPES: dict[str, Callable[[str], Any]] = {
    "Date": moment,
    "Amount": cents,
    "Plan": plan_id,
    "Interval": interval,
    "Card": card,
    "Name": person,
    "Pronoun": pronoun,
    "Last4": last4,
    "Gateway": gateway,
}


def words(text: str) -> parsers.parse:
    """A step pattern in the feature files' words: `{name:Name} upgrades to {plan:Plan} ...`."""
    return parsers.parse(text, extra_types=TYPES)


def one_interval_before(renewal: datetime, interval_name: str) -> datetime:
    """The start of the period that renews at `renewal` (Stripe anchors on the start day)."""
    months = 1 if interval_name == "month" else 12
    index = renewal.month - 1 - months
    year, month = renewal.year + index // 12, index % 12 + 1
    day = min(renewal.day, calendar.monthrange(year, month)[1])
    return renewal.replace(year=year, month=month, day=day)


def money(amount: int) -> str:
    """123456 -> `$1,234.56`, for messages that read like the feature files."""
    sign = "-" if amount < 0 else ""
    return f"{sign}${abs(amount) // 100:,}.{abs(amount) % 100:02d}"
