"""Time, in one replaceable place, so tests can set the date (quarter-end billing, expiry)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo


class Clock:
    """Wall clock in UTC plus the site's timezone; ``offset`` lets tests move it."""

    def __init__(self, tz: str = "Asia/Shanghai", offset: timedelta = timedelta(0)) -> None:
        self.tz = ZoneInfo(tz)
        self.offset = offset

    def now(self) -> datetime:
        """Aware UTC now."""
        return datetime.now(UTC) + self.offset

    def local(self) -> datetime:
        """Aware local (site) now: schedules, shifts and billing windows use it."""
        return self.now().astimezone(self.tz)

    def set(self, when: datetime) -> None:
        """Pretend it is ``when`` now (tests, demos)."""
        self.offset = when - datetime.now(UTC)
