"""Operations subcommands of `billing`: the inbox worker, inbox admin, reconcile, gateway setup."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any, TextIO

from responseiq_billing.adapters.config import ConfigError, Settings

Subparsers = Any

SANDBOX_DATABASE = "billing-sandbox.db"


def _container(*, needs_gateway: bool) -> Any:
    """The container for an operations command.

    The sandbox gateway keeps its state inside the `billing serve` process, and that process
    owns `billing-sandbox.db` (it empties it on start). Another process may read the sandbox's
    inbox but never migrates or resets that file, and a command that needs the gateway itself
    (a worker, reconcile) is refused with the reason instead of acting on an empty sandbox.
    """
    from responseiq_billing.adapters.container import build_container

    settings = Settings.from_env(os.environ)
    container = build_container(settings)
    if settings.is_sandbox and settings.database_url is None:
        if needs_gateway:
            raise ConfigError(
                "BILLING_GATEWAY",
                "the sandbox gateway lives inside `billing serve`, which applies its events "
                "itself; this command is for a real gateway",
            )
        if not Path(SANDBOX_DATABASE).exists():
            raise ConfigError(
                "BILLING_GATEWAY", f"no {SANDBOX_DATABASE} here: start `billing serve` first"
            )
        return container
    container.storage().prepare()
    return container


# -- worker -------------------------------------------------------------------------------------


def add_worker(sub: Subparsers) -> None:
    parser = sub.add_parser(
        "worker",
        help="apply stored gateway events (run any number side by side)",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        description=(
            "Claim events from the webhook inbox and apply each in its own transaction. On "
            "PostgreSQL any number of workers may run on any number of machines (rows are "
            "claimed with FOR UPDATE SKIP LOCKED under a lease); `billing serve` runs one "
            "in-process worker itself. It also switches downgrades the service keeps for a "
            "gateway that cannot schedule them (Paddle) shortly before their renewal. Stops "
            "cleanly on SIGTERM or Ctrl-C."
        ),
    )
    parser.add_argument("--idle", type=float, default=1.0, help="seconds to wait when idle")
    parser.add_argument("--batch", type=int, default=100, help="events claimed per pass")
    parser.add_argument(
        "--once", action="store_true", help="drain what is due now, then exit (cron, tests)"
    )
    parser.set_defaults(handler=worker)


def worker(args: argparse.Namespace) -> int:
    from responseiq_billing.adapters.worker import run_due, run_worker

    container = _container(needs_gateway=True)
    process = container.process_inbox()
    due = container.apply_due_changes()
    if args.once:
        run_due(due)
        total = 0
        while (report := process.run_once(limit=args.batch)).claimed:
            total += report.claimed
        print(f"worker {process.worker}: processed {total} event(s)")
        return 0
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    print(f"worker {process.worker}: running (Ctrl-C to stop)", flush=True)
    applied = run_worker(process, stop, idle_seconds=args.idle, batch=args.batch, due=due)
    print(f"worker {process.worker}: stopped after {applied} event(s)")
    return 0


# -- inbox --------------------------------------------------------------------------------------


def add_inbox(sub: Subparsers) -> None:
    parser = sub.add_parser(
        "inbox",
        help="inspect the webhook inbox; retry or park events",
        description="Inbox depth, oldest unapplied event, parked events; retry or park one.",
    )
    actions = parser.add_subparsers(dest="inbox_action", metavar="ACTION")
    listing = actions.add_parser("list", help="list events (newest first)")
    listing.add_argument("--status", choices=["pending", "applied", "parked"], default=None)
    listing.add_argument("--limit", type=int, default=20)
    listing.set_defaults(handler=inbox_list)
    retry = actions.add_parser("retry", help="make a parked or failing event due now")
    retry.add_argument("event_id")
    retry.set_defaults(handler=inbox_retry)
    park = actions.add_parser("park", help="set an unapplied event aside")
    park.add_argument("event_id")
    park.add_argument("--reason", default="parked by an operator")
    park.set_defaults(handler=inbox_park)
    parser.set_defaults(handler=inbox_stats)


def inbox_stats(args: argparse.Namespace, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    stats = _container(needs_gateway=False).inbox_admin().stats()
    oldest = stats.oldest_pending_age_seconds
    print(f"pending: {stats.pending}", file=out)
    print(f"oldest pending: {'-' if oldest is None else f'{oldest:.0f}s'}", file=out)
    print(f"parked: {stats.parked}", file=out)
    print(f"applied: {stats.applied}", file=out)
    return 0


def inbox_list(args: argparse.Namespace, out: TextIO | None = None) -> int:
    from responseiq_billing.application.ports import InboxStatus

    out = out or sys.stdout
    status = InboxStatus(args.status) if args.status else None
    events = _container(needs_gateway=False).inbox_admin().list(status, limit=args.limit)
    print(f"{'event':<32} {'type':<40} {'status':<8} {'tries':>5}  error", file=out)
    for e in events:
        error = (e.last_error or "")[:60]
        print(
            f"{e.event_id:<32} {e.type:<40} {e.status.value:<8} {e.attempts:>5}  {error}", file=out
        )
    return 0


def inbox_retry(args: argparse.Namespace) -> int:
    if not _container(needs_gateway=False).inbox_admin().retry(args.event_id):
        print(f"billing: no unapplied event {args.event_id}", file=sys.stderr)
        return 1
    print(f"{args.event_id}: due now")
    return 0


def inbox_park(args: argparse.Namespace) -> int:
    if not _container(needs_gateway=False).inbox_admin().park(args.event_id, args.reason):
        print(f"billing: no unapplied event {args.event_id}", file=sys.stderr)
        return 1
    print(f"{args.event_id}: parked")
    return 0


# -- reconcile ----------------------------------------------------------------------------------


def add_reconcile(sub: Subparsers) -> None:
    parser = sub.add_parser(
        "reconcile",
        help="pull the gateway's truth and repair local state",
        description=(
            "Read subscriptions and invoices from the gateway and repair what differs locally, "
            "printing each change. Safe to run at any time: state never moves backwards."
        ),
    )
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--account", help="one account id")
    which.add_argument("--all", action="store_true", help="every account with a customer")
    parser.set_defaults(handler=reconcile)


def _bar(done: int, total: int, width: int = 30) -> str:
    filled = width * done // max(total, 1)
    return f"[{'#' * filled}{'.' * (width - filled)}] {done}/{total}"


def reconcile(args: argparse.Namespace, out: TextIO | None = None) -> int:
    from responseiq_billing.domain.errors import BillingError

    out = out or sys.stdout
    use_case = _container(needs_gateway=True).reconcile()
    accounts = [args.account] if args.account else use_case.accounts()
    changed = failed = 0
    for index, account in enumerate(accounts, start=1):
        try:
            report = use_case(account)
        except BillingError as error:
            # One account the gateway cannot answer for must not stop the others.
            failed += 1
            print(f"billing: {account}: {error.code}: {error.message}", file=sys.stderr)
            continue
        for line in report.changes:
            print(f"{account}: {line}", file=out)
        changed += len(report.changes)
        if args.all and sys.stderr.isatty():
            print(f"\r{_bar(index, len(accounts))}", end="", file=sys.stderr, flush=True)
    if args.all and sys.stderr.isatty():
        print(file=sys.stderr)
    summary = f"reconciled {len(accounts) - failed} account(s), {changed} change(s)"
    print(summary + (f", {failed} failed" if failed else ""), file=out)
    return 1 if failed else 0


# -- stripe setup -------------------------------------------------------------------------------


def add_stripe(sub: Subparsers) -> None:
    parser = sub.add_parser(
        "stripe",
        help="Stripe operations",
        description="Stripe operations (needs STRIPE_API_KEY).",
    )
    actions = parser.add_subparsers(dest="stripe_action", required=True, metavar="ACTION")
    setup = actions.add_parser(
        "setup",
        help="create or update products, prices, the portal configuration and the webhook",
        description=(
            "From the catalog, idempotently create or update products and prices (lookup keys "
            "{plan}_{interval}), a customer-portal configuration whose rules equal ours, and "
            "with --webhook-url the webhook endpoint. Re-running it changes nothing."
        ),
    )
    setup.add_argument("--webhook-url", default=None, help="https://…/webhooks/stripe")
    setup.set_defaults(handler=stripe_setup)


def stripe_setup(args: argparse.Namespace, out: TextIO | None = None) -> int:
    from responseiq_billing.adapters.config import load_catalog
    from responseiq_billing.adapters.stripe.client import build_client
    from responseiq_billing.adapters.stripe.setup import run_setup

    out = out or sys.stdout
    settings = Settings.from_env(os.environ)
    if not settings.stripe_api_key:
        raise ConfigError("STRIPE_API_KEY", "is required for `billing stripe setup`")
    client = build_client(settings.stripe_api_key, api_base=settings.stripe_api_base)
    lines = run_setup(client, load_catalog(settings.catalog_path), webhook_url=args.webhook_url)
    for line in lines:
        print(line, file=out)
    if not lines:
        print("Stripe already matches the catalog: nothing changed.", file=out)
    return 0


# -- paddle setup -------------------------------------------------------------------------------


def add_paddle(sub: Subparsers) -> None:
    parser = sub.add_parser(
        "paddle",
        help="Paddle operations",
        description="Paddle operations (needs PADDLE_API_KEY).",
    )
    actions = parser.add_subparsers(dest="paddle_action", required=True, metavar="ACTION")
    setup = actions.add_parser(
        "setup",
        help="create or update products, prices and the notification destination",
        description=(
            "From the catalog, idempotently create a product per plan and its prices (our plan "
            "id and interval in custom_data; a price whose amount changed is archived and "
            "replaced), and with --webhook-url the notification destination with the events "
            "the service reads. Re-running it changes nothing."
        ),
    )
    setup.add_argument("--webhook-url", default=None, help="https://…/webhooks/paddle")
    setup.set_defaults(handler=paddle_setup)


def paddle_setup(args: argparse.Namespace, out: TextIO | None = None) -> int:
    from responseiq_billing.adapters.config import load_catalog
    from responseiq_billing.adapters.paddle.client import build_client
    from responseiq_billing.adapters.paddle.setup import run_setup

    out = out or sys.stdout
    settings = Settings.from_env(os.environ)
    if not settings.paddle_api_key:
        raise ConfigError("PADDLE_API_KEY", "is required for `billing paddle setup`")
    client = build_client(
        settings.paddle_api_key,
        environment=settings.paddle_environment,
        api_base=settings.paddle_api_base,
    )
    report = run_setup(
        client, load_catalog(settings.catalog_path), notification_url=args.webhook_url
    )
    for line in report.created:
        print(f"created {line}", file=out)
    for line in report.updated:
        print(f"updated {line}", file=out)
    if not report.created and not report.updated:
        print("Paddle already matches the catalog: nothing changed.", file=out)
    if report.endpoint_secret is not None:
        # Paddle shows a destination's secret key once; the operator stores it as a secret.
        print(
            "Set PADDLE_WEBHOOK_SECRET to this destination's secret key (shown once):\n"
            f"  {report.endpoint_secret}",
            file=out,
        )
    return 0


OPS_SUBCOMMANDS = [add_worker, add_inbox, add_reconcile, add_stripe, add_paddle]
