"""When commerce lots expire: their own expiry, their condition group's, or the end of a local
day.

A lot stops paying at the first of these instants (intervals are half-open: at that instant it
no longer pays), and its remainder then waits for the expiry sweep, which books it as breakage:

* its own ``expires_at``, set when it was granted (or moved by an expiry extension);
* the end of its conditions' validity, ``SpendCondition.valid_until`` (the conditions a lot was
  granted under never change);
* the end of its condition group's validity, ``ConditionGroup.valid_until`` -- the group's
  *current* validity: changing a group's validity applies to every lot that refers to it.

An expiry may also be given as :class:`EndOfLocalDay`: "the end of local day D in zone Z" is the
first instant of day D+1 in Z (:func:`~prepaid_wallet.conditions.end_of_local_day`), so the lot
still pays on the whole of day D there, whatever the daylight-saving rules of Z, and never
depends on the process's time zone.

:class:`ExpiryPolicy` puts these together; the service asks it which lots have expired at an
instant (the expiry sweep books their remainders as breakage) and stores the lots so that the
ones due are found through an index (``UnitOfWork.due_lots``).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import TypeVar

import attrs

from prepaid_wallet.clock import require_aware
from prepaid_wallet.conditions import ConditionGroup, end_of_local_day
from prepaid_wallet.errors import InvalidInputError, InvalidTimeError
from prepaid_wallet.wallet import Lot

__all__ = ["EndOfLocalDay", "ExpiryPolicy", "first_end", "lot_end", "resolve_expiry"]

#: An instant, or how a store keeps one (microseconds since the epoch).
_End = TypeVar("_End", datetime, int)


@attrs.frozen
class EndOfLocalDay:
    """The end of local day ``day`` in IANA zone ``zone``: the first instant of the next day
    there (:attr:`instant`). A lot that expires at the end of 31 December in Europe/Nicosia
    still pays at 23:59:59.999999 local time on the 31st and no longer at midnight."""

    day: date
    zone: str

    def __attrs_post_init__(self) -> None:
        # Validates both (a datetime is refused as a day; an unknown zone raises).
        self.instant  # noqa: B018

    @property
    def instant(self) -> datetime:
        """The first instant of ``day + 1`` in ``zone``, as aware UTC."""
        return end_of_local_day(self.day, self.zone)


def resolve_expiry(value: object, field: str = "expires_at") -> datetime | None:
    """An expiry given as an aware ``datetime``, an :class:`EndOfLocalDay` or ``None`` (never
    expires), as an aware UTC instant or ``None``. ``InvalidTimeError`` names ``field``
    otherwise, and for an instant outside :data:`~prepaid_wallet.clock.EARLIEST` ..
    :data:`~prepaid_wallet.clock.LATEST`."""
    if value is None:
        return None
    if isinstance(value, EndOfLocalDay):
        return require_aware(value.instant, field)  # within the instants the library takes
    if isinstance(value, datetime):
        return require_aware(value, field)
    raise InvalidTimeError(field, "must be an aware datetime, an EndOfLocalDay or None", value)


def first_end(end: _End | None, other: _End | None) -> _End | None:
    """The first of two ends, ``None`` being no end: the one rule by which a lot's ends combine
    (its own expiry, its conditions' end, its group's end). The SQL stores keep when each lot
    falls due by the same rule, rendered from this one
    (:func:`prepaid_wallet.storage._schema.first_end_sql`; a test compares the two)."""
    if end is None:
        return other
    if other is None or end <= other:
        return end
    return other


def lot_end(lot: Lot) -> datetime | None:
    """When ``lot`` stops paying whatever its condition group does: its own expiry or the end of
    its conditions' validity, whichever is first (None: neither). Fixed for the lot's life."""
    if lot.condition is None:
        return lot.expires_at
    return first_end(lot.expires_at, lot.condition.valid_until)


@attrs.frozen
class ExpiryPolicy:
    """Decides when a lot expires: at its own expiry, the end of its conditions' validity or
    the end of its condition group's validity, whichever comes first (see the module
    docstring)."""

    def expires_at(self, lot: Lot, group: ConditionGroup | None = None) -> datetime | None:
        """The instant ``lot`` stops paying; ``None`` if it never expires. ``group`` is the
        lot's condition group (required when the lot has one: ``InvalidInputError``)."""
        if lot.group_id is not None and (group is None or group.id != lot.group_id):
            raise InvalidInputError("group", f"must be the lot's condition group {lot.group_id!r}",
                                    group)
        return lot_end(lot) if group is None else first_end(lot_end(lot), group.valid_until)

    def is_expired(self, lot: Lot, at: datetime, group: ConditionGroup | None = None) -> bool:
        """True at or after the instant ``lot`` stops paying (half-open intervals)."""
        end = self.expires_at(lot, group)
        return end is not None and at >= end
