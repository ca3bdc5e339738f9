"""Stripe's idempotency keys, for the sandbox gateway: the first answer for a key is replayed.

A key remembers the request it was first used with (its fingerprint: the call's name and its
parameters) and the answer given: a result, or a payment error. The same key with the same
request gets the same answer again, with no second effect; with another request it is refused.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from typing import TypeVar

import attrs

from responseiq_billing.domain.errors import (
    BillingError,
    GatewayRejected,
    PaymentActionRequired,
    PaymentDeclined,
)

T = TypeVar("T")


@attrs.frozen
class Stored:
    """The first answer given for a key: a result, or the payment error it raised."""

    fingerprint: str
    result: object
    error: BillingError | None


def fingerprint(name: str, params: Mapping[str, object]) -> str:
    """The request a key is used with: the call's name and its parameters, in a fixed order."""
    return f"{name}:{sorted((k, repr(v)) for k, v in params.items())}"


class IdempotencyKeys:
    """Every key seen so far, with its answer. Unlocked: the gateway calls it under its lock."""

    def __init__(self) -> None:
        self._stored: dict[str, Stored] = {}

    def call(self, name: str, key: str, params: Mapping[str, object], action: Callable[[], T]) -> T:
        """`action`'s answer the first time `key` is used; the same answer after that.

        Declines and payments waiting for the bank are answers too (Stripe stores the error
        response), so they are replayed; other errors store nothing, and the key may be retried.
        """
        request = fingerprint(name, params)
        stored = self._stored.get(key)
        if stored is not None:
            if stored.fingerprint != request:
                raise GatewayRejected(
                    "This idempotency key was already used with other parameters."
                )
            if stored.error is not None:
                raise copy.copy(stored.error)  # the same answer, fields included
            return stored.result  # type: ignore[return-value]
        try:
            result = action()
        except (PaymentDeclined, PaymentActionRequired) as error:
            self._stored[key] = Stored(request, None, error)
            raise
        if result is not None:
            # A call that found nothing to do yet (a setup not completed) may be retried.
            self._stored[key] = Stored(request, result, None)
        return result
