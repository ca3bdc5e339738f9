"""`create_app(container)`: the Litestar application, built from a container on demand."""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Sequence
from typing import Any

from dependency_injector import providers
from jinja2 import BaseLoader, ChoiceLoader
from litestar import Litestar, Router
from litestar.di import Provide
from litestar.openapi import OpenAPIConfig
from litestar.openapi.spec import Components, SecurityScheme
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.template.config import TemplateConfig
from litestar.types import ControllerRouterHandler

from responseiq_billing.adapters.config import GatewayKind, Settings
from responseiq_billing.adapters.container import (
    Container,
    build_container,
    sandbox_gateway,
    start,
)
from responseiq_billing.adapters.http.auth import account_dependency
from responseiq_billing.adapters.http.billing import BillingController, Reads
from responseiq_billing.adapters.http.deps import Dep
from responseiq_billing.adapters.http.docs import swagger_ui, swagger_ui_assets
from responseiq_billing.adapters.http.errors import EXCEPTION_HANDLERS
from responseiq_billing.adapters.http.guard import CardDataGuard, RequestLog
from responseiq_billing.adapters.http.logs import logging_config
from responseiq_billing.adapters.http.page.routes import billing_page_router, template_config
from responseiq_billing.adapters.http.system import health, metrics, ready

APPLICATION = "responseiq_billing.application."
API_VERSION = "1.0.0"
WEBHOOK_BODY_LIMIT = 1024 * 1024


def _from(provider: providers.Provider[Any]) -> Callable[[], Any]:
    # Litestar inspects a dependency's signature; a provider's is (*args, **kwargs).
    def dependency() -> Any:
        return provider()

    return dependency


def _provide(provider: providers.Provider[Any]) -> Provide:
    return Provide(_from(provider), sync_to_thread=False, use_cache=True)


def dependency_name(cls: type) -> str:
    """The parameter a handler names a use case by: its class's name in snake case."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", cls.__name__).lower()


def _use_cases_by_type(container: Container) -> dict[str, Provide]:
    """Every application class the container provides, under `dependency_name` of its class:
    a handler that asks for `start_checkout: Dep[StartCheckout]` gets the container's one
    StartCheckout, and a reader follows the type from the route to the use case. A class
    that two providers share (each gateway's `WebhookDeliveries`) is asked for by name."""
    held: dict[type, list[providers.Provider[Any]]] = {}
    for provider in container.providers.values():
        if isinstance(provider, providers.Singleton | providers.Factory):
            cls = provider.provides
            if isinstance(cls, type) and cls.__module__.startswith(APPLICATION):
                held.setdefault(cls, []).append(provider)
    return {dependency_name(cls): _provide(one) for cls, (one, *more) in held.items() if not more}


def _reads(container: Container) -> Callable[[str], Reads]:
    held: list[Reads] = []

    # Asks for `account_id`: resolved after authentication, never without it.
    def reads(account_id: Dep[str]) -> Reads:
        if not held:
            held.append(
                Reads(
                    cache=container.read_cache(),
                    list_plans=container.list_plans(),
                    get_subscription=container.get_subscription(),
                    get_entitlements=container.get_entitlements(),
                )
            )
        return held[0]

    return reads


def _template_config(more: Sequence[BaseLoader]) -> TemplateConfig[JinjaTemplateEngine]:
    """The app's one template config: the billing page's Jinja environment (autoescaped, a
    missing variable an error), loading from its folder, then from `more` (the sandbox pages'
    folder when the sandbox gateway is mounted). Names say whose they are: billing/, sandbox/."""
    config = template_config()
    if not more:
        return config
    billing = config.engine_instance.engine
    assert billing.loader is not None
    environment = billing.overlay(loader=ChoiceLoader([billing.loader, *more]))
    return TemplateConfig(instance=JinjaTemplateEngine.from_environment(environment))


def create_app(
    container: Container,
    *,
    extra_route_handlers: Sequence[ControllerRouterHandler] = (),
    debug: bool = False,
) -> Litestar:
    """The app for `container`. Adapters are built by the container on first use.

    Other route handlers (the Stripe webhook, admin routes) join through `extra_route_handlers`
    or `container.extra_route_handlers`; they may ask for any use case by type (`dependency_name`).
    """
    settings: Settings = container.settings()
    dependencies = _use_cases_by_type(container)
    dependencies.update(
        settings=_provide(container.settings),
        clock=_provide(container.clock),
        catalog=_provide(container.catalog),
        storage=_provide(container.storage),
        metrics_scrapes=_provide(container.metrics_scrapes),
        stripe_deliveries=_provide(container.stripe_deliveries),
        paddle_deliveries=_provide(container.paddle_deliveries),
    )
    billing = Router(
        path="/",
        route_handlers=[BillingController],
        dependencies={
            "account_id": Provide(
                account_dependency(
                    settings.auth_secret,
                    audience=settings.auth_audience,
                    issuer=settings.auth_issuer,
                ),
                sync_to_thread=False,
            ),
            "reads": Provide(_reads(container), sync_to_thread=False),
        },
    )
    handlers: list[ControllerRouterHandler] = [billing, health, ready, metrics, swagger_ui_assets()]
    handlers.append(billing_page_router(settings))  # Settings -> Billing, for people
    fake = sandbox_gateway(container)
    templates: list[BaseLoader] = []  # beside the billing page's
    if fake is not None:
        from responseiq_billing.adapters.fake.controls import sandbox_controls_router
        from responseiq_billing.adapters.fake.pages import sandbox_router, sandbox_templates

        handlers.append(sandbox_router(fake))
        handlers.append(sandbox_controls_router(fake))
        templates.append(sandbox_templates())
    elif settings.gateway is GatewayKind.PADDLE:
        from responseiq_billing.adapters.paddle.route import paddle_webhook

        handlers.append(paddle_webhook)
    else:
        from responseiq_billing.adapters.stripe.route import stripe_webhook

        handlers.append(stripe_webhook)
    handlers.extend(container.extra_route_handlers())
    handlers.extend(extra_route_handlers)

    async def on_startup() -> None:
        start(container)
        # On the serving loop: PostgreSQL's change feed is an asyncio connection.
        await container.read_cache().open()

    async def on_shutdown() -> None:
        await container.read_cache().close()
        container.storage().close()

    return Litestar(
        route_handlers=handlers,
        dependencies=dependencies,
        exception_handlers=EXCEPTION_HANDLERS,
        middleware=[RequestLog(), CardDataGuard()],
        logging_config=logging_config(),
        # Litestar's own limit (default 10 MB) is the only one on the webhook route, which the
        # card guard skips: Stripe events are a few KB, and well under 1 MiB even with the
        # biggest expanded objects. Guarded routes are held to GUARDED_BODY_LIMIT while streaming.
        request_max_body_size=WEBHOOK_BODY_LIMIT,
        on_startup=[on_startup],
        on_shutdown=[on_shutdown],
        template_config=_template_config(templates),
        openapi_config=OpenAPIConfig(
            title="ResponseIQ Billing",
            version=API_VERSION,
            description=(
                "Subscriptions, plan changes, the customer portal and invoices for the signed-in "
                "account. Card details never reach this API: they go from the browser to the "
                "payment gateway."
            ),
            path="/schema",
            render_plugins=[swagger_ui()],
            components=Components(
                security_schemes={
                    "BearerToken": SecurityScheme(
                        type="http",
                        scheme="bearer",
                        bearer_format="JWT",
                        description="HS256 JWT signed by the host application; `sub` is the account id.",
                    )
                }
            ),
        ),
        debug=debug,
    )


def app_from_env() -> Litestar:
    """The app for this process's environment (uvicorn's factory in `billing serve`)."""
    return create_app(build_container(Settings.from_env(os.environ)))
