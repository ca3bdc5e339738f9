"""How tests, drivers and benchmarks get the service: `build_container(settings)` plus overrides.

Nothing here builds a use case: the container's providers do, with what a test hands in put in
place of the container's own catalog, clock, gateway adapter or storage.
"""

from __future__ import annotations

from typing import Any

import attrs
from dependency_injector import providers

from responseiq_billing.adapters.config import MEMORY_URL, Settings
from responseiq_billing.adapters.container import Container, build_container
from responseiq_billing.application.ports import UnitOfWork, UnitOfWorkFactory
from responseiq_billing.domain.plans import Catalog

# The sandbox gateway over in-memory storage, as `billing serve` runs with these variables.
SANDBOX_ENV = {"BILLING_DATABASE_URL": MEMORY_URL}


def sandbox_settings(**changes: Any) -> Settings:
    """The settings of a sandbox deployment, with `changes` (any `Settings` field)."""
    return attrs.evolve(Settings.from_env(SANDBOX_ENV), **changes)


def container_for(
    settings: Settings | None = None,
    *,
    catalog: Catalog | None = None,
    clock: Any = None,
    gateway: Any = None,
    storage: Any = None,
) -> Container:
    """`build_container(settings)` (default: the sandbox in memory) with what is given in place
    of the container's own: `gateway` is the adapter (the container wraps it as it wraps any)."""
    container = build_container(settings if settings is not None else sandbox_settings())
    if catalog is not None:
        container.catalog.override(providers.Object(catalog))
    if clock is not None:
        container.clock.override(providers.Object(clock))
    if gateway is not None:
        container.gateway_adapter.override(providers.Object(gateway))
    if storage is not None:
        container.storage.override(providers.Object(storage))
    return container


def as_class(provider: Any, cls: type, **extra: Any) -> providers.Provider[Any]:
    """`provider` (a use case of the container) building `cls`, a test's subclass of its use
    case, with the container's own injections plus `extra`: to override the provider with."""
    return providers.Singleton(cls, *provider.args, **provider.kwargs, **extra)


@attrs.define
class GivenUnits:
    """A storage over a unit-of-work factory a test already holds (`--bdd-store`, a driver)."""

    factory: UnitOfWorkFactory
    url: str = "given://"

    def unit_of_work(self) -> UnitOfWork:
        return self.factory()

    def prepare(self) -> None:
        return None

    def readiness(self) -> str | None:
        return None

    def close(self) -> None:
        return None

    def freshness(self) -> None:
        return None  # no read cache: every read goes to the given store
