"""Configuration from the environment: each problem stops start-up with one line naming it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from responseiq_billing.adapters.config import (
    SANDBOX_AUTH_SECRET,
    ConfigError,
    GatewayKind,
    PaddleEnvironment,
    Settings,
    load_catalog,
)
from responseiq_billing.adapters.container import build_container
from responseiq_billing.adapters.paddle.gateway import PaddleGateway
from responseiq_billing.adapters.paddle.webhooks import PaddleEventDecoder, PaddleWebhookVerifier
from responseiq_billing.application.ports import ScheduledChanges
from responseiq_billing.application.scheduled_changes import CoreKeptChanges
from responseiq_billing.domain.money import Money
from responseiq_billing.domain.plans import Interval

GOOD_SECRET = "s" * 32
STRIPE = {
    "STRIPE_API_KEY": "sk_test_123",
    "BILLING_AUTH_SECRET": GOOD_SECRET,
    "BILLING_PUBLIC_URL": "https://billing.example.com",
}

PADDLE = {
    "PADDLE_API_KEY": "pdl_sdbx_apikey_hidden",
    "BILLING_AUTH_SECRET": GOOD_SECRET,
    "BILLING_PUBLIC_URL": "https://billing.example.com",
}


def test_defaults_are_the_sandbox_with_a_development_secret() -> None:
    settings = Settings.from_env({})
    assert settings.gateway is GatewayKind.SANDBOX
    assert settings.auth_secret == SANDBOX_AUTH_SECRET
    assert settings.public_url == "http://127.0.0.1:8000"
    assert settings.database_url is None
    assert settings.catalog_path is None


def test_a_stripe_key_selects_the_stripe_gateway() -> None:
    settings = Settings.from_env(STRIPE | {"STRIPE_WEBHOOK_SECRET": "whsec_a, whsec_b"})
    assert settings.gateway is GatewayKind.STRIPE
    assert settings.stripe_webhook_secrets == ("whsec_a", "whsec_b")


def test_a_paddle_key_selects_the_paddle_gateway_in_paddles_sandbox_by_default() -> None:
    settings = Settings.from_env(PADDLE | {"PADDLE_WEBHOOK_SECRET": "pdl_ntfset_a , pdl_ntfset_b"})
    assert settings.gateway is GatewayKind.PADDLE
    assert settings.paddle_webhook_secrets == ("pdl_ntfset_a", "pdl_ntfset_b")
    assert settings.paddle_environment is PaddleEnvironment.SANDBOX
    assert settings.paddle_api_base is None
    production = Settings.from_env(
        PADDLE | {"PADDLE_ENVIRONMENT": "Production", "PADDLE_API_BASE": "http://127.0.0.1:9/"}
    )
    assert production.paddle_environment is PaddleEnvironment.PRODUCTION
    assert production.paddle_api_base == "http://127.0.0.1:9"


def test_the_paddle_container_wires_the_paddle_adapter_and_its_webhook() -> None:
    settings = Settings.from_env(
        PADDLE | {"PADDLE_API_BASE": "http://127.0.0.1:9", "PADDLE_WEBHOOK_SECRET": "pdl_ntfset_a"}
    )
    container = build_container(settings)

    assert isinstance(container.gateway_adapter(), PaddleGateway)
    # The use cases get the port that keeps a downgrade in the core until the renewal.
    gateway = container.gateway()
    assert isinstance(gateway, CoreKeptChanges)
    assert gateway.inner is container.gateway_adapter()
    assert gateway.scheduled_changes is ScheduledChanges.CORE
    assert isinstance(container.paddle_webhook_verifier(), PaddleWebhookVerifier)
    assert container.webhook_verifier() is None  # no Stripe secret: Stripe's route is not served
    decoders = container.event_decoders()
    assert isinstance(decoders["paddle"], PaddleEventDecoder)
    assert "stripe" not in decoders


def test_secrets_never_appear_in_the_settings_repr() -> None:
    settings = Settings.from_env(STRIPE | {"STRIPE_WEBHOOK_SECRET": "whsec_hidden"})
    text = repr(settings)
    assert "sk_test_123" not in text
    assert GOOD_SECRET not in text
    assert "whsec_hidden" not in text
    paddle = repr(Settings.from_env(PADDLE | {"PADDLE_WEBHOOK_SECRET": "pdl_ntfset_hidden"}))
    assert "pdl_sdbx_apikey_hidden" not in paddle
    assert "pdl_ntfset_hidden" not in paddle


@pytest.mark.parametrize(
    ("env", "setting"),
    [
        ({"BILLING_GATEWAY": "paypal"}, "BILLING_GATEWAY"),
        ({"BILLING_GATEWAY": "stripe"}, "STRIPE_API_KEY"),
        ({"BILLING_GATEWAY": "paddle"}, "PADDLE_API_KEY"),
        ({**PADDLE, "STRIPE_API_KEY": "sk_test_1"}, "BILLING_GATEWAY"),
        ({**PADDLE, "PADDLE_ENVIRONMENT": "staging"}, "PADDLE_ENVIRONMENT"),
        ({**PADDLE, "PADDLE_API_BASE": "localhost:9"}, "PADDLE_API_BASE"),
        ({**PADDLE, "BILLING_AUTH_SECRET": ""}, "BILLING_AUTH_SECRET"),
        ({**PADDLE, "BILLING_AUTH_SECRET": SANDBOX_AUTH_SECRET}, "BILLING_AUTH_SECRET"),
        ({**PADDLE, "BILLING_PUBLIC_URL": ""}, "BILLING_PUBLIC_URL"),
        (
            {**PADDLE, "BILLING_SANDBOX_CLOCK_START": "2027-01-31T12:00:00Z"},
            "BILLING_SANDBOX_CLOCK_START",
        ),
        ({"STRIPE_API_KEY": "pk_test_publishable"}, "STRIPE_API_KEY"),
        (
            {"STRIPE_API_KEY": "sk_test_1", "BILLING_PUBLIC_URL": "https://x.io"},
            "BILLING_AUTH_SECRET",
        ),
        ({**STRIPE, "BILLING_PUBLIC_URL": ""}, "BILLING_PUBLIC_URL"),
        ({"BILLING_AUTH_SECRET": "too-short"}, "BILLING_AUTH_SECRET"),
        ({"BILLING_PUBLIC_URL": "ftp://files"}, "BILLING_PUBLIC_URL"),
        ({"BILLING_PUBLIC_URL": "https://x.io/?a=1"}, "BILLING_PUBLIC_URL"),
        ({"BILLING_DATABASE_URL": "mysql://u:pw@h/db"}, "BILLING_DATABASE_URL"),
        ({"STRIPE_WEBHOOK_SECRET": "whsec_ok,not-a-secret"}, "STRIPE_WEBHOOK_SECRET"),
        ({"BILLING_CATALOG": "/no/such/catalog.toml"}, "BILLING_CATALOG"),
        ({**STRIPE, "BILLING_AUTH_SECRET": SANDBOX_AUTH_SECRET}, "BILLING_AUTH_SECRET"),
        ({"BILLING_SANDBOX_CLOCK_START": "31 January"}, "BILLING_SANDBOX_CLOCK_START"),
        ({"BILLING_SANDBOX_CLOCK_START": "2027-01-31T12:00:00"}, "BILLING_SANDBOX_CLOCK_START"),
        (
            {**STRIPE, "BILLING_SANDBOX_CLOCK_START": "2027-01-31T12:00:00Z"},
            "BILLING_SANDBOX_CLOCK_START",
        ),
    ],
)
def test_a_missing_or_malformed_setting_is_named(env: dict[str, str], setting: str) -> None:
    with pytest.raises(ConfigError) as caught:
        Settings.from_env(env)
    assert caught.value.setting == setting
    assert str(caught.value).startswith(f"{setting}: ")


def test_the_sandbox_clock_starts_where_the_setting_says() -> None:
    settings = Settings.from_env({"BILLING_SANDBOX_CLOCK_START": "2028-02-29T08:00:00Z"})
    clock = build_container(settings).clock()
    assert clock.now().isoformat() == "2028-02-29T08:00:00+00:00"


def test_a_bad_database_url_is_reported_without_its_password() -> None:
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({"BILLING_DATABASE_URL": "mysql://user:hunter2@db/billing"})
    assert "hunter2" not in str(caught.value)


CATALOG = """
[plans.solo]
name = "Solo"
currency = "EUR"
prices = { month = 900 }
features = { seats = 1, monthly_responses = 500 }

[plans.team]
name = "Team"
currency = "EUR"
prices = { month = 2900, year = 29000 }
features = { seats = "unlimited", monthly_responses = 5000, flags = ["ai_replies"] }
"""


def test_a_catalog_file_maps_plans_and_intervals_to_prices_and_features(tmp_path: Path) -> None:
    path = tmp_path / "catalog.toml"
    path.write_text(CATALOG)
    catalog = load_catalog(path)
    assert [p.id for p in catalog.plans] == ["solo", "team"]
    assert catalog.price("team", "year").amount == Money(29000, "EUR")
    assert catalog.plan("team").features.seats is None
    assert catalog.plan("team").features.flags == frozenset({"ai_replies"})
    assert Interval.YEAR not in catalog.plan("solo").prices
    assert [p.rank for p in catalog.plans] == [1, 2]


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("plans = 3", "[plans]"),
        ("[plans.x]\ncurrency='USD'\nprices={week=1}", "plans.x.prices.week"),
        ("[plans.x]\ncurrency='USD'\nprices={month=-5}", "plans.x.prices.month"),
        ("[plans.x]\ncurrency='USD'\nprices={month=1.5}", "plans.x.prices.month"),
        ("[plans.x]\nprices={month=100}", "plans.x.currency"),
        ("[plans.x]\ncurrency='dollars'\nprices={month=100}", "plans.x.currency"),
        ("[plans.x]\ncurrency='USD'\nprices={month=100}\ncolour='red'", "plans.x"),
        (
            "[plans.x]\ncurrency='USD'\nprices={month=100}\nfeatures={seats='many'}",
            "plans.x.features.seats",
        ),
        ("[plans.x\n", "not valid TOML"),
    ],
)
def test_a_bad_catalog_names_the_place_of_the_problem(
    tmp_path: Path, text: str, where: str
) -> None:
    path = tmp_path / "catalog.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_catalog(path)
    assert caught.value.setting == "BILLING_CATALOG"
    assert where in caught.value.problem


def test_the_container_uses_the_catalog_file(tmp_path: Path) -> None:
    path = tmp_path / "catalog.toml"
    path.write_text(CATALOG)
    container = build_container(
        Settings.from_env({"BILLING_CATALOG": str(path), "BILLING_DATABASE_URL": "memory://"})
    )
    assert [p.id for p in container.list_plans()()] == ["solo", "team"]


def _billing(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "responseiq_billing", *args],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", **env},
        timeout=60,
    )


def test_the_cli_stops_on_a_bad_setting_with_one_line_and_no_secret(tmp_path: Path) -> None:
    result = _billing(
        "serve",
        env={"BILLING_GATEWAY": "stripe", "STRIPE_API_KEY": "sk_live_supersecret"},
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "billing: configuration error: BILLING_AUTH_SECRET: is required when the gateway is stripe"
    ]
    assert "sk_live_supersecret" not in result.stdout + result.stderr
