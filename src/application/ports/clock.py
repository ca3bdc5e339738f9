"""The clock port: the time, read once per command."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol


class Clock(Protocol):
    """The time. Use cases read it once per command and pass it into the domain."""

    def now(self) -> datetime:
        """The current instant, timezone-aware (UTC)."""
        ...
