"""A real `billing serve` for tests: a free port, a clean environment, and a wait for /ready."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

BILLING = Path(sys.executable).with_name("billing")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def clean_env() -> dict[str, str]:
    """The environment `billing` runs in here.

    No BILLING_* or STRIPE_* from the developer's shell: the sandbox defaults, always. A clock
    set for the whole run (`faketime -f +60d pytest`: its preload and setting) reaches the
    servers too, so the suite can be run as if on any date.
    """
    keep = ("PATH", "HOME", "LANG", "SYSTEMROOT", "LD_PRELOAD")
    return {k: v for k, v in os.environ.items() if k in keep or k.startswith("FAKETIME")}


@contextmanager
def billing_serve(
    cwd: Path, *args: str, within: float = 30, env: dict[str, str] | None = None
) -> Iterator[str]:
    """`billing serve <args>` on a free port in `cwd`, its output in `cwd/serve.log`.

    `env` adds to the clean sandbox environment (e.g. `BILLING_SANDBOX_CLOCK_START`).

    Yields the server's base URL once `/ready` answers 200; fails the test with the log if it
    exits or is not ready `within` seconds. Stopped on exit.
    """
    port = free_port()
    log_path = cwd / "serve.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [str(BILLING), "serve", *args, "--port", str(port)],
            cwd=cwd,
            env={**clean_env(), **(env or {})},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + within
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
            yield base
        finally:
            process.terminate()
            process.wait(timeout=10)
