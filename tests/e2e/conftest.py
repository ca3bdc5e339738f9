"""A real `billing serve` (sandbox gateway) per test, and a headless Chromium page to drive it."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import attrs
import httpx
import pytest

from tests.e2e.browser import CHROMIUM, CHROMIUM_ARGS, sync_api
from tests.serving import BILLING, billing_serve, clean_env

if TYPE_CHECKING:
    from playwright.sync_api import Page, Playwright

ARTIFACTS = "BILLING_TEST_E2E_ARTIFACTS"  # a folder to keep screenshots in (default: tmp_path)


@attrs.frozen
class Server:
    """One running `billing serve`, and how to call its API as an account."""

    base: str
    cwd: Path

    def api(self, account_id: str) -> httpx.Client:
        token = subprocess.run(
            [str(BILLING), "token", account_id],
            cwd=self.cwd,
            env=clean_env(),
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        return httpx.Client(
            base_url=self.base, headers={"Authorization": f"Bearer {token}"}, timeout=10
        )


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    cwd = tmp_path / "serve"
    cwd.mkdir()
    with billing_serve(cwd, "--host", "127.0.0.1", within=20) as base:
        yield Server(base, cwd)


@pytest.fixture(scope="session", autouse=True)
def browser_api() -> ModuleType:
    """Checked before anything starts: without a browser every test here skips (or fails)."""
    return sync_api()


@pytest.fixture(scope="session")
def playwright(browser_api: Any) -> Iterator[Playwright]:
    with browser_api.sync_playwright() as instance:
        yield instance


@pytest.fixture
def page(playwright: Playwright, tmp_path: Path) -> Iterator[Page]:
    """A page in a browser with its own fresh profile (no cookies, cache or history)."""
    context = playwright.chromium.launch_persistent_context(
        tmp_path / "chromium-profile",
        executable_path=str(CHROMIUM),
        headless=True,
        args=CHROMIUM_ARGS,
        viewport={"width": 1000, "height": 800},
    )
    context.set_default_timeout(10_000)
    try:
        yield context.pages[0] if context.pages else context.new_page()
    finally:
        context.close()


@pytest.fixture
def artifacts(tmp_path: Path) -> Path:
    """Where screenshots go: `$BILLING_TEST_E2E_ARTIFACTS` if set (kept), else the test's tmp_path."""
    folder = Path(os.environ.get(ARTIFACTS) or tmp_path / "artifacts")
    folder.mkdir(parents=True, exist_ok=True)
    return folder
