"""Time comes from an injectable clock so deadlines can be tested without waiting."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class ManualClock:
    """A clock that only moves when told to; shared by every service in a test."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2026, 1, 5, 9, 0, tzinfo=UTC)

    def now(self) -> datetime:
        return self._now

    def advance(self, delta: timedelta) -> datetime:
        self._now += delta
        return self._now


class OffsetFileClock:
    """The system time plus an offset in seconds read from a file, re-read whenever the file
    changes: lets a test or a demo move the time of services that run as separate processes
    (the chaos run fires payment and ship-by deadlines this way). Development only."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._seen: tuple[int, int] | None = None
        self._offset = timedelta(0)

    def now(self) -> datetime:
        try:
            stat = self._path.stat()
        except FileNotFoundError:
            self._seen, self._offset = None, timedelta(0)
        else:
            if (stat.st_mtime_ns, stat.st_size) != self._seen:
                self._seen = (stat.st_mtime_ns, stat.st_size)
                self._offset = timedelta(seconds=float(self._path.read_text().strip() or 0))
        return datetime.now(UTC) + self._offset


def clock_for(offset_file: Path | None) -> Clock:
    return OffsetFileClock(offset_file) if offset_file else SystemClock()
