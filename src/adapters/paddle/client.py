"""The one Paddle SDK client of a process, as the composition root builds it."""

from __future__ import annotations

import logging

import attrs
from paddle_billing import Client, Environment, Options

from responseiq_billing.adapters.config import (
    PaddleEnvironment,  # the one list of Paddle's APIs (PADDLE_ENVIRONMENT)
)

# The SDK retries 429 and 5xx with back-off (urllib3 `Retry`, idempotent methods only: GET,
# and never our POST/PATCH writes, which are made retry-safe by reading first; see gateway.py).
DEFAULT_RETRIES = 2


@attrs.frozen
class _ApiBase:
    """Stands in for the SDK's `Environment` where only `base_url` is read (`PADDLE_API_BASE`)."""

    base_url: str


def build_client(
    api_key: str,
    *,
    environment: PaddleEnvironment = PaddleEnvironment.SANDBOX,
    api_base: str | None = None,
    retries: int = DEFAULT_RETRIES,
    timeout: float = 30.0,
) -> Client:
    """A client for Paddle's sandbox or production API; `api_base` points it at a local double
    or a proxy instead (the SDK joins every path onto `options.environment.base_url`)."""
    # The SDK logs each request's URL at INFO (to a shared "null_logger" unless given one): ids
    # of customers and transactions have no place in our logs, so only warnings get through.
    log = logging.getLogger("paddle_billing")
    log.setLevel(logging.WARNING)
    env: object = Environment(environment.value)
    if api_base:
        env = _ApiBase(api_base.rstrip("/"))
    options = Options(environment=env)
    return Client(api_key, options=options, retry_count=retries, timeout=timeout, logger=log)
