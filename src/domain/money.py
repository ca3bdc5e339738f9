"""Money as integer minor units of an ISO 4217 currency; never floats."""

from __future__ import annotations

import attrs


def _check_currency(_: object, __: attrs.Attribute[str], value: str) -> None:
    if len(value) != 3 or not value.isalpha() or not value.isupper():
        raise ValueError(f"currency must be an upper-case ISO 4217 code, got {value!r}")


def _upper(value: str) -> str:
    return value.upper()


@attrs.frozen(order=False)
class Money:
    """An amount in minor units (cents) of one currency. Arithmetic refuses to mix currencies."""

    amount: int = attrs.field(validator=attrs.validators.instance_of(int))
    currency: str = attrs.field(converter=_upper, validator=_check_currency)

    @classmethod
    def zero(cls, currency: str) -> Money:
        return cls(0, currency)

    @classmethod
    def of(cls, major: int | str, currency: str) -> Money:
        """`Money.of("49.00", "USD")`: parse a decimal string of major units exactly."""
        text = str(major).strip()
        negative = text.startswith("-")
        whole, _, frac = (text[1:] if text[:1] in "+-" else text).partition(".")
        if len(frac) > 2 or not whole.isdigit() or (frac and not frac.isdigit()):
            raise ValueError(f"not an amount with at most two decimals: {major!r}")
        cents = int(whole) * 100 + int((frac or "0").ljust(2, "0"))
        return cls(-cents if negative else cents, currency)

    def _same(self, other: Money) -> None:
        if self.currency != other.currency:
            raise ValueError(f"cannot combine {self.currency} with {other.currency}")

    def __add__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.amount + other.amount, self.currency)

    def __sub__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.amount - other.amount, self.currency)

    def __neg__(self) -> Money:
        return Money(-self.amount, self.currency)

    def __lt__(self, other: Money) -> bool:
        self._same(other)
        return self.amount < other.amount

    def __le__(self, other: Money) -> bool:
        self._same(other)
        return self.amount <= other.amount

    def __gt__(self, other: Money) -> bool:
        self._same(other)
        return self.amount > other.amount

    def __ge__(self, other: Money) -> bool:
        self._same(other)
        return self.amount >= other.amount

    def __str__(self) -> str:
        sign = "-" if self.amount < 0 else ""
        major, minor = divmod(abs(self.amount), 100)
        return f"{sign}{major}.{minor:02d} {self.currency}"
