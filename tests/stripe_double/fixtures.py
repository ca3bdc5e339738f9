"""Stripe's own example objects (fixtures3.json), deep-copied for each use."""

from __future__ import annotations

import copy
import functools
import json
import os
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


# The objects the double uses, copied unchanged from fixtures3.json, so the suite runs from a
# clone that has no `../shared/` beside it.
SUBSET = Path(__file__).with_name("fixtures3-subset.json")


def fixtures_path() -> Path:
    """`$STRIPE_FIXTURES3`, else `../shared/stripe/fixtures3.json` beside the project, else the
    subset of it kept in this folder."""
    override = os.environ.get("STRIPE_FIXTURES3")
    if override:
        return Path(override)
    shared = ROOT.parent / "shared" / "stripe" / "fixtures3.json"
    return shared if shared.exists() else SUBSET


@functools.cache
def _resources() -> dict[str, Any]:
    with fixtures_path().open(encoding="utf-8") as handle:
        data: dict[str, Any] = json.load(handle)["resources"]
    return data


def resource(kind: str, /, **overrides: Any) -> dict[str, Any]:
    """A fresh deep copy of Stripe's example `kind` object with `overrides` applied on top."""
    obj: dict[str, Any] = copy.deepcopy(_resources()[kind])
    obj.update(copy.deepcopy(overrides))
    return obj
