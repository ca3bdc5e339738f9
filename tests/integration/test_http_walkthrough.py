"""The README's first run: `billing serve` on a fresh directory, then the curl walk-through."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.serving import BILLING, billing_serve, clean_env

WALKTHROUGH = Path(__file__).resolve().parents[1] / "http" / "walkthrough.sh"


# The sandbox clock starts where the test says, never on today's date: the walk-through must
# work for a subscription started on any day, the ends of months and leap days above all.
CALENDAR = {
    "the 31st of a 31-day month": "2027-01-31T12:00:00+00:00",
    "the 1st": "2027-03-01T00:00:00+00:00",
    "28 February": "2027-02-28T23:59:59+00:00",
    "29 February": "2028-02-29T08:00:00+00:00",
    "mid-month before a 31-day month": "2026-12-02T11:00:00+00:00",
}


@pytest.fixture(params=list(CALENDAR.values()), ids=list(CALENDAR))
def served(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with billing_serve(tmp_path, env={"BILLING_SANDBOX_CLOCK_START": request.param}) as base:
        yield base


@pytest.fixture
def served_on_the_31st(tmp_path: Path) -> Iterator[str]:
    start = CALENDAR["the 31st of a 31-day month"]
    with billing_serve(tmp_path, env={"BILLING_SANDBOX_CLOCK_START": start}) as base:
        yield base


@pytest.mark.skipif(shutil.which("curl") is None, reason="the walk-through uses curl")
def test_serve_prints_the_url_and_how_to_get_a_token_and_the_walkthrough_works(
    served: str, tmp_path: Path
) -> None:
    printed = (tmp_path / "serve.log").read_text()
    assert f"ResponseIQ Billing on {served}" in printed
    assert "billing token" in printed
    assert (tmp_path / "billing-sandbox.db").exists(), (
        "the sandbox's SQLite database is created and migrated"
    )

    result = subprocess.run(
        ["bash", str(WALKTHROUGH)],
        cwd=tmp_path,
        env={**clean_env(), "API": served, "BILLING": str(BILLING)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    lines = [line for line in result.stdout.splitlines() if line.startswith("{")]
    bodies = [json.loads(line) for line in lines]
    checkout, paid, quote, upgraded, downgraded, clock, renewed, canceled, ent, invoices = bodies
    assert checkout["url"].startswith(f"{served}/sandbox/checkout/")
    assert (paid["plan"], paid["status"]) == ("growth", "active")
    assert quote["timing"] == "immediate" and quote["amount_due_now"]["amount"] > 0
    assert upgraded["plan"] == "business"
    assert downgraded["plan"] == "business"
    assert downgraded["pending_change"]["plan"] == "starter"
    assert clock["now"] > paid["current_period_end"]
    assert (renewed["plan"], renewed["pending_change"]) == ("starter", None)
    assert canceled["cancel_at_period_end"] is True
    assert ent["plan"] == "starter" and ent["access_until"] == canceled["current_period_end"]
    reasons = [i["billing_reason"] for i in invoices["data"]]
    assert reasons == ["subscription_cycle", "subscription_update", "subscription_create"]
    assert result.stdout.rstrip().endswith("%PDF-1.4")
    assert (tmp_path / "invoice.pdf").read_bytes().startswith(b"%PDF-")


README = Path(__file__).resolve().parents[2] / "README.md"


def readme_walkthrough() -> str:
    """The bash block under the README's "Try it" heading, exactly as printed."""
    text = README.read_text()
    section = text[text.index("## Try it") :]
    start = section.index("```bash\n") + len("```bash\n")
    return section[start : section.index("```", start)]


@pytest.mark.skipif(shutil.which("curl") is None, reason="the walk-through uses curl")
def test_the_readme_walkthrough_works_as_printed(served_on_the_31st: str, tmp_path: Path) -> None:
    block = readme_walkthrough()
    assert "API=http://127.0.0.1:8000\n" in block
    # The same commands; only the port is the test server's, and the state is read afterwards.
    script = block.replace("API=http://127.0.0.1:8000\n", f"API={served_on_the_31st}\n")
    script += '\ncurl -sf -H "$AUTH" $API/billing/subscription > final.json\n'
    (tmp_path / ".venv").symlink_to(Path(sys.executable).parents[1])
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=tmp_path,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    final = json.loads((tmp_path / "final.json").read_text())
    assert (final["plan"], final["cancel_at_period_end"]) == ("starter", True)
    assert final["pending_change"] is None
    assert (tmp_path / "invoice.pdf").read_bytes().startswith(b"%PDF-")
