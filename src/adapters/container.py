"""The composition root: the one place that imports every adapter and wires the use cases."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
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
from responseiq_billing.adapters.fake.repositories import InMemoryStore
from responseiq_billing.adapters.read_cache import Freshness, ReadCache
from responseiq_billing.adapters.worker import worker_name
from responseiq_billing.application import use_cases
from responseiq_billing.application.inbox import (
    InboxAdmin,
    InboxBatchFactory,
    ProcessInbox,
    ReceiveGatewayEvent,
    WebhookDeliveries,
)
from responseiq_billing.application.ports import (
    Clock,
    EventDecoder,
    GatewayEvent,
    PaymentGateway,
    UnitOfWork,
)
from responseiq_billing.application.renewal_changes import ApplyDueChanges
from responseiq_billing.application.scheduled_changes import core_keeps_changes

if TYPE_CHECKING:
    from responseiq_billing.adapters.fake.gateway import FakeGateway
    from responseiq_billing.adapters.sql.ingest import IngestUnits
    from responseiq_billing.domain.plans import Catalog

log = logging.getLogger("billing.container")

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


class MemoryStorage:
    """`BILLING_DATABASE_URL=memory://`: state in this process only (tests, demos)."""

    url = MEMORY_URL

    def __init__(self) -> None:
        self.store = InMemoryStore()

    def unit_of_work(self) -> UnitOfWork:
        return self.store.unit_of_work()

    def prepare(self) -> None:
        return None

    def readiness(self) -> str | None:
        return None

    def close(self) -> None:
        return None

    def freshness(self) -> Freshness | None:
        return None


class SqlStorage:
    """SQLite or PostgreSQL through `adapters.sql`; the engine is made on first use.

    `fresh=True` (the sandbox's own SQLite file) starts from an empty database on the first
    `prepare()`: the sandbox gateway keeps its state in memory, so a mirror of an earlier
    run's sandbox would describe customers and subscriptions that no longer exist.
    """

    def __init__(self, url: str, *, fresh: bool = False) -> None:
        from responseiq_billing.adapters.sql.database import (
            create_engine_from_url,
            sql_unit_of_work_factory,
        )

        self.url = url
        self.engine = create_engine_from_url(url)
        self._factory = sql_unit_of_work_factory(self.engine)
        self.read_unit_of_work = sql_unit_of_work_factory(self.engine, read_only=True)
        self._reset_pending = fresh
        self._ingest: IngestUnits | None = None

    def unit_of_work(self) -> UnitOfWork:
        return self._factory()

    def prepare(self) -> None:
        from responseiq_billing.adapters.sql.migrate import ensure_schema

        if self._reset_pending:
            self._reset_pending = False
            self.engine.dispose()
            path = self.engine.url.database
            for suffix in ("", "-wal", "-shm", "-journal"):
                if path:
                    Path(f"{path}{suffix}").unlink(missing_ok=True)
        ensure_schema(self.url)

    def readiness(self) -> str | None:
        import sqlalchemy as sa

        from responseiq_billing.adapters.sql.migrate import head_revision

        try:
            with self.engine.connect() as conn:
                conn.execute(sa.text("SELECT 1"))
                current = conn.execute(sa.text("SELECT version_num FROM alembic_version"))
                revision = current.scalar_one_or_none()
        except sa.exc.SQLAlchemyError as error:
            # The driver's message can include the URL; name the failure's class only.
            return f"database unreachable or not migrated ({type(error).__name__})"
        if revision != head_revision():
            return "database schema is not current; run `billing db upgrade`"
        return None

    def ingest_unit_of_work(self) -> UnitOfWork:
        """For `ReceiveGatewayEvent`: autocommit on a pool of its own on PostgreSQL (ADR 0011)."""
        from responseiq_billing.adapters.sql.ingest import IngestUnits

        if not IngestUnits.fit(self.engine):
            return self._factory()
        if self._ingest is None:
            self._ingest = IngestUnits(self.engine)
        return self._ingest()

    def close(self) -> None:
        self.engine.dispose()
        if self._ingest is not None:
            self._ingest.dispose()

    def freshness(self) -> Freshness | None:
        from responseiq_billing.adapters.sql.freshness import PostgresFreshness, SqliteFreshness

        url = self.engine.url
        if url.get_backend_name() == "postgresql":
            return PostgresFreshness(self.url)
        if url.database in (None, "", ":memory:"):
            return None
        return SqliteFreshness(url.database)


def _ingest_uow(storage: Storage) -> Callable[[], UnitOfWork]:
    """Webhook ingestion's units of work: autocommit on PostgreSQL (`SqlStorage`)."""
    if isinstance(storage, SqlStorage):
        return storage.ingest_unit_of_work
    return storage.unit_of_work


def _inbox_batch(storage: Storage) -> InboxBatchFactory | None:
    """SQL storage applies a claimed batch of events in one transaction (ADR 0011)."""
    if not isinstance(storage, SqlStorage):
        return None
    from responseiq_billing.adapters.sql.batch import SqlBatch

    engine = storage.engine
    return lambda: SqlBatch(engine)


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


class StripeEventDecoder:
    """Stored Stripe payloads to gateway events; prices resolve through the gateway's price map."""

    def __init__(self, gateway: PaymentGateway) -> None:
        self._gateway = gateway

    def decode(self, payload: str) -> GatewayEvent:
        import json

        from responseiq_billing.adapters.stripe.gateway import StripeGateway
        from responseiq_billing.adapters.stripe.webhooks import translate_event

        assert isinstance(self._gateway, StripeGateway)
        event: GatewayEvent = translate_event(json.loads(payload), self._gateway.prices)
        return event


def _decoders(kind: str, gateway: PaymentGateway) -> dict[str, EventDecoder]:
    from responseiq_billing.adapters.fake.codec import SandboxEventDecoder

    decoders: dict[str, EventDecoder] = {"sandbox": SandboxEventDecoder()}
    if kind == GatewayKind.STRIPE.value:
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


def deliver_sandbox_events(
    gateway: FakeGateway, receive: ReceiveGatewayEvent, process: ProcessInbox
) -> Callable[[GatewayEvent], None]:
    """The sandbox's webhook: every event the fake emits goes through the inbox, like Stripe's.

    It is stored first, then the inbox is drained at once, so the sandbox behaves like a
    webhook that arrives instantly (the background worker would also pick it up). A failure
    is logged, not raised into the gateway call that emitted it, as a failed webhook delivery
    never undoes what happened at Stripe; the stored event is retried by the worker.
    """
    from responseiq_billing.adapters.fake.codec import encode_event

    def deliver(event: GatewayEvent) -> None:
        try:
            receive(
                gateway="sandbox",
                event_id=event.id,
                type=event.gateway_type,
                payload=encode_event(event),
                event_created=event.created,
                object_ref=event.object_ref,
            )
            while process.run_once(limit=50).claimed:
                pass
        except Exception:
            log.exception("sandbox event %s (%s) was not applied", event.id, event.gateway_type)

    gateway.subscribe(deliver)
    return deliver


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
    apply_due_changes = providers.Singleton(
        ApplyDueChanges, uow=uow, gateway=gateway, clock=clock, catalog=catalog
    )

    # -- the webhook inbox
    receive_gateway_event = providers.Singleton(
        ReceiveGatewayEvent, uow=providers.Callable(_ingest_uow, storage), clock=clock
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


# The use cases `create_app` hands to Litestar by name (each a Container provider).
USE_CASES: tuple[str, ...] = (
    "list_plans",
    "get_subscription",
    "get_entitlements",
    "start_checkout",
    "complete_checkout",
    "open_portal",
    "preview_plan_change",
    "change_plan",
    "cancel_pending_change",
    "cancel_subscription",
    "resume_subscription",
    "start_payment_method_update",
    "complete_payment_method_update",
    "list_invoices",
    "get_invoice_pdf",
    "apply_gateway_event",
    "receive_gateway_event",
    "inbox_admin",
)


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
