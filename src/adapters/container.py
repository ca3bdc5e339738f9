"""The composition root: the one place that imports every adapter and wires the use cases."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from dependency_injector import containers, providers

from responseiq_billing.adapters.config import (
    MEMORY_URL,
    GatewayKind,
    PaddleEnvironment,
    Settings,
    load_catalog,
)
from responseiq_billing.adapters.fake.clock import ControllableClock, SystemClock
from responseiq_billing.adapters.fake.events import deliver_sandbox_events
from responseiq_billing.adapters.fake.storage import MemoryStorage
from responseiq_billing.adapters.metrics import MetricsScrapes
from responseiq_billing.adapters.read_cache import Freshness, ReadCache
from responseiq_billing.adapters.sql.storage import SqlStorage
from responseiq_billing.adapters.worker import worker_name
from responseiq_billing.application import use_cases
from responseiq_billing.application.inbox import (
    GROUP_LIMIT,
    InboxAdmin,
    InboxBatchFactory,
    ProcessInbox,
    ReceiveGatewayEvent,
    WebhookDeliveries,
)
from responseiq_billing.application.ports import (
    Clock,
    EventDecoder,
    PaymentGateway,
    UnitOfWork,
)
from responseiq_billing.application.renewal_changes import ApplyDueChanges
from responseiq_billing.application.scheduled_changes import core_keeps_changes

if TYPE_CHECKING:
    from responseiq_billing.adapters.fake.gateway import FakeGateway
    from responseiq_billing.domain.plans import Catalog

# The sandbox keeps its own SQLite file, emptied on start (see `SqlStorage`); never billing.db.
SANDBOX_DATABASE_URL = "sqlite:///./billing-sandbox.db"


# -- storage ----------------------------------------------------------------------------------


class Storage(Protocol):
    """Where state lives; the HTTP `/ready` probe asks it whether it can serve."""

    url: str

    def unit_of_work(self) -> UnitOfWork: ...

    def prepare(self) -> None:
        """Make the storage ready on start-up, or raise with the step an operator must take."""
        ...

    def readiness(self) -> str | None:
        """None when reachable with a current schema, else what is wrong (no secrets)."""
        ...

    def close(self) -> None: ...

    def freshness(self) -> Freshness | None:
        """How a serving process learns of writes committed by any process; None: it cannot."""
        ...


def _ingest_uow(storage: Storage) -> Callable[[], UnitOfWork]:
    """Webhook ingestion's units of work: autocommit on PostgreSQL (`SqlStorage`)."""
    if isinstance(storage, SqlStorage):
        return storage.ingest_unit_of_work
    return storage.unit_of_work


def _inbox_batch(storage: Storage) -> InboxBatchFactory | None:
    """SQL storage applies a claimed batch of events in one transaction (ADR 0011)."""
    return storage.inbox_batch() if isinstance(storage, SqlStorage) else None


def _storage(url: str | None, sandbox: bool = False) -> Storage:
    if url == MEMORY_URL:
        return MemoryStorage()
    if url is None and sandbox:
        return SqlStorage(SANDBOX_DATABASE_URL, fresh=True)
    from responseiq_billing.adapters.sql.database import database_url_from_env

    return SqlStorage(url or database_url_from_env({}))


def _read_cache(storage: Storage) -> ReadCache:
    # SQL reads that miss the cache take no write lock (SQLite: a deferred BEGIN).
    units = storage.read_unit_of_work if isinstance(storage, SqlStorage) else storage.unit_of_work

    def load(account_id: str) -> Any:
        with units() as uow:
            return uow.subscriptions.for_account(account_id)

    return ReadCache(load, storage.freshness())


# -- gateways -----------------------------------------------------------------------------------


def _sandbox_gateway(catalog: Catalog, clock: ControllableClock, public_url: str) -> FakeGateway:
    from responseiq_billing.adapters.fake.gateway import FakeGateway

    return FakeGateway(catalog, clock, public_url=public_url)


def _stripe_gateway(
    api_key: str,
    api_base: str | None,
    portal_configuration: str | None,
    catalog: Catalog,
    clock: Clock,
) -> PaymentGateway:
    # Imported here so the service runs in sandbox mode without the Stripe adapter loaded.
    from responseiq_billing.adapters.stripe.client import build_client
    from responseiq_billing.adapters.stripe.gateway import StripeGateway, StripeOptions

    client = build_client(api_key, api_base=api_base)
    options = StripeOptions(portal_configuration=portal_configuration)
    gateway: PaymentGateway = StripeGateway(client, catalog, clock, options)
    return gateway


def _paddle_gateway(
    api_key: str,
    environment: str,
    api_base: str | None,
    catalog: Catalog,
    clock: Clock,
) -> PaymentGateway:
    # Imported here so the other modes run without the Paddle SDK loaded.
    from responseiq_billing.adapters.paddle.client import build_client
    from responseiq_billing.adapters.paddle.gateway import PaddleGateway

    client = build_client(api_key, environment=PaddleEnvironment(environment), api_base=api_base)
    gateway: PaymentGateway = PaddleGateway(client, catalog, clock)
    return gateway


def _decoders(kind: str, gateway: PaymentGateway) -> dict[str, EventDecoder]:
    from responseiq_billing.adapters.fake.codec import SandboxEventDecoder

    decoders: dict[str, EventDecoder] = {"sandbox": SandboxEventDecoder()}
    if kind == GatewayKind.STRIPE.value:
        from responseiq_billing.adapters.stripe.decoder import StripeEventDecoder

        decoders["stripe"] = StripeEventDecoder(gateway)
    if kind == GatewayKind.PADDLE.value:
        from responseiq_billing.adapters.paddle.gateway import PaddleGateway
        from responseiq_billing.adapters.paddle.webhooks import PaddleEventDecoder

        assert isinstance(gateway, PaddleGateway)
        decoders["paddle"] = PaddleEventDecoder(gateway)
    return decoders


def _webhook_verifier(secrets: tuple[str, ...]) -> Any:
    from responseiq_billing.adapters.stripe.webhooks import StripeWebhookVerifier

    return StripeWebhookVerifier(secrets) if secrets else None


def _paddle_webhook_verifier(secrets: tuple[str, ...]) -> Any:
    from responseiq_billing.adapters.paddle.webhooks import PaddleWebhookVerifier

    return PaddleWebhookVerifier(secrets) if secrets else None


# -- the container ------------------------------------------------------------------------------


class Container(containers.DeclarativeContainer):
    """Built by `build_container(settings)`; nothing here runs until a provider is called."""

    config = providers.Configuration(strict=True)
    settings = providers.Dependency(instance_of=Settings)

    catalog = providers.Singleton(load_catalog, config.catalog_path)
    clock = providers.Selector(
        config.gateway,
        sandbox=providers.Singleton(ControllableClock, config.sandbox_clock_start),
        stripe=providers.Singleton(SystemClock),
        paddle=providers.Singleton(SystemClock),
    )
    # The gateway's adapter, as configured...
    gateway_adapter = providers.Selector(
        config.gateway,
        sandbox=providers.Singleton(
            _sandbox_gateway, catalog=catalog, clock=clock, public_url=config.public_url
        ),
        stripe=providers.Singleton(
            _stripe_gateway,
            api_key=config.stripe_api_key,
            api_base=config.stripe_api_base,
            portal_configuration=config.stripe_portal_configuration,
            catalog=catalog,
            clock=clock,
        ),
        paddle=providers.Singleton(
            _paddle_gateway,
            api_key=config.paddle_api_key,
            environment=config.paddle_environment,
            api_base=config.paddle_api_base,
            catalog=catalog,
            clock=clock,
        ),
    )
    storage = providers.Singleton(_storage, config.database_url, config.sandbox)
    uow = storage.provided.unit_of_work
    # ...and the port the use cases get: for a gateway that cannot schedule a downgrade
    # (Paddle), its views carry the change the core keeps (`CoreKeptChanges`, ADR 0012).
    gateway = providers.Singleton(core_keeps_changes, gateway_adapter, uow)
    read_cache = providers.Singleton(_read_cache, storage)

    list_plans = providers.Singleton(use_cases.ListPlans, catalog=catalog)
    get_subscription = providers.Singleton(
        use_cases.GetSubscription, uow=uow, clock=clock, catalog=catalog
    )
    get_entitlements = providers.Singleton(
        use_cases.GetEntitlements, uow=uow, clock=clock, catalog=catalog
    )
    start_checkout = providers.Singleton(
        use_cases.StartCheckout, uow=uow, gateway=gateway, clock=clock, catalog=catalog
    )
    complete_checkout = providers.Singleton(
        use_cases.CompleteCheckout, uow=uow, gateway=gateway, clock=clock
    )
    open_portal = providers.Singleton(use_cases.OpenPortal, uow=uow, gateway=gateway, clock=clock)
    preview_plan_change = providers.Singleton(
        use_cases.PreviewPlanChange, uow=uow, gateway=gateway, clock=clock, catalog=catalog
    )
    change_plan = providers.Singleton(
        use_cases.ChangePlan, uow=uow, gateway=gateway, clock=clock, catalog=catalog
    )
    # The catalog: a change the core keeps is withdrawn inside the worker's window by putting
    # the current plan's price back at the gateway.
    cancel_pending_change = providers.Singleton(
        use_cases.CancelPendingChange, uow=uow, gateway=gateway, clock=clock, catalog=catalog
    )
    cancel_subscription = providers.Singleton(
        use_cases.CancelSubscription, uow=uow, gateway=gateway, clock=clock
    )
    resume_subscription = providers.Singleton(
        use_cases.ResumeSubscription, uow=uow, gateway=gateway, clock=clock
    )
    start_payment_method_update = providers.Singleton(
        use_cases.StartPaymentMethodUpdate, uow=uow, gateway=gateway, clock=clock
    )
    complete_payment_method_update = providers.Singleton(
        use_cases.CompletePaymentMethodUpdate, uow=uow, gateway=gateway, clock=clock
    )
    list_invoices = providers.Singleton(use_cases.ListInvoices, uow=uow, gateway=gateway)
    get_invoice_pdf = providers.Singleton(use_cases.GetInvoicePdf, uow=uow, gateway=gateway)
    apply_gateway_event = providers.Singleton(
        use_cases.ApplyGatewayEvent, uow=uow, gateway=gateway, clock=clock
    )

    reconcile = providers.Singleton(use_cases.Reconcile, uow=uow, gateway=gateway, clock=clock)
    # The worker's periodic step: downgrades the core keeps (a CORE-scheduling gateway, Paddle)
    # are switched at the gateway shortly before their renewal. A no-op for other gateways.
    # Each worker loop gets its own, as it gets its own `process_inbox`.
    apply_due_changes = providers.Factory(
        ApplyDueChanges, uow=uow, gateway=gateway, clock=clock, catalog=catalog
    )

    # -- the webhook inbox
    # Deliveries stored by one write at most (group commit); more wait for the next one.
    inbox_group_limit = providers.Object(GROUP_LIMIT)
    receive_gateway_event = providers.Singleton(
        ReceiveGatewayEvent,
        uow=providers.Callable(_ingest_uow, storage),
        clock=clock,
        group_limit=inbox_group_limit,
    )
    event_decoders = providers.Singleton(_decoders, config.gateway, gateway_adapter)
    process_inbox = providers.Factory(
        ProcessInbox,
        uow=uow,
        gateway=gateway,
        clock=clock,
        decoders=event_decoders,
        apply=apply_gateway_event,
        worker=providers.Callable(worker_name),
        batch=providers.Singleton(_inbox_batch, storage),
    )
    inbox_admin = providers.Singleton(InboxAdmin, uow=uow, clock=clock)
    metrics_scrapes = providers.Singleton(MetricsScrapes, read=inbox_admin.provided.backlog)
    webhook_verifier = providers.Singleton(_webhook_verifier, config.stripe_webhook_secrets)
    stripe_deliveries = providers.Singleton(
        WebhookDeliveries, verifier=webhook_verifier, receive=receive_gateway_event
    )
    paddle_webhook_verifier = providers.Singleton(
        _paddle_webhook_verifier, config.paddle_webhook_secrets
    )
    paddle_deliveries = providers.Singleton(
        WebhookDeliveries, verifier=paddle_webhook_verifier, receive=receive_gateway_event
    )

    sandbox_events = providers.Singleton(
        deliver_sandbox_events,
        gateway=gateway_adapter,
        receive=receive_gateway_event,
        process=process_inbox,
    )

    # Route handlers other modules add to the app (the Stripe webhook, the inbox admin):
    # `container.extra_route_handlers.add_args(handler)` before `create_app(container)`.
    extra_route_handlers = providers.List()


def build_container(settings: Settings) -> Container:
    """A container for `settings`. Only configuration is set; adapters are built on first use."""
    container = Container(settings=providers.Object(settings))
    config: dict[str, Any] = {
        "gateway": settings.gateway.value,
        "database_url": settings.database_url,
        "public_url": settings.public_url,
        "stripe_api_key": settings.stripe_api_key,
        "catalog_path": settings.catalog_path,
        "sandbox": settings.is_sandbox,
        "stripe_api_base": settings.stripe_api_base,
        "stripe_portal_configuration": settings.stripe_portal_configuration,
        "stripe_webhook_secrets": settings.stripe_webhook_secrets,
        "paddle_api_key": settings.paddle_api_key,
        "paddle_webhook_secrets": settings.paddle_webhook_secrets,
        "paddle_environment": settings.paddle_environment.value,
        "paddle_api_base": settings.paddle_api_base,
        "sandbox_clock_start": settings.sandbox_clock_start,
    }
    container.config.from_dict(config)
    return container


def start(container: Container) -> None:
    """Ready the adapters for serving: storage prepared, sandbox events connected."""
    container.storage().prepare()
    settings: Settings = container.settings()
    if settings.gateway is GatewayKind.SANDBOX:
        container.sandbox_events()


def sandbox_gateway(container: Container) -> FakeGateway | None:
    """The sandbox fake when the gateway is the sandbox, else None (no /sandbox routes)."""
    settings: Settings = container.settings()
    if settings.gateway is not GatewayKind.SANDBOX:
        return None
    gateway: FakeGateway = container.gateway_adapter()
    return gateway
