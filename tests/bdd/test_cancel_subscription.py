"""Steps of features/cancel_subscription.feature: the help article's row "Cancel subscription" (shared steps only)."""

from __future__ import annotations

from pytest_bdd import scenarios

scenarios("cancel_subscription.feature")
