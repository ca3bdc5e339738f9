"""The `billing` command: serve the API, migrate the database, mint development tokens, list plans.

Each subcommand is one `add_*` function registering a parser and its handler in `SUBCOMMANDS`;
a new subcommand is one more function appended there.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from datetime import timedelta
from typing import Any, TextIO

import attrs

from responseiq_billing.adapters.config import MEMORY_URL, ConfigError, Settings, load_catalog

Handler = Callable[[argparse.Namespace], int]
Subparsers = Any  # argparse's _SubParsersAction is private

EXIT_CONFIG = 2
EXIT_FAILED = 1

ENVIRONMENT_HELP = """\
configuration (environment variables):
  BILLING_DATABASE_URL    sqlite:///./billing.db (default), postgresql+psycopg://…, or memory://
                          (unset with the sandbox gateway: ./billing-sandbox.db, emptied on
                          start, as the sandbox gateway keeps its own state in memory)
  BILLING_GATEWAY         sandbox (default without a gateway key), stripe or paddle
  STRIPE_API_KEY          Stripe secret key (stripe gateway only)
  STRIPE_WEBHOOK_SECRET   webhook signing secrets, comma-separated during rotation
  PADDLE_API_KEY          Paddle API key (paddle gateway only)
  PADDLE_WEBHOOK_SECRET   notification destination secret keys, comma-separated during rotation
  PADDLE_ENVIRONMENT      sandbox (default) or production: which Paddle API the key is for
  PADDLE_API_BASE         send Paddle requests to this base URL instead (a local double, a proxy)
  BILLING_AUTH_SECRET     HS256 secret shared with the host application (>= 32 characters;
                          the sandbox uses a fixed development secret when unset)
  BILLING_PUBLIC_URL      where this service is reachable (default http://HOST:PORT when serving)
  BILLING_CATALOG         a TOML plan catalog (default: the built-in Starter/Growth/Business)
  STRIPE_API_BASE         send Stripe requests to this base URL instead (a local double, a proxy)
  STRIPE_PORTAL_CONFIGURATION  the bpc_… id that `billing stripe setup` printed
  BILLING_FRAME_ANCESTORS who may frame the billing page (CSP sources; default 'self')
"""


def _settings(environ: Mapping[str, str] | None = None) -> Settings:
    return Settings.from_env(os.environ if environ is None else environ)


def _shown_url(url: str) -> str:
    if url == MEMORY_URL:
        return url
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def _database_url(settings: Settings) -> str:
    if settings.database_url is not None:
        return settings.database_url
    from responseiq_billing.adapters.sql.database import DEFAULT_DATABASE_URL

    return DEFAULT_DATABASE_URL


# -- serve ----------------------------------------------------------------------------------------


def add_serve(sub: Subparsers) -> None:
    parser = sub.add_parser(
        "serve",
        help="run the HTTP API",
        description=(
            "Run the billing API. The default SQLite database is created and migrated on start; "
            "a PostgreSQL database must be migrated first with `billing db upgrade`."
        ),
        epilog=ENVIRONMENT_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--host", default="127.0.0.1", help="interface to bind (default %(default)s)"
    )
    parser.add_argument("--port", type=int, default=8000, help="port (default %(default)s)")
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        help="worker processes (default %(default)s; the sandbox gateway and memory:// need 1)",
    )
    parser.add_argument(
        "--no-worker",
        action="store_true",
        help="do not run the in-process inbox worker (run `billing worker` processes instead)",
    )
    parser.set_defaults(handler=serve)


def serve(args: argparse.Namespace) -> int:
    import uvicorn

    from responseiq_billing.adapters.app import create_app
    from responseiq_billing.adapters.container import build_container, start

    shown_host = "127.0.0.1" if args.host in ("0.0.0.0", "::") else args.host
    base = f"http://{shown_host}:{args.port}"
    settings = _settings()
    if settings.is_sandbox and not os.environ.get("BILLING_PUBLIC_URL", "").strip():
        # The sandbox's return URLs point at this server; Stripe mode must be told its address.
        settings = attrs.evolve(settings, public_url=base)
    if args.workers < 1:
        raise ConfigError("--workers", "must be at least 1")
    if args.workers > 1 and (settings.is_sandbox or settings.uses_memory):
        raise ConfigError(
            "--workers",
            "the sandbox gateway and memory:// keep state in one process; use --workers 1",
        )
    container = build_container(settings)
    start(container)  # migrates the default SQLite database; refuses a stale PostgreSQL one
    database = _shown_url(container.storage().url)
    print(
        f"ResponseIQ Billing on {base}  (gateway: {settings.gateway.value}, database: {database})"
    )
    print(f"  API and examples: {base}/schema")
    # Name the command as it was invoked (`.venv/bin/billing`), so the hint can be pasted.
    program = sys.argv[0] if os.path.basename(sys.argv[0]) == "billing" else "billing"
    print(f"  A token for an account:  export TOKEN=$({program} token acct_123)")
    print(f'  Then:  curl -H "Authorization: Bearer $TOKEN" {base}/billing/plans')
    # The page is entered with a token, as the host application's Settings -> Billing link does.
    print(
        f"  Settings → Billing in a browser: open the address that "
        f"`echo {base}/billing/session?token=$({program} token acct_demo)` prints"
    )
    if settings.is_sandbox:
        print("  Sandbox — no real payment: checkout and portal pages are served under /sandbox")
    sys.stdout.flush()
    # Our own request log names routes, not paths: uvicorn's access log would print queries.
    if args.workers == 1:
        stop = None
        if not args.no_worker:
            from responseiq_billing.adapters.worker import start_worker_thread

            _, stop = start_worker_thread(
                container.process_inbox(), due=container.apply_due_changes()
            )
            print("  Webhook inbox: one in-process worker (`billing worker` adds more)")
            sys.stdout.flush()
        try:
            uvicorn.run(create_app(container), host=args.host, port=args.port, access_log=False)
        finally:
            if stop is not None:
                stop.set()
    else:
        container.storage().close()
        os.environ["BILLING_PUBLIC_URL"] = settings.public_url
        uvicorn.run(
            "responseiq_billing.adapters.app:app_from_env",
            factory=True,
            host=args.host,
            port=args.port,
            workers=args.workers,
            access_log=False,
        )
    return 0


# -- db -------------------------------------------------------------------------------------------


def add_db(sub: Subparsers) -> None:
    parser = sub.add_parser(
        "db",
        help="migrate the database schema",
        description="Migrate the database named by BILLING_DATABASE_URL.",
        epilog=ENVIRONMENT_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = parser.add_subparsers(dest="db_action", required=True, metavar="ACTION")
    up = actions.add_parser("upgrade", help="migrate to the newest schema (or REVISION)")
    up.add_argument("revision", nargs="?", default="head", help="target (default: head)")
    up.set_defaults(handler=db_upgrade)
    down = actions.add_parser("downgrade", help="migrate back to REVISION ('base' empties it)")
    down.add_argument("revision", help="target revision id, or 'base'")
    down.set_defaults(handler=db_downgrade)


def _sql_url() -> str:
    url = _database_url(_settings())
    if url == MEMORY_URL:
        raise ConfigError("BILLING_DATABASE_URL", "memory:// has no schema to migrate")
    return url


def db_upgrade(args: argparse.Namespace) -> int:
    from responseiq_billing.adapters.sql.migrate import upgrade

    url = _sql_url()
    upgrade(url, args.revision)
    print(f"{_shown_url(url)}: upgraded to {args.revision}")
    return 0


def db_downgrade(args: argparse.Namespace) -> int:
    from responseiq_billing.adapters.sql.migrate import downgrade

    url = _sql_url()
    downgrade(url, args.revision)
    print(f"{_shown_url(url)}: downgraded to {args.revision}")
    return 0


# -- token ----------------------------------------------------------------------------------------

_TTL = re.compile(r"^(\d+)([smhd]?)$")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_ttl(text: str) -> timedelta:
    match = _TTL.match(text.strip())
    if match is None or int(match.group(1)) == 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration like 90s, 30m, 12h or 7d")
    return timedelta(seconds=int(match.group(1)) * _UNITS[match.group(2)])


def add_token(sub: Subparsers) -> None:
    parser = sub.add_parser(
        "token",
        help="print a development token for an account",
        description=(
            "Print a bearer token (HS256 JWT, signed with BILLING_AUTH_SECRET) whose `sub` is "
            "ACCOUNT_ID, as the host application would issue one. Only the token goes to stdout, "
            "so `export TOKEN=$(billing token acct_123)` works."
        ),
    )
    parser.add_argument("account_id", metavar="ACCOUNT_ID", help="the account the token acts for")
    parser.add_argument(
        "--ttl",
        type=parse_ttl,
        default=timedelta(hours=12),
        help="lifetime: 90s, 30m, 12h, 7d (default 12h)",
    )
    parser.set_defaults(handler=token)


def token(args: argparse.Namespace) -> int:
    from responseiq_billing.adapters.http.auth import ACCOUNT_ID, MAX_TOKEN_LIFETIME, issue_token

    account = args.account_id.strip()
    if ACCOUNT_ID.fullmatch(account) is None:
        raise ConfigError("ACCOUNT_ID", "must be 1 to 64 letters, digits and _ . : @ | -")
    if args.ttl > MAX_TOKEN_LIFETIME:
        raise ConfigError("--ttl", "must be at most 366d: the service refuses longer tokens")
    settings = _settings()
    print(
        issue_token(
            settings.auth_secret,
            account,
            ttl=args.ttl,
            audience=settings.auth_audience,
            issuer=settings.auth_issuer,
        )
    )
    return 0


# -- plans ----------------------------------------------------------------------------------------


def add_plans(sub: Subparsers) -> None:
    parser = sub.add_parser(
        "plans",
        help="list the plan catalog",
        description="List the plans on sale (BILLING_CATALOG, or the built-in catalog).",
    )
    parser.set_defaults(handler=plans)


def plans(args: argparse.Namespace, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    catalog = load_catalog(_settings().catalog_path)
    print(f"{'plan':<12} {'name':<14} {'month':>12} {'year':>12}  features", file=out)
    for plan in sorted(catalog.plans, key=lambda p: p.rank):
        prices = {i.value: str(m) for i, m in plan.prices.items()}
        f = plan.features
        features = ", ".join(
            [
                f"seats {'unlimited' if f.seats is None else f.seats}",
                "responses/month "
                + ("unlimited" if f.monthly_responses is None else f"{f.monthly_responses:,}"),
                *sorted(f.flags),
            ]
        )
        print(
            f"{plan.id:<12} {plan.name:<14} {prices.get('month', '-'):>12} "
            f"{prices.get('year', '-'):>12}  {features}",
            file=out,
        )
    return 0


# -- the parser -----------------------------------------------------------------------------------


def _ops() -> list[Callable[[Subparsers], None]]:
    from responseiq_billing.adapters.cli_ops import OPS_SUBCOMMANDS

    return list(OPS_SUBCOMMANDS)


SUBCOMMANDS: list[Callable[[Subparsers], None]] = [
    add_serve,
    add_db,
    add_token,
    add_plans,
    *_ops(),
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="billing",
        description=(
            "ResponseIQ Billing: subscriptions, plan changes, the customer portal and invoices. "
            "Runs with a sandbox payment gateway and a local SQLite database unless configured."
        ),
        epilog=ENVIRONMENT_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in SUBCOMMANDS:
        add(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handler: Handler = args.handler
    try:
        return handler(args)
    except ConfigError as error:
        # One line naming the setting; never a traceback, never a secret's value.
        print(f"billing: configuration error: {error}", file=sys.stderr)
        return EXIT_CONFIG
    except Exception as error:
        message = _operator_message(error)
        if message is None:
            raise
        print(f"billing: {message}", file=sys.stderr)
        return EXIT_FAILED


def _operator_message(error: Exception) -> str | None:
    """Failures an operator fixes (a stale schema, an unreachable database), as one line."""
    try:
        from sqlalchemy.exc import OperationalError

        from responseiq_billing.adapters.sql.migrate import SchemaOutOfDate
    except ImportError:  # pragma: no cover - the SQL adapter ships with the package
        return None
    if isinstance(error, SchemaOutOfDate):
        return str(error)
    if isinstance(error, OperationalError):
        # The driver's text can hold the URL with its password: name the failure only.
        if "does not exist" in str(error.orig):
            return (
                "the database named by BILLING_DATABASE_URL does not exist: create it "
                "(e.g. `createdb billing`), then run `billing db upgrade`"
            )
        return "cannot reach the database named by BILLING_DATABASE_URL (check it is running)"
    return None


if __name__ == "__main__":
    raise SystemExit(main())
