"""Clocks: where the library gets "now". The domain never asks the real time itself.

:class:`SystemClock` reads the real time; :class:`FixedClock` is set and advanced by hand, for
tests, examples, replays and batch jobs. Every instant the library handles is timezone-aware,
normalised to UTC and between :data:`EARLIEST` and :data:`LATEST`; :func:`require_aware` is the
one check for that.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Protocol, runtime_checkable

from prepaid_wallet.errors import InvalidTimeError

__all__ = ["EARLIEST", "LATEST", "Clock", "FixedClock", "SystemClock", "require_aware"]

#: The earliest instant the library accepts: a year after the first one Python can represent, so
#: that no arithmetic the library does on an instant (a local day or month, a period, a window,
#: a conversion to any time zone) can leave the calendar.
EARLIEST = datetime(2, 1, 1, tzinfo=UTC)
#: The latest instant the library accepts: a year before the last one Python can represent.
LATEST = datetime(9998, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)
_RANGE = f"must be an instant from {EARLIEST.isoformat()} to {LATEST.isoformat()}"


def require_aware(value: object, field: str) -> datetime:
    """Return ``value`` as an aware UTC ``datetime``; raise ``InvalidTimeError`` naming ``field``
    if it is not a ``datetime``, has no time zone, or is not between :data:`EARLIEST` and
    :data:`LATEST` (e.g. ``datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=14)))``, which is
    in year 0 in UTC)."""
    if type(value) is datetime and value.tzinfo is UTC and EARLIEST <= value <= LATEST:
        return value  # already what it must be (most clocks' instants)
    if not isinstance(value, datetime):
        raise InvalidTimeError(field, "must be a datetime", value)
    if value.tzinfo is None or value.tzinfo.utcoffset(value) is None:
        raise InvalidTimeError(field, "must be timezone-aware (naive datetimes are refused)", value)
    try:
        utc = value.astimezone(UTC)
    except (OverflowError, ValueError) as exc:  # before year 1 or after year 9999 in UTC
        raise InvalidTimeError(field, _RANGE, value) from exc
    if not EARLIEST <= utc <= LATEST:
        raise InvalidTimeError(field, _RANGE, value)
    return utc


@runtime_checkable
class Clock(Protocol):
    """Anything with ``now()`` returning an aware ``datetime``."""

    def now(self) -> datetime:
        """The current instant, timezone-aware."""
        ...


class SystemClock:
    """The real time, in UTC."""

    def now(self) -> datetime:
        """The current instant in UTC."""
        return datetime.now(UTC)

    def __repr__(self) -> str:
        return "SystemClock()"


class FixedClock:
    """A clock that stands still until it is moved with :meth:`advance` or :meth:`set`.

    Thread-safe. ``FixedClock(datetime(2026, 1, 5, tzinfo=UTC))``; a naive start raises
    ``InvalidTimeError``.
    """

    def __init__(self, start: datetime) -> None:
        self._now = require_aware(start, "start")
        self._lock = threading.Lock()

    def now(self) -> datetime:
        """The instant the clock is set to, in UTC."""
        with self._lock:
            return self._now

    def advance(self, delta: timedelta) -> datetime:
        """Move forward by ``delta`` (not negative) and return the new instant."""
        if not isinstance(delta, timedelta) or delta < timedelta(0):
            raise InvalidTimeError("delta", "must be a non-negative timedelta", delta)
        with self._lock:
            self._now = self._now + delta
            return self._now

    def set(self, instant: datetime) -> None:
        """Jump to ``instant`` (aware; may go backwards, for replays)."""
        value = require_aware(instant, "instant")
        with self._lock:
            self._now = value

    def __repr__(self) -> str:
        return f"FixedClock({self._now.isoformat()})"
