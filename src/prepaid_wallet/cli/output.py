"""What the commands share: reading their arguments' values (amounts, instants, durations) and
writing their results (instants, allocations, listings in columns, a long job's progress)."""

from __future__ import annotations

import re
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import UTC, date, datetime, timedelta
from datetime import time as dt_time
from typing import TYPE_CHECKING, TextIO, TypeVar

from prepaid_wallet.cli.framework import ExitCode, _Context, _OnFirstUse
from prepaid_wallet.errors import InvalidTimeError

if TYPE_CHECKING:
    from prepaid_wallet import _codec
    from prepaid_wallet.money import Money
    from prepaid_wallet.wallet import AllocationPart

if not TYPE_CHECKING:  # imported when first used
    _codec = _OnFirstUse("prepaid_wallet._codec")

_T = TypeVar("_T")
# The patterns are compiled when first used (re keeps them), not on every start.
_DURATION = r"([0-9]{1,9})([smhd])"
_DURATION_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}
_DURATION_RULE = ("must be a positive whole number of seconds, minutes, hours or days:"
                  " 90s, 30m, 4h or 2d")


def _amount(text: str, currency: str, field: str = "amount") -> Money:
    from prepaid_wallet.money import Money

    return Money.of(text, currency, field=field)


_DATE = r"[0-9]{4}-[0-9]{2}-[0-9]{2}"
_INSTANT_RULE = ("must be an ISO 8601 instant with a UTC offset, such as"
                 " 2026-01-31T09:00:00+01:00 or 2026-01-31T08:00:00Z, or a date such as"
                 " 2026-01-31 (00:00 UTC that day)")


def _instant(text: str | None, field: str) -> datetime | None:
    """An instant from ISO 8601 text with a UTC offset, or a date alone (``2026-01-31``), which
    means 00:00 UTC that day."""
    if text is None:
        return None
    if re.fullmatch(_DATE, text):
        try:
            day = date.fromisoformat(text)
        except ValueError:
            raise InvalidTimeError(field, "must be a real date such as 2026-01-31",
                                   text) from None
        return datetime.combine(day, dt_time(0), tzinfo=UTC)
    from prepaid_wallet._data import instant_from_text

    try:
        return instant_from_text(text, field)
    except InvalidTimeError as exc:
        raise InvalidTimeError(field, _INSTANT_RULE, text) from exc.__cause__


def _duration(text: str, field: str) -> timedelta:
    """A strict ``<digits><s|m|h|d>`` duration, positive."""
    match = re.fullmatch(_DURATION, text)
    if match is None or int(match[1]) == 0:
        raise InvalidTimeError(field, _DURATION_RULE, text)
    value = timedelta(**{_DURATION_UNITS[match[2]]: int(match[1])})
    try:
        datetime.now(UTC) + value
    except OverflowError:
        raise InvalidTimeError(field, "ends beyond the last representable instant",
                               text) from None
    return value


def _iso(value: datetime | None) -> str:
    return "-" if value is None else str(_codec.to_data(value))


def _allocation(ctx: _Context, parts: Sequence[AllocationPart]) -> str:
    if not parts:
        return "-"
    return ", ".join(f"{part.lot_id or 'open balance'} {ctx.money(part.amount)}"
                     for part in parts)



def _listing(ctx: _Context, items: Sequence[_T], empty: str, header: tuple[str, ...],
             row: Callable[[_T], tuple[str, ...]]) -> ExitCode:
    """A short listing: one JSON object per item, or a table (``empty`` when there is none)."""
    if ctx.json:
        for item in items:
            ctx.emit(_codec.to_data(item))
    elif not items:
        ctx.line(empty)
    else:
        _columns(ctx, [header, *(row(item) for item in items)])
    return ExitCode.OK


def _columns(ctx: _Context, rows: Sequence[tuple[str, ...]]) -> None:
    """Rows aligned in columns (the last one left ragged)."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    for row in rows:
        ctx.line("  ".join([*(cell.ljust(w) for cell, w in zip(row, widths, strict=False)),
                            row[-1]]).rstrip())


class _Progress:
    """A long job's progress on stderr, only when stderr is a terminal: one line rewritten at
    most five times a second, erased when the job ends. Nothing is written otherwise, so
    pipes and logs see only the job's own output."""

    _EVERY = 0.2

    def __init__(self, job: str, stream: TextIO | None = None) -> None:
        self._job = job
        out = sys.stderr if stream is None else stream
        self._out: TextIO | None = out if out.isatty() else None
        self._next = 0.0
        self._shown = False
        self._started = time.monotonic()

    def __call__(self, phase: str, done: int) -> None:
        if self._out is None:
            return
        now = time.monotonic()
        if now < self._next:
            return
        self._next = now + self._EVERY
        rate = done / max(now - self._started, 1e-9)
        self._out.write(f"\r{self._job}: {done:,} {phase} ({rate:,.0f}/s)\x1b[K")
        self._out.flush()
        self._shown = True

    def each(self, rows: Iterable[_T], phase: str) -> Iterator[_T]:
        """``rows``, reporting how many have gone by."""
        for done, row in enumerate(rows, 1):
            yield row
            self(phase, done)

    def __enter__(self) -> _Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._out is not None and self._shown:
            self._out.write("\r\x1b[K")
            self._out.flush()
