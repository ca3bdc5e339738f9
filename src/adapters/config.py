"""Settings from the environment and the plan catalog file, each problem named in one line."""

from __future__ import annotations

import enum
import re
import tomllib
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import attrs

from responseiq_billing.domain.money import Money
from responseiq_billing.domain.plans import Catalog, Features, Interval, Plan, default_catalog

# Sandbox mode has no real money behind it, so a fixed development secret keeps the
# README's two commands working; with the Stripe gateway a real secret is required.
SANDBOX_AUTH_SECRET = "sandbox-only-development-secret-not-for-production"
MIN_SECRET_LENGTH = 32
DEFAULT_PUBLIC_URL = "http://127.0.0.1:8000"
MEMORY_URL = "memory://"


class ConfigError(Exception):
    """A setting is missing or malformed. The message names the setting, never its value."""

    def __init__(self, setting: str, problem: str) -> None:
        self.setting = setting
        self.problem = problem
        super().__init__(f"{setting}: {problem}")


class GatewayKind(enum.Enum):
    SANDBOX = "sandbox"
    STRIPE = "stripe"
    PADDLE = "paddle"


class PaddleEnvironment(enum.Enum):
    """Which of Paddle's APIs a key belongs to (`PADDLE_ENVIRONMENT`)."""

    SANDBOX = "sandbox"
    PRODUCTION = "production"


def _secret_repr(value: object) -> str:
    return "'***'" if value else repr(value)


@attrs.frozen
class Settings:
    """Everything the service reads from its environment. Secrets are hidden from `repr`."""

    gateway: GatewayKind
    database_url: str | None  # None: the storage adapter's default (a local SQLite file)
    public_url: str
    auth_secret: str = attrs.field(repr=_secret_repr)
    stripe_api_key: str | None = attrs.field(default=None, repr=_secret_repr)
    stripe_webhook_secrets: tuple[str, ...] = attrs.field(default=(), repr=_secret_repr)
    catalog_path: Path | None = None
    stripe_api_base: str | None = None  # a local double or proxy instead of api.stripe.com
    stripe_portal_configuration: str | None = None  # `bpc_…`, printed by `billing stripe setup`
    paddle_api_key: str | None = attrs.field(default=None, repr=_secret_repr)
    paddle_webhook_secrets: tuple[str, ...] = attrs.field(default=(), repr=_secret_repr)
    paddle_environment: PaddleEnvironment = PaddleEnvironment.SANDBOX
    paddle_api_base: str | None = None  # a local double or proxy instead of Paddle's API
    # Where the sandbox clock starts (default: now). Lets a demo or a test pin the calendar,
    # e.g. a subscription started on the 31st of a month.
    sandbox_clock_start: datetime | None = None
    auth_audience: str | None = None  # when set, tokens must carry this `aud`
    auth_issuer: str | None = None  # when set, tokens must carry this `iss`
    # Who may embed the billing page in a frame (CSP `frame-ancestors` sources).
    frame_ancestors: tuple[str, ...] = ("'self'",)

    @property
    def is_sandbox(self) -> bool:
        return self.gateway is GatewayKind.SANDBOX

    @property
    def uses_memory(self) -> bool:
        return self.database_url == MEMORY_URL

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Settings:
        """Read and check every setting; the first problem raises `ConfigError`."""

        def get(name: str) -> str | None:
            value = environ.get(name)
            return value.strip() if value is not None and value.strip() else None

        api_key = get("STRIPE_API_KEY")
        paddle_key = get("PADDLE_API_KEY")
        gateway = _gateway(get("BILLING_GATEWAY"), api_key, paddle_key)
        if gateway is GatewayKind.STRIPE:
            if api_key is None:
                raise ConfigError("STRIPE_API_KEY", "is required when BILLING_GATEWAY is stripe")
            if not api_key.startswith(("sk_", "rk_")):
                raise ConfigError("STRIPE_API_KEY", "must be a Stripe secret key (sk_… or rk_…)")
        if gateway is GatewayKind.PADDLE and paddle_key is None:
            raise ConfigError("PADDLE_API_KEY", "is required when BILLING_GATEWAY is paddle")
        secrets = _secrets(get("STRIPE_WEBHOOK_SECRET"))
        for secret in secrets:
            if not secret.startswith("whsec_"):
                raise ConfigError(
                    "STRIPE_WEBHOOK_SECRET", "each comma-separated secret must start with whsec_"
                )
        paddle_secrets = _secrets(get("PADDLE_WEBHOOK_SECRET"))
        paddle_environment = _paddle_environment(get("PADDLE_ENVIRONMENT"))
        real_money = gateway is not GatewayKind.SANDBOX
        auth_secret = get("BILLING_AUTH_SECRET")
        if auth_secret is None:
            if real_money:
                raise ConfigError(
                    "BILLING_AUTH_SECRET", f"is required when the gateway is {gateway.value}"
                )
            auth_secret = SANDBOX_AUTH_SECRET
        elif real_money and auth_secret == SANDBOX_AUTH_SECRET:
            # The development secret is published in this repository: anyone could sign tokens.
            raise ConfigError("BILLING_AUTH_SECRET", "must not be the sandbox development secret")
        elif len(auth_secret) < MIN_SECRET_LENGTH:
            raise ConfigError(
                "BILLING_AUTH_SECRET", f"must be at least {MIN_SECRET_LENGTH} characters long"
            )
        public_url = get("BILLING_PUBLIC_URL")
        if public_url is None:
            if real_money:
                raise ConfigError(
                    "BILLING_PUBLIC_URL", f"is required when the gateway is {gateway.value}"
                )
            public_url = DEFAULT_PUBLIC_URL
        public_url = _check_url("BILLING_PUBLIC_URL", public_url)
        database_url = get("BILLING_DATABASE_URL")
        if database_url is not None:
            _check_database_url(database_url)
        api_base = get("STRIPE_API_BASE")
        if api_base is not None:
            api_base = _check_url("STRIPE_API_BASE", api_base)
        paddle_base = get("PADDLE_API_BASE")
        if paddle_base is not None:
            paddle_base = _check_url("PADDLE_API_BASE", paddle_base)
        portal_configuration = get("STRIPE_PORTAL_CONFIGURATION")
        if portal_configuration is not None and not portal_configuration.startswith("bpc_"):
            raise ConfigError(
                "STRIPE_PORTAL_CONFIGURATION", "must be a portal configuration id (bpc_…)"
            )
        clock_start = _clock_start(get("BILLING_SANDBOX_CLOCK_START"), gateway)
        catalog = get("BILLING_CATALOG")
        catalog_path = Path(catalog) if catalog is not None else None
        if catalog_path is not None:
            load_catalog(catalog_path)  # fail at start-up, not on the first request
        return cls(
            gateway=gateway,
            database_url=database_url,
            public_url=public_url,
            auth_secret=auth_secret,
            stripe_api_key=api_key,
            stripe_webhook_secrets=secrets,
            catalog_path=catalog_path,
            stripe_api_base=api_base,
            stripe_portal_configuration=portal_configuration,
            paddle_api_key=paddle_key,
            paddle_webhook_secrets=paddle_secrets,
            paddle_environment=paddle_environment,
            paddle_api_base=paddle_base,
            sandbox_clock_start=clock_start,
            auth_audience=get("BILLING_AUTH_AUDIENCE"),
            auth_issuer=get("BILLING_AUTH_ISSUER"),
            frame_ancestors=_frame_ancestors(get("BILLING_FRAME_ANCESTORS")),
        )


def _gateway(value: str | None, stripe_key: str | None, paddle_key: str | None) -> GatewayKind:
    if value is None:
        if stripe_key and paddle_key:
            raise ConfigError(
                "BILLING_GATEWAY", "must say which gateway when keys for both are set"
            )
        if paddle_key:
            return GatewayKind.PADDLE
        return GatewayKind.STRIPE if stripe_key else GatewayKind.SANDBOX
    try:
        return GatewayKind(value.lower())
    except ValueError:
        raise ConfigError("BILLING_GATEWAY", "must be 'sandbox', 'stripe' or 'paddle'") from None


def _secrets(value: str | None) -> tuple[str, ...]:
    """Comma-separated webhook signing secrets: the current one first during a rotation."""
    return tuple(s.strip() for s in (value or "").split(",") if s.strip())


def _paddle_environment(value: str | None) -> PaddleEnvironment:
    if value is None:
        return PaddleEnvironment.SANDBOX
    try:
        return PaddleEnvironment(value.lower())
    except ValueError:
        raise ConfigError("PADDLE_ENVIRONMENT", "must be 'sandbox' or 'production'") from None


def _clock_start(value: str | None, gateway: GatewayKind) -> datetime | None:
    name = "BILLING_SANDBOX_CLOCK_START"
    if value is None:
        return None
    if gateway is not GatewayKind.SANDBOX:
        raise ConfigError(
            name, "applies to the sandbox gateway only (a real gateway's clock is real)"
        )
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ConfigError(name, "must be an ISO 8601 time such as 2027-01-31T12:00:00Z") from None
    if moment.tzinfo is None:
        raise ConfigError(name, "needs a time zone, e.g. 2027-01-31T12:00:00Z")
    return moment


# A CSP source: 'self', 'none', a scheme ("https:") or an origin, optionally with a wildcard
# subdomain and a port. Nothing that could end the header's directive (`;`, `,`, quotes).
_FRAME_SOURCE = re.compile(
    r"'self'|'none'|https?:|https?://(\*\.)?[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?(:\d{1,5})?"
)


def _frame_ancestors(value: str | None) -> tuple[str, ...]:
    name = "BILLING_FRAME_ANCESTORS"
    if value is None:
        return ("'self'",)
    sources = tuple(value.split())
    for source in sources:
        if _FRAME_SOURCE.fullmatch(source) is None:
            raise ConfigError(
                name,
                "must be space-separated sources such as 'self' https://app.example.com",
            )
    if "'none'" in sources and len(sources) > 1:
        raise ConfigError(name, "'none' cannot be combined with other sources")
    return sources


def _check_url(name: str, value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(name, "must be an http(s) URL such as https://billing.example.com")
    if parts.query or parts.fragment:
        raise ConfigError(name, "must not have a query or fragment")
    return value.rstrip("/")


def _check_database_url(value: str) -> None:
    if value == MEMORY_URL:
        return
    scheme = urlsplit(value).scheme
    if not scheme or scheme.split("+")[0] not in ("sqlite", "postgresql", "postgres"):
        # Name the scheme only: the URL itself may hold a password.
        raise ConfigError(
            "BILLING_DATABASE_URL",
            "must be a sqlite:///…, postgresql+psycopg://… or memory:// URL",
        )


# -- the catalog file -------------------------------------------------------------------------


def load_catalog(path: Path | None) -> Catalog:
    """The catalog from a TOML file, or the built-in default catalog when `path` is None.

    ```toml
    [plans.starter]
    name = "Starter"
    currency = "USD"
    prices = { month = 1900, year = 19000 }      # minor units per interval
    features = { seats = 2, monthly_responses = 1000, flags = ["ai_replies"] }
    ```
    A limit of `"unlimited"` means no limit. Plans are ranked in file order.
    """
    if path is None:
        return default_catalog()
    name = "BILLING_CATALOG"
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(name, f"no such file: {path}") from None
    except OSError as error:
        raise ConfigError(name, f"cannot read {path}: {error.strerror}") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(name, f"{path} is not valid TOML ({error})") from None
    except UnicodeDecodeError:
        raise ConfigError(name, f"{path} is not UTF-8 text") from None
    return parse_catalog(raw, source=str(path))


def parse_catalog(raw: Mapping[str, Any], *, source: str = "catalog") -> Catalog:
    def fail(where: str, problem: str) -> ConfigError:
        return ConfigError("BILLING_CATALOG", f"{source}: {where}: {problem}")

    plans_raw = raw.get("plans")
    if not isinstance(plans_raw, dict) or not plans_raw:
        raise fail("[plans]", "needs at least one [plans.<id>] table")
    unknown = set(raw) - {"plans"}
    if unknown:
        raise fail(", ".join(sorted(unknown)), "unknown top-level key")
    plans: list[Plan] = []
    for rank, (plan_id, body) in enumerate(plans_raw.items(), start=1):
        where = f"plans.{plan_id}"
        if not isinstance(body, dict):
            raise fail(where, "must be a table")
        extra = set(body) - {"name", "currency", "prices", "features"}
        if extra:
            raise fail(where, f"unknown key(s) {', '.join(sorted(extra))}")
        name = body.get("name", plan_id)
        currency = body.get("currency")
        if not isinstance(name, str) or not name:
            raise fail(f"{where}.name", "must be a non-empty string")
        if not isinstance(currency, str):
            raise fail(f"{where}.currency", 'is required, e.g. "USD"')
        prices = body.get("prices")
        if not isinstance(prices, dict) or not prices:
            raise fail(f"{where}.prices", "needs at least one of month = …, year = …")
        amounts: dict[Interval, Money] = {}
        for interval_name, amount in prices.items():
            try:
                interval = Interval(interval_name)
            except ValueError:
                raise fail(f"{where}.prices.{interval_name}", "use month or year") from None
            if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
                raise fail(
                    f"{where}.prices.{interval_name}", "must be a positive integer (minor units)"
                )
            try:
                amounts[interval] = Money(amount, currency)
            except ValueError:
                raise fail(f"{where}.currency", "must be an ISO 4217 code such as USD") from None
        if len({m.currency for m in amounts.values()}) != 1:
            raise fail(f"{where}.currency", "one currency per plan")
        plans.append(
            Plan(
                id=plan_id,
                name=name,
                prices=amounts,
                features=_features(body.get("features", {}), f"{where}.features", fail),
                rank=rank,
            )
        )
    return Catalog(plans)


def _features(raw: object, where: str, fail: Any) -> Features:
    if not isinstance(raw, dict):
        raise fail(where, "must be a table")
    extra = set(raw) - {"seats", "monthly_responses", "flags"}
    if extra:
        raise fail(where, f"unknown key(s) {', '.join(sorted(extra))}")

    def limit(key: str) -> int | None:
        value = raw.get(key, "unlimited")
        if value == "unlimited":
            return None
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise fail(f"{where}.{key}", 'must be a non-negative integer or "unlimited"')
        return value

    flags = raw.get("flags", [])
    if not isinstance(flags, list) or not all(isinstance(f, str) and f for f in flags):
        raise fail(f"{where}.flags", "must be a list of strings")
    return Features(seats=limit("seats"), monthly_responses=limit("monthly_responses"), flags=flags)
