"""The app in Stripe mode, pointed at the local Stripe double, with Stripe's webhook signatures."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from dependency_injector import providers

from responseiq_billing.adapters.config import Settings
from responseiq_billing.adapters.container import Container, build_container
from responseiq_billing.adapters.fake.clock import ControllableClock
from responseiq_billing.application.ports import AuditEntry, InboxEvent, UnitOfWork
from responseiq_billing.domain.plans import Catalog, default_catalog
from tests.stripe_double import StripeDouble
from tests.stripe_double.server import TEST_KEY

AUTH_SECRET = "webhook-tests-secret-long-enough-for-hs256!"
SECRET = "whsec_current_webhook_secret_0001"
OLD_SECRET = "whsec_previous_webhook_secret_0000"
PUBLIC_URL = "http://billing.test"
# Period dates in assertions stay readable; every test moves this clock, never the wall's.
START = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


def sign(body: bytes, secret: str = SECRET, at: int | None = None) -> str:
    """A `Stripe-Signature` header: HMAC-SHA256 of `t.body`, as Stripe computes it."""
    stamp = int(time.time()) if at is None else at
    mac = hmac.new(secret.encode(), f"{stamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={stamp},v1={mac}"


def body_of(event: Mapping[str, Any]) -> bytes:
    return json.dumps(event).encode("utf-8")


def stripe_env(double: StripeDouble, database_url: str) -> dict[str, str]:
    """The environment of a Stripe-mode deployment, its API base being the double."""
    return {
        "BILLING_GATEWAY": "stripe",
        "STRIPE_API_KEY": TEST_KEY,
        "STRIPE_API_BASE": double.url,
        # Rotation: the new secret first, the previous one still accepted.
        "STRIPE_WEBHOOK_SECRET": f"{SECRET},{OLD_SECRET}",
        "BILLING_AUTH_SECRET": AUTH_SECRET,
        "BILLING_PUBLIC_URL": PUBLIC_URL,
        "BILLING_DATABASE_URL": database_url,
    }


def start_double(clock: ControllableClock, catalog: Catalog | None = None) -> StripeDouble:
    double = StripeDouble(clock).start()
    double.seed_catalog(catalog or default_catalog())
    return double


def stripe_container(
    double: StripeDouble, clock: ControllableClock, database_url: str
) -> Container:
    """A container as `billing serve` builds it, its clock shared with the double's.

    One clock for both: the gateway stamps each view it reads (`as_of`) with it, and events
    carry the double's time, so the ordering rules compare instants of the same clock.
    """
    container = build_container(Settings.from_env(stripe_env(double, database_url)))
    container.clock.override(providers.Object(clock))
    return container


def inbox_rows(container: Container, limit: int = 10_000) -> list[InboxEvent]:
    uow: UnitOfWork
    with container.uow()() as uow:
        return list(uow.inbox.list(None, limit=limit))


def audit_of(container: Container, account_id: str) -> list[AuditEntry]:
    uow: UnitOfWork
    with container.uow()() as uow:
        return list(uow.audit.for_account(account_id))
