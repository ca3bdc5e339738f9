"""A local Stripe double over real HTTP, for the Stripe adapter's tests."""

from tests.stripe_double.running import running_double
from tests.stripe_double.server import Request, StripeDouble

__all__ = ["Request", "StripeDouble", "running_double"]
