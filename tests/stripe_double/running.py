"""The double for the length of a test, which fails if the double refused any request."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from responseiq_billing.adapters.fake.clock import ControllableClock
from responseiq_billing.domain.plans import Catalog
from tests.stripe_double.server import StripeDouble


@contextmanager
def running_double(
    clock: ControllableClock, catalog: Catalog | None = None
) -> Iterator[StripeDouble]:
    """A started double (with `catalog`'s products and prices if given), stopped after the block.

    On a normal exit it asserts `violations` empty: a request the double refused is one real
    Stripe would refuse too.
    """
    double = StripeDouble(clock).start()
    try:
        if catalog is not None:
            double.seed_catalog(catalog)
        yield double
    finally:
        double.stop()
    assert double.violations == []
