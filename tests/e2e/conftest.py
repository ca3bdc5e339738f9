"""A real `billing serve` (sandbox gateway) per test, and a headless Chromium page to drive it."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import attrs
import httpx
import pytest

from tests.e2e.browser import CHROMIUM, CHROMIUM_ARGS, sync_api

if TYPE_CHECKING:
    from playwright.sync_api import Page, Playwright

BILLING = Path(sys.executable).with_name("billing")
ARTIFACTS = "BILLING_TEST_E2E_ARTIFACTS"  # a folder to keep screenshots in (default: tmp_path)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _env() -> dict[str, str]:
    # No BILLING_* or STRIPE_* from the developer's shell: the sandbox defaults, always.
    keep = ("PATH", "HOME", "LANG", "SYSTEMROOT")
    return {k: v for k, v in os.environ.items() if k in keep}


@attrs.frozen
class Server:
    """One running `billing serve`, and how to call its API as an account."""

    base: str
    cwd: Path

    def api(self, account_id: str) -> httpx.Client:
        token = subprocess.run(
            [str(BILLING), "token", account_id],
            cwd=self.cwd,
            env=_env(),
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
    port = _free_port()
    log_path = cwd / "serve.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [str(BILLING), "serve", "--host", "127.0.0.1", "--port", str(port)],
            cwd=cwd,
            env=_env(),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 20
            while True:
                try:
                    if httpx.get(f"{base}/ready", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if process.poll() is not None or time.monotonic() > deadline:
                    log.flush()
                    pytest.fail(f"billing serve did not start:\n{log_path.read_text()}")
                time.sleep(0.1)
            yield Server(base, cwd)
        finally:
            process.terminate()
            process.wait(timeout=10)


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
