"""The README's Paddle walk-through, exactly as printed, against the service in Paddle mode and
the local Paddle double (`python -m tests.paddle_double.demo`), from several calendar dates."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import httpx
import pytest

from tests.paddle_double.demo import PaddleDemo, paddle_demo
from tests.serving import clean_env, free_port

README = Path(__file__).resolve().parents[2] / "README.md"

# Never today's date: the downgrade must bill at the renewal whatever day the month starts on.
CALENDAR = {
    "the 31st of a 31-day month": "2027-01-31T12:00:00+00:00",
    "29 February": "2028-02-29T08:00:00+00:00",
    "mid-month": "2026-12-02T11:00:00+00:00",
}


def readme_paddle_walkthrough() -> str:
    """The bash block under the README's "Try it on Paddle" heading, exactly as printed."""
    text = README.read_text()
    section = text[text.index("### Try it on Paddle") :]
    start = section.index("```bash\n") + len("```bash\n")
    return section[start : section.index("```", start)]


@pytest.fixture(params=list(CALENDAR.values()), ids=list(CALENDAR))
def demo(request: pytest.FixtureRequest) -> Iterator[tuple[str, PaddleDemo]]:
    port = free_port()
    with paddle_demo(port, start=datetime.fromisoformat(request.param)) as running:
        yield f"http://127.0.0.1:{port}", running


@pytest.mark.skipif(shutil.which("curl") is None, reason="the walk-through uses curl")
def test_the_readme_paddle_walkthrough_works_as_printed(
    demo: tuple[str, PaddleDemo], tmp_path: Path
) -> None:
    served, running = demo
    block = readme_paddle_walkthrough()
    assert "API=http://127.0.0.1:8000\n" in block
    script = block.replace("API=http://127.0.0.1:8000\n", f"API={served}\n")
    script += '\necho "$TOKEN" > token\n'
    (tmp_path / ".venv").symlink_to(Path(sys.executable).parents[1])
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=tmp_path,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    for step in range(1, 10):
        assert f"\n{step}. " in f"\n{out}", f"step {step} printed nothing"
    assert f"{running.double.url}/pay?_ptxn=txn_" in out  # Paddle's checkout, not ours
    assert '"amount_due_now"' in out
    assert out.rstrip().endswith("%PDF-1.4")

    auth = {"Authorization": f"Bearer {(tmp_path / 'token').read_text().strip()}"}
    with httpx.Client(base_url=served, headers=auth) as api:
        final = api.get("/billing/subscription").json()
        invoices = api.get("/billing/invoices").json()["data"]
    # The downgrade took effect at the renewal; the cancellation waits for the period's end.
    assert (final["plan"], final["cancel_at_period_end"], final["pending_change"]) == (
        "starter",
        True,
        None,
    )
    assert final["payment_method"]["brand"] == "mastercard"
    # Billed: the sign-up (Growth), the prorated upgrade, and the renewal at Starter's price.
    starter = 1900
    renewal = invoices[0]
    assert renewal["billing_reason"] == "subscription_cycle"
    assert renewal["amount_paid"] == starter
    assert [i["status"] for i in invoices].count("paid") >= 3
    assert (tmp_path / "invoice.pdf").read_bytes().startswith(b"%PDF-")
    # Nothing the double was sent broke Paddle's API rules.
    assert running.double.violations == []
