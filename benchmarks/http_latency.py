"""Prints request latency of the main billing routes, in process (sandbox gateway, memory or SQLite).

Run: `.venv/bin/python benchmarks/http_latency.py [--store sqlite] [--n 300]`. Prints figures only;
no assertion depends on timing.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import timedelta

from litestar.testing import TestClient

from responseiq_billing.adapters.app import create_app
from responseiq_billing.adapters.config import Settings
from responseiq_billing.adapters.container import build_container
from responseiq_billing.adapters.http.auth import issue_token

SECRET = "benchmark-secret-at-least-32-characters"


def _measure(name: str, n: int, call: Callable[[int], object]) -> None:
    samples = []
    for i in range(n):
        started = time.perf_counter()
        call(i)
        samples.append((time.perf_counter() - started) * 1000)
    samples.sort()
    p50 = statistics.median(samples)
    p95 = samples[int(len(samples) * 0.95) - 1]
    print(f"{name:<44} n={n:<5} p50={p50:6.2f} ms  p95={p95:6.2f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--store", choices=("memory", "sqlite"), default="memory")
    parser.add_argument("--n", type=int, default=300)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = "memory://" if args.store == "memory" else f"sqlite:///{tmp}/bench.db"
        settings = Settings.from_env({"BILLING_DATABASE_URL": url, "BILLING_AUTH_SECRET": SECRET})
        with TestClient(create_app(build_container(settings))) as client:
            h = {"Authorization": f"Bearer {issue_token(SECRET, 'acct_b', ttl=timedelta(hours=1))}"}
            print(f"store={args.store}")
            _measure(
                "GET /billing/plans", args.n, lambda _: client.get("/billing/plans", headers=h)
            )
            _measure(
                "GET /billing/entitlements (no subscription)",
                args.n,
                lambda _: client.get("/billing/entitlements", headers=h),
            )

            def subscribe(i: int) -> None:
                hi = {
                    "Authorization": f"Bearer {issue_token(SECRET, f'acct_{i}', ttl=timedelta(hours=1))}"
                }
                body = {"plan": "growth", "interval": "month"}
                checkout = client.post("/billing/checkout", headers=hi, json=body).json()
                client.post(
                    f"/sandbox/checkout/{checkout['checkout_id']}/complete",
                    data={"outcome": "succeeded"},
                    follow_redirects=False,
                )

            _measure("checkout + sandbox payment (new account)", args.n // 3, subscribe)
            subscribe(-1)
            hs = {
                "Authorization": f"Bearer {issue_token(SECRET, 'acct_-1', ttl=timedelta(hours=1))}"
            }
            _measure(
                "GET /billing/subscription",
                args.n,
                lambda _: client.get("/billing/subscription", headers=hs),
            )
            _measure(
                "POST /billing/subscription/preview",
                args.n,
                lambda _: client.post(
                    "/billing/subscription/preview",
                    headers=hs,
                    json={"plan": "business", "interval": "month"},
                ),
            )


if __name__ == "__main__":
    main()
