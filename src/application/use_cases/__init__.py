"""Use cases: one per action of the help article, each a command in and one transaction of writes.

Gateway calls happen outside database transactions (no lock is held across the network); what
the gateway answers is then recorded in one unit of work together with its audit entries. One
module per row of the article (and the recording they share).
"""

from __future__ import annotations

from responseiq_billing.application.use_cases.checkout import (
    CompleteCheckout,
    OpenPortal,
    StartCheckout,
    _link,
    _link_customer,
    ensure_customer,
    existing_customer,
)
from responseiq_billing.application.use_cases.gateway_events import (
    _SUBSCRIPTION_KINDS,
    ApplyGatewayEvent,
    ApplyOutcome,
    Within,
)
from responseiq_billing.application.use_cases.invoices import GetInvoicePdf, ListInvoices
from responseiq_billing.application.use_cases.payment_method import (
    CompletePaymentMethodUpdate,
    StartPaymentMethodUpdate,
)
from responseiq_billing.application.use_cases.plan_changes import (
    CancelPendingChange,
    CancelSubscription,
    ChangePlan,
    PreviewPlanChange,
    ResumeSubscription,
    _keep_pending,
)
from responseiq_billing.application.use_cases.reading import (
    GetEntitlements,
    GetSubscription,
    ListPlans,
    SubscriptionView,
)
from responseiq_billing.application.use_cases.reconcile import Reconcile, ReconcileReport, _describe
from responseiq_billing.application.use_cases.recording import (
    MAX_INVOICE_PAGE,
    RECORD_ATTEMPTS,
    Admission,
    OneSubscription,
    Settled,
    T,
    _differs,
    _duplicate_noted,
    _price_inputs,
    _Recorder,
    _upsert,
    audit,
    audit_events,
    live_subscription,
    now_from,
    retry_stale,
    settle,
    upsert_view,
)

__all__ = [
    "MAX_INVOICE_PAGE",
    "RECORD_ATTEMPTS",
    "_SUBSCRIPTION_KINDS",
    "Admission",
    "ApplyGatewayEvent",
    "ApplyOutcome",
    "CancelPendingChange",
    "CancelSubscription",
    "ChangePlan",
    "CompleteCheckout",
    "CompletePaymentMethodUpdate",
    "GetEntitlements",
    "GetInvoicePdf",
    "GetSubscription",
    "ListInvoices",
    "ListPlans",
    "OneSubscription",
    "OpenPortal",
    "PreviewPlanChange",
    "Reconcile",
    "ReconcileReport",
    "ResumeSubscription",
    "Settled",
    "StartCheckout",
    "StartPaymentMethodUpdate",
    "SubscriptionView",
    "T",
    "Within",
    "_Recorder",
    "_describe",
    "_differs",
    "_duplicate_noted",
    "_keep_pending",
    "_link",
    "_link_customer",
    "_price_inputs",
    "_upsert",
    "audit",
    "audit_events",
    "ensure_customer",
    "existing_customer",
    "live_subscription",
    "now_from",
    "retry_stale",
    "settle",
    "upsert_view",
]
