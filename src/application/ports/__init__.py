"""Ports: what the billing core needs from the world, each with the promise an adapter keeps.

One module per concern: `clock`, `gateway` (the payment gateway and the values crossing it),
`events` (gateway events and the webhook inbox) and `storage` (repositories and the unit of
work). Every name is importable from here as well, which is how the rest of the code imports
them.
"""

from __future__ import annotations

from responseiq_billing.application.ports.clock import Clock
from responseiq_billing.application.ports.events import (
    EventDecoder,
    GatewayEvent,
    GatewayEventKind,
    InboxBacklog,
    InboxEvent,
    InboxRepository,
    InboxStats,
    InboxStatus,
    LeaseLost,
)
from responseiq_billing.application.ports.gateway import (
    CheckoutOutcome,
    CheckoutSession,
    CheckoutStatus,
    PaymentGateway,
    PortalFlow,
    PortalSession,
    Refund,
    ScheduledChanges,
    SetupSession,
    UiMode,
)
from responseiq_billing.application.ports.storage import (
    AuditEntry,
    AuditLog,
    CheckoutRecord,
    CheckoutRepository,
    CustomerRepository,
    InvoiceRepository,
    QuoteRepository,
    SubscriptionRepository,
    UnitOfWork,
    UnitOfWorkFactory,
)

__all__ = [
    "AuditEntry",
    "AuditLog",
    "CheckoutOutcome",
    "CheckoutRecord",
    "CheckoutRepository",
    "CheckoutSession",
    "CheckoutStatus",
    "Clock",
    "CustomerRepository",
    "EventDecoder",
    "GatewayEvent",
    "GatewayEventKind",
    "InboxBacklog",
    "InboxEvent",
    "InboxRepository",
    "InboxStats",
    "InboxStatus",
    "InvoiceRepository",
    "LeaseLost",
    "PaymentGateway",
    "PortalFlow",
    "PortalSession",
    "QuoteRepository",
    "Refund",
    "ScheduledChanges",
    "SetupSession",
    "SubscriptionRepository",
    "UiMode",
    "UnitOfWork",
    "UnitOfWorkFactory",
]
