"""Headless Chromium through Playwright: found, or the e2e tests skip (or fail when required)."""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from types import ModuleType
from typing import NoReturn

import pytest

CHROMIUM = Path("/usr/bin/chromium")  # Debian's package; Playwright never downloads a browser here
REQUIRED = "BILLING_TEST_E2E_REQUIRED"
# Quiet, offline, one-shot: no first-run UI, no update or sync traffic, no QUIC to the internet.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _unavailable(reason: str) -> NoReturn:
    if os.environ.get(REQUIRED) == "1":
        pytest.fail(f"{reason} ({REQUIRED}=1: the browser tests must run here)", pytrace=False)
    pytest.skip(f"{reason}; set {REQUIRED}=1 to make this a failure")


def sync_api() -> ModuleType:
    """`playwright.sync_api`, once both it and Chromium are present."""
    try:
        module = importlib.import_module("playwright.sync_api")
    except ImportError:
        _unavailable("the playwright package is not installed (pip install playwright)")
    if not CHROMIUM.exists():
        _unavailable(f"{CHROMIUM} is missing (apt-get install -y chromium)")
    return module
