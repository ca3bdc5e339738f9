"""Read throughput of the billing API against a bare Litestar app, measured side by side.

Starts, on loopback ports, one uvicorn worker of `benchmarks/bare_app.py` and one `billing serve`
(sandbox gateway; SQLite, or PostgreSQL with `--postgres URL`), subscribes one account, then
runs `wrk -t1 -c50` against each endpoint in turn and prints requests per second and the
ratio to the bare app measured in the same run; then how long `billing serve` took from being
spawned to answering /ready, and its resident memory (/proc) after the runs. Stops everything
it started.

Run: `.venv/bin/python benchmarks/reads.py [--seconds 5] [--postgres postgresql+psycopg://…]`.
Prints figures only; nothing here is a test.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import attrs
import httpx
from figures import record

HERE = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent
ENDPOINTS = ("/billing/subscription", "/billing/entitlements", "/billing/plans")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@attrs.define
class Started:
    pid: int
    seconds_to_ready: float  # from spawning the process to the first answer below 500

    def rss_mib(self) -> float:
        """The process's resident set size now, from /proc (Linux)."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        raise SystemExit(f"no VmRSS in /proc/{self.pid}/status")


@contextmanager
def process(args: list[str], *, cwd: Path, env: dict[str, str], ready: str) -> Iterator[Started]:
    log = (cwd / f"{Path(args[0]).name}.log").open("w")
    spawned = time.monotonic()
    proc = subprocess.Popen(args, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = spawned + 30
        while True:
            try:
                if httpx.get(ready, timeout=1).status_code < 500:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"{args[0]} did not start; see {log.name}")
            time.sleep(0.01)
        yield Started(proc.pid, time.monotonic() - spawned)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def wrk(url: str, seconds: int, token: str | None = None) -> float:
    args = ["wrk", "-t1", "-c50", f"-d{seconds}s", url]
    if token:
        args[1:1] = ["-H", f"Authorization: Bearer {token}"]
    out = subprocess.run(args, capture_output=True, text=True, check=True).stdout
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if errors:
        raise SystemExit(f"{url}: {errors.group(1)} failed responses\n{out}")
    match = re.search(r"Requests/sec:\s+([\d.]+)", out)
    assert match, out
    return float(match.group(1))


def subscribe(base: str, token: str) -> None:
    auth = {"Authorization": f"Bearer {token}"}
    started = httpx.post(
        f"{base}/billing/checkout", headers=auth, json={"plan": "growth", "interval": "month"}
    )
    started.raise_for_status()
    httpx.post(
        f"{base}/sandbox/checkout/{started.json()['checkout_id']}/complete",
        data={"outcome": "succeeded", "card": "visa"},
    )
    httpx.get(f"{base}/billing/subscription", headers=auth).raise_for_status()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--postgres", help="a migrated PostgreSQL database URL (default: SQLite)")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is missing: apt-get install -y wrk")
    work = Path(tempfile.mkdtemp(prefix="billing-reads-"))
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG")}
    env["BILLING_DATABASE_URL"] = args.postgres or f"sqlite:///{work / 'billing.db'}"
    database = "PostgreSQL" if args.postgres else "SQLite"
    bare_port, billing_port = free_port(), free_port()
    bare = f"http://127.0.0.1:{bare_port}"
    base = f"http://127.0.0.1:{billing_port}"
    uvicorn = [
        str(BIN / "uvicorn"),
        "--app-dir",
        str(HERE),
        "bare_app:app",
        "--port",
        str(bare_port),
        "--no-access-log",
        "--log-level",
        "warning",
    ]
    billing = [str(BIN / "billing"), "serve", "--port", str(billing_port)]
    with (
        process(uvicorn, cwd=work, env=env, ready=f"{bare}/bare"),
        process(billing, cwd=work, env=env, ready=f"{base}/ready") as served,
    ):
        token = subprocess.run(
            [str(BIN / "billing"), "token", "acct_bench"],
            cwd=work,
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        subscribe(base, token)
        rows = []
        for endpoint in ENDPOINTS:
            baseline = wrk(f"{bare}/bare", args.seconds)
            figure = wrk(f"{base}{endpoint}", args.seconds, token)
            rows.append((endpoint, figure, baseline))
        rss = served.rss_mib()  # after every read run: the serving process as it settled
    print(
        f"reads, {database}, wrk -t1 -c50 -d{args.seconds}s, one uvicorn worker each, {os.cpu_count()} cores"
    )
    print(f"{'endpoint':<26} {'req/s':>8} {'bare req/s':>11} {'ratio':>6}")
    for endpoint, figure, baseline in rows:
        print(f"{endpoint:<26} {figure:8.0f} {baseline:11.0f} {figure / baseline:6.2f}")
        record(
            f"reads, {database}",
            f"GET {endpoint}",
            figure,
            "req/s",
            baseline=baseline,
            target=(">=", 0.5),
        )
    print(f"start-to-ready {served.seconds_to_ready:.2f} s (billing serve spawned -> /ready)")
    print(f"rss {rss:.0f} MiB (the serving process, after the read runs)")
    start = f"billing serve, {database}"
    record(start, "spawn to first /ready", served.seconds_to_ready, "s", target=("<=", 1.5))
    record(start, "RSS after the read runs", rss, "MiB")


if __name__ == "__main__":
    main()
