"""The README's first run: `billing serve` on a fresh directory, then the README's walk-through
block exactly as printed, from several calendar dates."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.serving import billing_serve, clean_env

README = Path(__file__).resolve().parents[2] / "README.md"

# The sandbox clock starts where the test says, never on today's date: the walk-through must
# work for a subscription started on any day, the ends of months and leap days above all.
CALENDAR = {
    "the 31st of a 31-day month": "2027-01-31T12:00:00+00:00",
    "the 1st": "2027-03-01T00:00:00+00:00",
    "28 February": "2027-02-28T23:59:59+00:00",
    "29 February": "2028-02-29T08:00:00+00:00",
    "mid-month before a 31-day month": "2026-12-02T11:00:00+00:00",
}


def readme_walkthrough() -> str:
    """The bash block under the README's "Try it" heading, exactly as printed."""
    text = README.read_text()
    section = text[text.index("## Try it") :]
    start = section.index("```bash\n") + len("```bash\n")
    return section[start : section.index("```", start)]


@pytest.fixture(params=list(CALENDAR.values()), ids=list(CALENDAR))
def served(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with billing_serve(tmp_path, env={"BILLING_SANDBOX_CLOCK_START": request.param}) as base:
        yield base


@pytest.mark.skipif(shutil.which("curl") is None, reason="the walk-through uses curl")
def test_serve_prints_how_to_start_and_the_readme_walkthrough_works_as_printed(
    served: str, tmp_path: Path
) -> None:
    printed = (tmp_path / "serve.log").read_text()
    assert f"ResponseIQ Billing on {served}" in printed
    assert "billing token" in printed
    assert (tmp_path / "billing-sandbox.db").exists()

    block = readme_walkthrough()
    assert "API=http://127.0.0.1:8000\n" in block
    # The same commands; only the port is the test server's. Afterwards the state is read with
    # the walk-through's own token.
    script = block.replace("API=http://127.0.0.1:8000\n", f"API={served}\n")
    script += '\necho "$TOKEN" > token\n'
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
    out = result.stdout
    for step in range(1, 10):
        assert f"\n{step}. " in f"\n{out}", f"step {step} printed nothing"
    assert '"amount_due_now"' in out and f"{served}/sandbox/portal/" in out
    assert out.rstrip().endswith("%PDF-1.4")

    auth = {"Authorization": f"Bearer {(tmp_path / 'token').read_text().strip()}"}
    with httpx.Client(base_url=served, headers=auth) as api:
        final = api.get("/billing/subscription").json()
        invoices = api.get("/billing/invoices").json()["data"]
    assert (final["plan"], final["cancel_at_period_end"], final["pending_change"]) == (
        "starter",
        True,
        None,
    )
    assert final["payment_method"] == {"brand": "mastercard", "last4": "4444"}
    reasons = [invoice["billing_reason"] for invoice in invoices]
    assert reasons == ["subscription_cycle", "subscription_update", "subscription_create"]
    assert [invoice["status"] for invoice in invoices] == ["paid", "paid", "paid"]
    assert (tmp_path / "invoice.pdf").read_bytes().startswith(b"%PDF-")
