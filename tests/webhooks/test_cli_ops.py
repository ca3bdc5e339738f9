"""`billing worker`, `billing inbox` and `billing reconcile` against a Stripe deployment's database."""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import TestClient

from responseiq_billing.adapters.app import create_app
from responseiq_billing.adapters.cli import main
from responseiq_billing.adapters.config import Settings
from responseiq_billing.adapters.container import Container, build_container
from responseiq_billing.adapters.fake.clock import ControllableClock
from responseiq_billing.application.ports import InboxStatus
from responseiq_billing.domain.plans import default_catalog
from tests.sql_fixtures import sqlite_url
from tests.stripe_double import StripeDouble, running_double
from tests.webhooks.conftest import Stripe, sign_up, subscription_shown
from tests.webhooks.harness import inbox_rows, stripe_env


@pytest.fixture
def double() -> Iterator[StripeDouble]:
    # The CLI reads the system clock; the double's time starts there.
    with running_double(ControllableClock(datetime.now(UTC)), default_catalog()) as stripe_double:
        yield stripe_double


@pytest.fixture
def env(double: StripeDouble, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The deployment's environment, as `billing` reads it from os.environ."""
    values = stripe_env(double, sqlite_url(tmp_path))
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    return values


@pytest.fixture
def container(env: dict[str, str]) -> Container:
    """The running service's container (the same database the commands open)."""
    return build_container(Settings.from_env(env))


@pytest.fixture
def client(container: Container) -> Iterator[TestClient[Any]]:
    with TestClient(create_app(container)) as test_client:
        yield test_client


@pytest.fixture
def stripe(client: TestClient[Any], double: StripeDouble) -> Stripe:
    return Stripe(client, double)


def catch_up(double: StripeDouble) -> None:
    """Stripe's time is the wall's: the double's frozen clock moves to now before a change."""
    double.advance_to(datetime.now(UTC) + timedelta(seconds=1))


def cancel_all_in_the_portal(double: StripeDouble) -> None:
    """Every subscription cancelled on Stripe's portal; the webhooks never arrive."""
    catch_up(double)
    for sub in double.state.all("subscription"):
        double.portal_cancel(sub["id"])


def billing(*argv: str) -> tuple[int, str, str]:
    """`billing ARGV...`: exit code, stdout, stderr.

    Redirected here rather than with capsys: Litestar's log handler keeps the stderr it
    found when an app was made, and capsys closes its stream when the test ends.
    """
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(argv))
    return code, out.getvalue(), err.getvalue()


def stats_lines(out: str) -> dict[str, str]:
    return dict(line.split(": ", 1) for line in out.strip().splitlines())


# -- worker and inbox ---------------------------------------------------------------------------


def test_worker_once_applies_every_stored_event_and_exits(
    stripe: Stripe,
    client: TestClient[Any],
    double: StripeDouble,
    container: Container,
) -> None:
    sign_up(client, double, "acct_cli_worker", "growth")
    events = stripe.deliver_new()

    code, out, _ = billing("worker", "--once")

    assert code == 0
    assert out.startswith("worker ") and out.strip().endswith(f"processed {len(events)} event(s)")
    assert {r.status for r in inbox_rows(container)} == {InboxStatus.APPLIED}
    assert billing("worker", "--once")[1].strip().endswith("processed 0 event(s)")


def test_inbox_shows_depth_oldest_pending_parked_and_applied(
    stripe: Stripe,
    client: TestClient[Any],
    double: StripeDouble,
) -> None:
    sign_up(client, double, "acct_cli_stats", "starter")
    events = stripe.deliver_new()

    code, out, _ = billing("inbox")

    assert code == 0
    shown = stats_lines(out)
    assert shown["pending"] == str(len(events))
    assert shown["oldest pending"].endswith("s") and int(shown["oldest pending"][:-1]) < 60
    assert (shown["parked"], shown["applied"]) == ("0", "0")

    billing("worker", "--once")
    after = stats_lines(billing("inbox")[1])
    assert after == {
        "pending": "0",
        "oldest pending": "-",
        "parked": "0",
        "applied": str(len(events)),
    }


def test_an_operator_parks_lists_and_retries_an_event(
    stripe: Stripe,
    client: TestClient[Any],
    double: StripeDouble,
    container: Container,
) -> None:
    sign_up(client, double, "acct_cli_park", "growth")
    stripe.deliver_new()
    billing("worker", "--once")
    sub_id = double.state.all("subscription")[0]["id"]
    catch_up(double)
    double.portal_cancel(sub_id)
    [cancelled] = stripe.deliver_new()

    code, out, _ = billing("inbox", "park", cancelled["id"], "--reason", "investigating")
    assert (code, out.strip()) == (0, f"{cancelled['id']}: parked")
    assert billing("worker", "--once")[1].strip().endswith("processed 0 event(s)")

    code, out, _ = billing("inbox", "list", "--status", "parked")
    assert code == 0
    header, *lines = out.strip().splitlines()
    assert header.split()[:4] == ["event", "type", "status", "tries"]
    assert len(lines) == 1
    assert lines[0].split()[:3] == [cancelled["id"], "customer.subscription.updated", "parked"]
    assert lines[0].rstrip().endswith("investigating")
    assert stats_lines(billing("inbox")[1])["parked"] == "1"

    code, out, _ = billing("inbox", "retry", cancelled["id"])
    assert (code, out.strip()) == (0, f"{cancelled['id']}: due now")
    assert billing("worker", "--once")[1].strip().endswith("processed 1 event(s)")

    shown = subscription_shown(client, "acct_cli_park")
    assert shown["cancel_at_period_end"] is True
    assert billing("inbox", "list", "--status", "parked")[1].strip().count("\n") == 0
    applied = billing("inbox", "list", "--status", "applied")[1]
    assert cancelled["id"] in applied


def test_retrying_or_parking_an_unknown_or_applied_event_is_refused(
    stripe: Stripe,
    client: TestClient[Any],
    double: StripeDouble,
    env: dict[str, str],
) -> None:
    sign_up(client, double, "acct_cli_refuse", "starter")
    [first, *_] = stripe.deliver_new()
    billing("worker", "--once")

    for action in ("retry", "park"):
        for event_id in ("evt_unknown", first["id"]):
            code, out, err = billing("inbox", action, event_id)
            assert (code, out) == (1, "")
            assert f"billing: no unapplied event {event_id}" in err.splitlines()


# -- reconcile ----------------------------------------------------------------------------------


def test_reconcile_an_account_repairs_state_made_stale_in_the_portal_and_prints_the_change(
    client: TestClient[Any],
    double: StripeDouble,
    container: Container,
) -> None:
    sign_up(client, double, "acct_cli_stale", "growth")
    sub_id = double.state.all("subscription")[0]["id"]
    price = double.state.list_prices({"lookup_keys": ["business_month"]})[0]["id"]
    catch_up(double)
    assert double.portal_change_price(sub_id, price)  # the webhook never arrives
    double.portal_cancel(sub_id)

    code, out, _ = billing("reconcile", "--account", "acct_cli_stale")

    assert code == 0
    lines = out.strip().splitlines()
    assert (
        f"acct_cli_stale: subscription {sub_id}: plan growth/month -> business/month, "
        "cancel_at_period_end False -> True" in lines
    )
    assert any(line.startswith("acct_cli_stale: invoice ") for line in lines)
    assert lines[-1].startswith("reconciled 1 account(s), ")
    shown = subscription_shown(client, "acct_cli_stale")
    assert (shown["plan"], shown["cancel_at_period_end"]) == ("business", True)

    again = billing("reconcile", "--account", "acct_cli_stale")[1]
    assert again.strip() == "reconciled 1 account(s), 0 change(s)"


def test_reconcile_all_repairs_every_account_and_says_how_many_changes(
    client: TestClient[Any],
    double: StripeDouble,
) -> None:
    sign_up(client, double, "acct_cli_all_1", "growth")
    sign_up(client, double, "acct_cli_all_2", "starter")
    cancel_all_in_the_portal(double)

    code, out, _ = billing("reconcile", "--all")

    assert code == 0
    lines = out.strip().splitlines()
    cancelled = [line for line in lines if "cancel_at_period_end False -> True" in line]
    assert sorted(line.split(":")[0] for line in cancelled) == ["acct_cli_all_1", "acct_cli_all_2"]
    changes = len(lines) - 1
    assert lines[-1] == f"reconciled 2 account(s), {changes} change(s)"
    for account in ("acct_cli_all_1", "acct_cli_all_2"):
        shown = subscription_shown(client, account)
        assert shown["cancel_at_period_end"] is True
    assert billing("reconcile", "--all")[1].strip() == "reconciled 2 account(s), 0 change(s)"


def test_reconcile_of_an_account_without_a_customer_is_refused_in_one_line(
    env: dict[str, str],
) -> None:
    code, out, err = billing("reconcile", "--account", "acct_nobody")

    assert code == 1
    assert out.strip() == "reconciled 0 account(s), 0 change(s), 1 failed"
    [said] = [line for line in err.splitlines() if line.startswith("billing:")]
    assert said.startswith("billing: acct_nobody: customer.not_found: ")


def test_reconcile_all_goes_on_past_an_account_stripe_cannot_answer_for(
    client: TestClient[Any],
    double: StripeDouble,
) -> None:
    sign_up(client, double, "acct_cli_down_1", "growth")
    sign_up(client, double, "acct_cli_down_2", "growth")
    cancel_all_in_the_portal(double)
    # Stripe fails the first account's reads (after the SDK's own retries), then recovers.
    for _ in range(3):
        double.fail_next(500)

    code, out, err = billing("reconcile", "--all")

    assert code == 1
    assert out.strip().splitlines()[-1].endswith(", 1 failed")
    assert "gateway.unavailable" in err
    assert out.count("cancel_at_period_end False -> True") == 1
