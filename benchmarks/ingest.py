"""Webhook ingestion throughput: the real `POST /webhooks/stripe` against a bare verify-only endpoint.

Starts, on loopback ports, one uvicorn worker of `benchmarks/bare_webhook_app.py` (a Litestar
endpoint that only verifies the Stripe signature with the same verifier and secret) and one
`billing serve --no-worker` (Stripe mode, PostgreSQL: verify, redact, store durably, 200).
Both receive the same unique, freshly signed `customer.subscription.updated` deliveries from
`wrk -t1 -c50` (`benchmarks/ingest.lua`); prints requests per second, the ratio, and how many
events the billing run stored. Nothing applies them (no worker); Stripe itself is never called.

Run: `.venv/bin/python benchmarks/ingest.py [--seconds 5] [--deliveries 40000]`.
Prints figures only; nothing here is a test.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import sqlalchemy as sa
from benchmarks.reads import BIN, HERE, free_port, process
from figures import record

SECRET = "whsec_benchmark_ingest"


def event(n: int, stamp: int) -> dict[str, object]:
    sub = f"sub_bench{n:07d}"
    return {
        "id": f"evt_bench{n:07d}{stamp}",
        "object": "event",
        "api_version": "2025-03-31.basil",
        "created": stamp,
        "livemode": False,
        "pending_webhooks": 1,
        "request": {"id": None, "idempotency_key": None},
        "type": "customer.subscription.updated",
        "data": {
            "object": {
                "id": sub,
                "object": "subscription",
                "customer": f"cus_bench{n % 5000:05d}",
                "status": "active",
                "cancel_at_period_end": False,
                "created": stamp - 86400,
                "default_payment_method": "pm_bench",
                "items": {
                    "object": "list",
                    "data": [
                        {
                            "id": f"si_bench{n:07d}",
                            "object": "subscription_item",
                            "current_period_start": stamp - 3600,
                            "current_period_end": stamp + 30 * 86400,
                            "price": {
                                "id": "price_growth_month",
                                "object": "price",
                                "currency": "usd",
                                "unit_amount": 4900,
                                "recurring": {"interval": "month", "interval_count": 1},
                                "metadata": {"plan": "growth"},
                            },
                            "quantity": 1,
                        }
                    ],
                },
                "metadata": {"account_id": f"acct_bench{n % 5000:05d}"},
                "schedule": None,
            },
            "previous_attributes": {"cancel_at_period_end": True},
        },
    }


def write_deliveries(path: Path, count: int) -> None:
    """Unique events signed now (Stripe's tolerance is 300 s: written just before each run)."""
    stamp = int(time.time())
    with path.open("w") as out:
        for n in range(count):
            body = json.dumps(event(n, stamp), separators=(",", ":")).encode()
            mac = hmac.new(SECRET.encode(), f"{stamp}.".encode() + body, hashlib.sha256)
            out.write(f"t={stamp},v1={mac.hexdigest()}\t{body.decode()}\n")


def wrk(url: str, seconds: int, bodies: Path) -> tuple[float, int]:
    env = dict(os.environ, INGEST_BODIES=str(bodies))
    args = ["wrk", "-t1", "-c50", f"-d{seconds}s", "-s", str(HERE / "ingest.lua"), url]
    out = subprocess.run(args, capture_output=True, text=True, check=True, env=env).stdout
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if errors:
        raise SystemExit(f"{url}: {errors.group(1)} failed responses\n{out}")
    rate = re.search(r"Requests/sec:\s+([\d.]+)", out)
    total = re.search(r"(\d+) requests in", out)
    assert rate and total, out
    return float(rate.group(1)), int(total.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--deliveries", type=int, default=40_000)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is missing: apt-get install -y wrk")
    from tests.sql_fixtures import postgres_database

    from responseiq_billing.adapters.sql.migrate import upgrade

    work = Path(tempfile.mkdtemp(prefix="billing-ingest-"))
    bodies = work / "deliveries.tsv"
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "PYTHONPATH")}
    env.update(
        BILLING_GATEWAY="stripe",
        STRIPE_API_KEY="sk_test_benchmark",
        STRIPE_API_BASE="http://127.0.0.1:9",  # never called: no worker runs
        STRIPE_WEBHOOK_SECRET=SECRET,
        BILLING_AUTH_SECRET="benchmark-ingest-auth-secret-0123456789abcdef",
        BILLING_PUBLIC_URL="https://billing.example.com",
    )
    bare_port, billing_port = free_port(), free_port()
    bare = f"http://127.0.0.1:{bare_port}"
    base = f"http://127.0.0.1:{billing_port}"
    uvicorn = [
        str(BIN / "uvicorn"),
        "--app-dir",
        str(HERE),
        "bare_webhook_app:app",
        "--port",
        str(bare_port),
        "--no-access-log",
        "--log-level",
        "warning",
    ]
    billing = [str(BIN / "billing"), "serve", "--port", str(billing_port), "--no-worker"]
    with postgres_database("billing_ingest") as url:
        upgrade(url)
        env["BILLING_DATABASE_URL"] = url
        with (
            process(uvicorn, cwd=work, env=env, ready=f"{bare}/schema") as bare_server,
            process(billing, cwd=work, env=env, ready=f"{base}/ready") as billing_server,
        ):
            write_deliveries(bodies, args.deliveries)
            before = cpu_seconds(bare_server.pid)
            baseline, bare_sent = wrk(f"{bare}/webhooks/stripe", args.seconds, bodies)
            bare_cpu = (cpu_seconds(bare_server.pid) - before) / bare_sent
            write_deliveries(bodies, args.deliveries)
            before = cpu_seconds(billing_server.pid)
            figure, sent = wrk(f"{base}/webhooks/stripe", args.seconds, bodies)
            billing_cpu = (cpu_seconds(billing_server.pid) - before) / sent
        engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
        with engine.connect() as conn:
            stored = conn.scalar(sa.text("SELECT count(*) FROM webhook_inbox"))
        engine.dispose()
    print(
        f"ingestion, PostgreSQL, wrk -t1 -c50 -d{args.seconds}s, one uvicorn worker each, "
        f"{os.cpu_count()} cores"
    )
    print(f"bare verify-only endpoint: {baseline:8.0f} req/s")
    print(f"POST /webhooks/stripe:     {figure:8.0f} req/s ({sent} sent, {stored} stored)")
    print(f"ratio: {figure / baseline:.2f}x (target 0.30x)")
    record(
        "webhooks, PostgreSQL",
        "POST /webhooks/stripe (verify, store)",
        figure,
        "req/s",
        baseline=baseline,
        target=(">=", 0.3),
    )
    # CPU the server process spent per request (all its threads): less sensitive than req/s
    # to other work on the machine, though the database's own CPU is not in it.
    print(
        f"server CPU per request: bare {bare_cpu * 1e6:.0f} us, billing {billing_cpu * 1e6:.0f} us"
        f" (bare/billing {bare_cpu / billing_cpu:.2f})"
    )


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far, from /proc (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


if __name__ == "__main__":
    main()
