"""The billing error tree: every error has a stable machine `code` and a plain message."""

from __future__ import annotations

import enum


class ErrorKind(enum.Enum):
    """What sort of failure an error is; adapters map kinds to transport codes (HTTP status)."""

    INVALID = "invalid"  # the request itself is wrong
    NOT_FOUND = "not_found"
    CONFLICT = "conflict"  # the request clashes with current state or a rule
    PAYMENT = "payment"  # the payment could not be taken
    UNAVAILABLE = "unavailable"  # try again later
    UNAUTHORIZED = "unauthorized"


class BillingError(Exception):
    """Base of every error the billing core raises on purpose."""

    code: str = "billing.error"
    kind: ErrorKind = ErrorKind.CONFLICT
    default_message: str = "The billing request could not be completed."

    def __init__(self, message: str | None = None) -> None:
        self.message = message or self.default_message
        super().__init__(self.message)


class UnknownPlan(BillingError):
    code = "plan.unknown"
    kind = ErrorKind.INVALID
    default_message = "There is no such plan."


class UnknownInterval(BillingError):
    code = "plan.unknown_interval"
    kind = ErrorKind.INVALID
    default_message = "The plan is not sold with that billing interval."


class SamePlan(BillingError):
    code = "plan_change.same_plan"
    kind = ErrorKind.CONFLICT
    default_message = "The subscription is already on that plan and interval."


class CurrencyMismatch(BillingError):
    code = "plan_change.currency_mismatch"
    kind = ErrorKind.CONFLICT
    default_message = "Plans priced in different currencies cannot be exchanged."


class NoPendingChange(BillingError):
    code = "plan_change.none_pending"
    kind = ErrorKind.CONFLICT
    default_message = "There is no scheduled plan change to cancel."


class QuoteNotFound(BillingError):
    code = "quote.not_found"
    kind = ErrorKind.NOT_FOUND
    default_message = "There is no such quote."


class QuoteExpired(BillingError):
    code = "quote.expired"
    kind = ErrorKind.CONFLICT
    default_message = "The quote has expired; ask for a new preview."


class QuoteMismatch(BillingError):
    code = "quote.mismatch"
    kind = ErrorKind.CONFLICT
    default_message = "The quote was made for another change or an older state of the subscription."


class SubscriptionNotFound(BillingError):
    code = "subscription.not_found"
    kind = ErrorKind.NOT_FOUND
    default_message = "This account has no subscription."


class AlreadySubscribed(BillingError):
    code = "subscription.already_active"
    kind = ErrorKind.CONFLICT
    default_message = "This account already has a live subscription; change its plan instead."


class SubscriptionNotActive(BillingError):
    code = "subscription.not_active"
    kind = ErrorKind.CONFLICT
    default_message = "The subscription is not active, so it cannot be changed."


class AlreadyCanceling(BillingError):
    code = "subscription.already_canceling"
    kind = ErrorKind.CONFLICT
    default_message = "The subscription is already set to end at the end of the period."


class NotResumable(BillingError):
    code = "subscription.not_resumable"
    kind = ErrorKind.CONFLICT
    default_message = (
        "Only a subscription set to cancel, whose period has not ended, can be resumed."
    )


class CustomerNotFound(BillingError):
    code = "customer.not_found"
    kind = ErrorKind.NOT_FOUND
    default_message = "This account has no billing customer yet; start a checkout first."


class InvoiceNotFound(BillingError):
    code = "invoice.not_found"
    kind = ErrorKind.NOT_FOUND
    default_message = "There is no such invoice."


class CheckoutNotFound(BillingError):
    code = "checkout.not_found"
    kind = ErrorKind.NOT_FOUND
    default_message = "There is no such checkout session."


class PaymentDeclined(BillingError):
    code = "payment.declined"
    kind = ErrorKind.PAYMENT
    default_message = "The payment was declined; nothing was changed."


class PaymentActionRequired(BillingError):
    code = "payment.action_required"
    kind = ErrorKind.PAYMENT
    default_message = "The bank asks the customer to confirm this payment; nothing was changed yet."

    def __init__(
        self,
        message: str | None = None,
        *,
        hosted_invoice_url: str | None = None,
        client_secret: str | None = None,
    ) -> None:
        """`hosted_invoice_url` (a page where the customer confirms and pays) and/or
        `client_secret` (of the payment to confirm in the browser): what finishes the change."""
        super().__init__(message)
        self.hosted_invoice_url = hosted_invoice_url
        self.client_secret = client_secret


class GatewayUnavailable(BillingError):
    code = "gateway.unavailable"
    kind = ErrorKind.UNAVAILABLE
    default_message = "The payment gateway could not be reached; try again shortly."


class GatewayRejected(BillingError):
    code = "gateway.rejected"
    kind = ErrorKind.CONFLICT
    default_message = "The payment gateway rejected the request."


class StaleVersion(BillingError):
    code = "conflict.stale_version"
    kind = ErrorKind.CONFLICT
    default_message = (
        "The subscription was changed by someone else meanwhile; reload and try again."
    )


class InvalidInput(BillingError):
    code = "request.invalid"
    kind = ErrorKind.INVALID
    default_message = "The request is not valid."
