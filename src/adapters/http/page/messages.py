"""Every sentence the page shows after an action: what happened, or why nothing did.

Error codes from `domain.errors` (and the page's own) map to sentences a customer reads; no
code, status or stack trace ever reaches the page. `tests/http/test_billing_page.py` checks
that every code in the error tree has a sentence here.
"""

from __future__ import annotations

from typing import Literal

import attrs

Tone = Literal["done", "problem"]

DONE: dict[str, str] = {
    "subscribed": "Payment received: your subscription is active.",
    "checkout_open": "Your payment has not gone through yet, so nothing was charged. "
    "If you finished paying, reload this page in a moment.",
    "checkout_canceled": "Checkout canceled: nothing was charged and no plan was started.",
    "upgraded": "Your plan was changed now. The amount shown was charged to your card on file.",
    "downgrade_scheduled": "Your downgrade is scheduled. You keep your current features "
    "until it takes effect.",
    "change_withdrawn": "The scheduled change was withdrawn: your plan stays as it is.",
    "canceled": "Your subscription is canceled. Access continues until the end of the "
    "billing period, and you will not be charged again.",
    "resumed": "Your subscription continues and will renew as before.",
    "card_updated": "Your payment method was updated: the next charge uses the new card.",
    "card_pending": "Your new card is not confirmed yet. If you finished adding it, reload "
    "this page in a moment.",
    "card_unchanged": "Your payment method was not changed.",
}

PROBLEMS: dict[str, str] = {
    # the plan catalog
    "plan.unknown": "That plan is not on sale. Choose one of the plans shown.",
    "plan.unknown_interval": "That plan is not sold with that billing period. "
    "Choose one of the options shown.",
    # plan changes
    "plan_change.same_plan": "You are already on that plan.",
    "plan_change.currency_mismatch": "That plan is priced in another currency, so it cannot "
    "replace your current plan. Please contact support to switch.",
    "plan_change.none_pending": "There is no scheduled change to undo; your plan is as shown.",
    "quote.not_found": "That price is no longer available. Choose the plan again to see the "
    "current amount.",
    "quote.expired": "That price was shown too long ago. Choose the plan again to see the "
    "current amount; nothing was charged.",
    "quote.mismatch": "Your subscription changed since that price was shown, so nothing was "
    "charged. Here is its current state; choose again if you still want the change.",
    # the subscription
    "subscription.not_found": "You do not have a subscription yet. Choose a plan below to "
    "subscribe.",
    "subscription.already_active": "You already have a subscription. Change its plan below "
    "instead of subscribing again.",
    "subscription.not_active": "Your subscription cannot be changed right now. If it is set "
    "to end, resume it first; if a payment is overdue, settle it first.",
    "subscription.already_canceling": "Your subscription is already set to end at the end of "
    "the billing period.",
    "subscription.not_resumable": "There is no cancellation to undo: your subscription either "
    "renews already or has ended. To start again, choose a plan.",
    "customer.not_found": "You do not have a billing account yet. Subscribe to a plan first.",
    "invoice.not_found": "We could not find that invoice, or it has no PDF yet.",
    "checkout.not_found": "We could not find that checkout. If you paid, your subscription "
    "shows below; otherwise please start again.",
    # payments and the gateway
    "payment.declined": "Your card was declined, so nothing was charged and your plan did not "
    "change. Update your payment method and try again.",
    "payment.action_required": "Your bank asks you to confirm this payment. Nothing was "
    "charged and your plan did not change yet: confirm it on the payment page your bank "
    "opens, or make the change in Manage Billing, or use another card.",
    "gateway.unavailable": "The payment service could not be reached, so nothing was changed. "
    "Please try again in a minute.",
    "gateway.rejected": "The payment service did not accept that change, so nothing was "
    "changed. Please reload the page and try again.",
    "conflict.stale_version": "Your subscription was changed elsewhere at the same moment. "
    "Here is its current state; please try again.",
    "request.invalid": "That request was not understood, so nothing was changed.",
    "billing.error": "That could not be done, so nothing was changed.",
    # the page's own
    "page.session_missing": "Open Billing from the app to see this page.",
    "page.session_expired": "Your session has expired; reopen Billing from the app.",
    "page.session_invalid": "This session is not valid; reopen Billing from the app.",
    "page.csrf_refused": "This form did not come from your billing page, so nothing was "
    "changed. Reopen Billing from the app and try again.",
    "auth.missing": "This billing link is incomplete. Reopen Billing from the app.",
    "auth.malformed": "This billing link is not valid. Reopen Billing from the app.",
    "auth.invalid_signature": "This billing link is not valid. Reopen Billing from the app.",
    "auth.expired": "This billing link has expired. Reopen Billing from the app.",
    "internal": "Something went wrong on our side, so nothing was changed. Please try again.",
}

FALLBACK = "That could not be done, so nothing was changed. Please try again."


@attrs.frozen
class Message:
    tone: Tone
    text: str


def problem(code: str) -> str:
    return PROBLEMS.get(code, FALLBACK)


def flash_key(tone: Tone, name: str) -> str:
    return f"{tone}:{name}"


def from_flash(key: str | None) -> Message | None:
    """The message a flash cookie names, or None for an unknown or missing key."""
    if key is None:
        return None
    tone, _, name = key.partition(":")
    if tone == "done" and name in DONE:
        return Message("done", DONE[name])
    if tone == "problem":
        return Message("problem", problem(name))
    return None
