"""Issue 10, finding 6: the README's `stripe listen` never forwards events in the account's default
API version (an older default sends subscriptions without item-level periods, which the
adapter reads). Each invocation pins the version: `--latest`, or the endpoint `billing stripe
setup --webhook-url` made with the SDK's version (`--load-from-webhooks-api`, pinned in
tests/stripe/test_setup.py)."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"
PINNED = ("--latest", "--load-from-webhooks-api")


def test_every_stripe_listen_in_the_readme_pins_the_api_version() -> None:
    text = README.read_text(encoding="utf-8")
    commands = re.findall(r"`(stripe listen[^`]*)`", text)
    # Any mention outside a code span would be a command a reader may copy without a pin.
    mentions = len(re.findall(r"stripe listen", text))

    assert commands, "the README no longer shows how to forward Stripe's events locally"
    assert len(commands) == mentions
    unpinned = [c for c in commands if not any(flag in c.split() for flag in PINNED)]
    assert unpinned == []
    # The reader is told how to see which version that is.
    assert "stripe.api_version" in text
