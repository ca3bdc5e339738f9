"""The one StripeClient of a process, as the composition root builds it."""

from __future__ import annotations

import logging

import stripe

# Retries of timeouts, connection errors, 409 and 5xx: the SDK resends the same idempotency
# key with exponential back-off, so a retry can never apply a change twice.
DEFAULT_NETWORK_RETRIES = 2


def build_client(
    api_key: str,
    *,
    api_base: str | None = None,
    max_network_retries: int = DEFAULT_NETWORK_RETRIES,
) -> stripe.StripeClient:
    """A client on the SDK's pinned API version; `api_base` (`STRIPE_API_BASE`) points it
    at a local double or a proxy instead of api.stripe.com."""
    # stripe-python logs every request's method and URL (ids in paths, queries) at INFO.
    logging.getLogger("stripe").setLevel(logging.WARNING)
    base = api_base.rstrip("/") if api_base else None
    return stripe.StripeClient(
        api_key,
        base_addresses={"api": base, "connect": base, "files": base} if base else None,
        max_network_retries=max_network_retries,
    )
