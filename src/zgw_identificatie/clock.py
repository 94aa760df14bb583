from __future__ import annotations

from datetime import UTC, datetime


class SystemClock:
    """The real clock (aware UTC). The host must follow NTP (DigiD notes R23)."""

    def now(self) -> datetime:
        return datetime.now(UTC)
