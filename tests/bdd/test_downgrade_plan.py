"""Steps of features/downgrade_plan.feature: the help article's row "Downgrade plan" (shared steps only)."""

from __future__ import annotations

from pytest_bdd import scenarios

scenarios("downgrade_plan.feature")
