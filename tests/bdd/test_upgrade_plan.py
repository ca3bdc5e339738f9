"""Steps of features/upgrade_plan.feature: the help article's row "Upgrade plan" (shared steps only)."""

from __future__ import annotations

from pytest_bdd import scenarios

scenarios("upgrade_plan.feature")
