"""Opaque ids in Stripe's style: a prefix and 24 base-62 characters."""

from __future__ import annotations

import secrets
import string

_ALPHABET = string.ascii_letters + string.digits


def new_id(prefix: str) -> str:
    """`qt_4fGq…`. Base 62 rather than hex: a hex id holds a 13-digit run (which the HTTP
    card-data guard rightly refuses when it is Luhn-valid) in about one id of three hundred;
    a base-62 one practically never does."""
    return f"{prefix}_{''.join(secrets.choice(_ALPHABET) for _ in range(24))}"
