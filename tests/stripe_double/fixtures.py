"""Stripe's own example objects (fixtures3.json), deep-copied for each use."""

from __future__ import annotations

import copy
import functools
import json
import os
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def fixtures_path() -> Path:
    """`../shared/stripe/fixtures3.json` beside the project, or `$STRIPE_FIXTURES3`."""
    override = os.environ.get("STRIPE_FIXTURES3")
    return Path(override) if override else ROOT.parent / "shared" / "stripe" / "fixtures3.json"


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
