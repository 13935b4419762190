"""Spend conditions: what an award lot may pay for, where and when.

Award money (a *commerce lot*) may be limited to some products, some merchants and some times.
This module holds the pure value types that say so and the predicates that decide a purchase;
:mod:`prepaid_wallet.policies` uses them to decide which lot may pay which line.

* :class:`LineItem` -- one line of a purchase: a product id, an amount and an optional category.
* :class:`TimeWindow` -- local hours ``[start, end)`` on some ISO weekdays in an IANA zone.
* :class:`SpendCondition` -- the restrictions of one lot. Every field is optional; an empty or
  ``None`` field means "no restriction" in that dimension, and a condition with nothing set
  allows any purchase. The dimensions combine with AND; inside a dimension the alternatives
  combine with OR:

  - *product* (:meth:`SpendCondition.allows_line`, judged per line): the line's product id is
    one of ``products`` **or** its category is one of ``categories``. A line without a category
    matches by product id only.
  - *merchant*: the purchase's merchant is one of ``merchants`` **or** one of the merchant's
    groups is one of ``merchant_groups``. A purchase without a merchant fails a merchant
    restriction.
  - *time*: the purchase instant lies inside at least one of ``windows``, and inside the
    half-open validity ``[valid_from, valid_until)``.
  - *minimum*: the purchase total (all lines together) is at least ``minimum_purchase``.

* :class:`ConditionGroup` -- a named, versioned condition defined once for a tenant and shared
  by many lots, with a validity of its own.
* :func:`end_of_local_day` -- the first instant of the next local day, safe across DST changes.

Time: instants are aware and normalised to UTC. Windows speak of *local wall time* in their
own zone (never the process time zone, whatever ``TZ`` says): when clocks go back, local hours
that happen twice are inside a window both times; when clocks jump forward, local hours that
never happen are simply never inside. Validity bounds are instants, not local times.

Every invalid value raises :class:`~prepaid_wallet.errors.InvalidInputError` (or one of its
subclasses) naming the field at fault. Nothing here reads the environment, the process locale
or the clock.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any, Final

import attrs

from prepaid_wallet._data import instant_from_text as _instant_from_text
from prepaid_wallet._data import money_from_data as _money_from_data
from prepaid_wallet._data import zone as _zone
from prepaid_wallet.clock import require_aware
from prepaid_wallet.errors import (
    CurrencyMismatchError,
    InvalidAmountError,
    InvalidInputError,
    InvalidTimeError,
)
from prepaid_wallet.formatting import _locale, format_money
from prepaid_wallet.money import Money

if TYPE_CHECKING:
    from zoneinfo import ZoneInfo

__all__ = [
    "ConditionGroup",
    "LineItem",
    "SpendCondition",
    "TimeWindow",
    "end_of_local_day",
]

_MIDNIGHT: Final = time(0)
_ONE_MICROSECOND: Final = timedelta(microseconds=1)


# -- shared checks ---------------------------------------------------------------------------------




def _text(value: object, field: str) -> str:
    if not isinstance(value, str) or not value:
        raise InvalidInputError(field, "must be a non-empty string", value)
    return value


def _optional_text(value: object, field: str) -> str | None:
    return None if value is None else _text(value, field)


def _names(value: object, field: str) -> frozenset[str]:
    """Any iterable of non-empty strings (not a single string) as a frozenset."""
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        raise InvalidInputError(
            field, "must be a collection of non-empty strings (not a single string)", value
        )
    items = list(value)
    for item in items:
        _text(item, field)
    return frozenset(items)


def _optional_instant(value: object, field: str) -> datetime | None:
    return None if value is None else require_aware(value, field)


def _check_order(valid_from: datetime | None, valid_until: datetime | None) -> None:
    if valid_from is not None and valid_until is not None and valid_until <= valid_from:
        raise InvalidTimeError("valid_until", "must be after valid_from", valid_until)


def _is_valid_at(valid_from: datetime | None, valid_until: datetime | None, at: datetime) -> bool:
    return (valid_from is None or valid_from <= at) and (valid_until is None or at < valid_until)


# -- time windows --------------------------------------------------------------------------------


def _days(value: Iterable[int]) -> frozenset[int]:
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        raise InvalidInputError(
            "days", "must be a non-empty collection of ISO weekdays (1 = Monday ... 7 = Sunday)",
            value,
        )
    days = list(value)
    if not days:
        raise InvalidInputError("days", "must not be empty", value)
    for day in days:
        if isinstance(day, bool) or not isinstance(day, int) or not 1 <= day <= 7:
            raise InvalidInputError(
                "days", "must hold ISO weekdays, ints from 1 (Monday) to 7 (Sunday)", value
            )
    return frozenset(days)


def _wall_time(value: object, field: str) -> time:
    if not isinstance(value, time):
        raise InvalidInputError(field, "must be a datetime.time", value)
    if value.tzinfo is not None:
        raise InvalidInputError(
            field, "must be a local wall time without tzinfo (the zone is a separate field)", value
        )
    return value.replace(fold=0)


def _start(value: time) -> time:
    return _wall_time(value, "start")


def _end(value: time) -> time:
    return _wall_time(value, "end")


def _zone_name(value: str) -> str:
    _zone(value)
    return value


@attrs.frozen
class TimeWindow:
    """Local hours ``[start, end)`` on some ISO weekdays, in the IANA zone ``zone``.

    ``days`` are ISO weekdays (1 = Monday ... 7 = Sunday), given as any iterable of ints and
    kept as a frozenset. ``start`` and ``end`` are naive ``datetime.time`` wall times (seconds
    and microseconds allowed). ``end == time(0)`` means "until the end of the day" (the
    midnight that ends it); otherwise ``end`` must be after ``start``. A window never crosses
    midnight: write two windows for a night shift.

    Raises ``InvalidInputError`` naming ``"days"``, ``"start"``, ``"end"`` or ``"zone"``.
    """

    days: frozenset[int] = attrs.field(converter=_days)
    start: time = attrs.field(converter=_start)
    end: time = attrs.field(converter=_end)
    zone: str = attrs.field(converter=_zone_name)

    def __attrs_post_init__(self) -> None:
        if self.end != _MIDNIGHT and self.end <= self.start:
            raise InvalidInputError(
                "end", "must be after start, or 00:00 for the end of the day", self.end
            )

    @property
    def until_end_of_day(self) -> bool:
        """True when the window runs to the end of the day (``end`` is midnight)."""
        return self.end == _MIDNIGHT

    def contains(self, at: datetime) -> bool:
        """Whether the aware instant ``at`` falls inside the window.

        ``at`` is converted to the window's zone; the result is true when the local ISO weekday
        is one of ``days`` and ``start <= local wall time < end`` (``>= start`` when ``end`` is
        midnight). The process time zone is never used. Raises ``InvalidTimeError("at", ...)``
        for a naive or non-datetime ``at``.
        """
        local = require_aware(at, "at").astimezone(_zone(self.zone))
        if local.isoweekday() not in self.days:
            return False
        wall = local.time()
        return self.start <= wall and (self.until_end_of_day or wall < self.end)

    def to_data(self) -> dict[str, Any]:
        """The window as JSON-able data: ``{"days": [1, 2], "start": "08:00:00",
        "end": "12:00:00", "zone": "Europe/Nicosia"}`` (times in ISO 8601)."""
        return {
            "days": sorted(self.days),
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "zone": self.zone,
        }

    @classmethod
    def from_data(cls, data: object) -> TimeWindow:
        """Rebuild a window from :meth:`to_data` output, validating it like the constructor.

        Raises ``InvalidInputError`` naming the field for malformed data (``"window"`` when
        ``data`` is not a mapping with exactly the four keys).
        """
        fields = _mapping(data, "window", frozenset({"days", "start", "end", "zone"}))
        missing = {"days", "start", "end", "zone"} - fields.keys()
        if missing:
            raise InvalidInputError("window", f"missing key {sorted(missing)[0]!r}", data)
        days = fields["days"]
        if not isinstance(days, list):
            raise InvalidInputError("days", "must be a list of ISO weekdays", days)
        return cls(
            days=days,
            start=_time_from_text(fields["start"], "start"),
            end=_time_from_text(fields["end"], "end"),
            zone=fields["zone"],
        )


def end_of_local_day(day: date, zone: str) -> datetime:
    """The first instant of the local day after ``day`` in ``zone``, as an aware UTC datetime.

    That is the instant at which ``day`` ends there: the first instant whose local date is later
    than ``day``. Usually it is local midnight of ``day + 1``. Across DST changes:

    * local midnight does not exist (clocks jump from 00:00 to 01:00, as in America/Santiago):
      the first instant that exists on the next day (the moment of the jump);
    * local midnight happens twice (clocks go back over midnight): the earlier one.

    How: local midnight of ``day + 1`` is read with ``fold=0`` and ``fold=1`` (the two offsets
    around a change), each converted to UTC and back; the earliest candidate whose local date is
    after ``day`` is the answer when the instant one microsecond before it is still on ``day``
    or earlier. Otherwise (a gap that straddles midnight) the exact moment is found by bisection
    over microseconds between a candidate still on ``day`` and that one. The result is always
    checked by converting back. The process time zone is never used.

    Raises ``InvalidInputError("day", ...)`` unless ``day`` is a ``date`` (a ``datetime`` is
    refused) before 9999-12-31, and ``InvalidInputError("zone", ...)`` for an unknown zone.
    """
    if isinstance(day, datetime) or not isinstance(day, date):
        raise InvalidInputError("day", "must be a datetime.date (not a datetime)", day)
    zone_info = _zone(zone)
    try:
        following = day + timedelta(days=1)
        return _first_instant_after(day, following, zone_info)
    except OverflowError as exc:
        rule = "must be a date whose next day can be represented"
        raise InvalidInputError("day", rule, day) from exc


def _local_date(instant: datetime, zone_info: ZoneInfo) -> date:
    return instant.astimezone(zone_info).date()


def _first_instant_after(day: date, following: date, zone_info: ZoneInfo) -> datetime:
    candidates = sorted(
        datetime.combine(following, _MIDNIGHT, tzinfo=zone_info).replace(fold=fold).astimezone(UTC)
        for fold in (0, 1)
    )
    after = [c for c in candidates if _local_date(c, zone_info) > day]
    before = [c for c in candidates if _local_date(c, zone_info) <= day]
    if not after:  # pragma: no cover - fold=0 of a missing midnight lies after the jump
        raise InvalidInputError("zone", "has no instant after this day", zone_info.key)
    high = after[0]
    if _local_date(high - _ONE_MICROSECOND, zone_info) <= day:
        return high
    # The day ends inside a gap that straddles midnight: bisect between an instant on `day`
    # (or before) and `high` for the first instant whose local date is later than `day`.
    lows = [c for c in before if c < high]
    low = lows[-1] if lows else high - timedelta(days=2)
    steps = range((high - low) // _ONE_MICROSECOND + 1)
    result = low + _ONE_MICROSECOND * bisect.bisect_left(
        steps, True, key=lambda us: _local_date(low + us * _ONE_MICROSECOND, zone_info) > day
    )
    if not (
        _local_date(result, zone_info) > day
        and _local_date(result - _ONE_MICROSECOND, zone_info) <= day
    ):  # pragma: no cover - a guard against zone data with more than one change per day end
        raise InvalidInputError("zone", "has no well-defined end of this day", zone_info.key)
    return result


# -- line items ----------------------------------------------------------------------------------


def _product_id(value: str) -> str:
    return _text(value, "product_id")


def _line_amount(value: Money) -> Money:
    if not isinstance(value, Money):
        raise InvalidAmountError("amount", "must be a Money", value)
    if value.minor_units <= 0:
        raise InvalidAmountError("amount", "must be positive", value)
    return value


def _category(value: str | None) -> str | None:
    return _optional_text(value, "category")


@attrs.frozen
class LineItem:
    """One line of a purchase: ``product_id`` (non-empty), a positive ``amount`` and an
    optional ``category`` (``None`` or non-empty).

    Raises ``InvalidInputError`` naming ``"product_id"`` or ``"category"``, and
    ``InvalidAmountError("amount", ...)`` for an amount that is not positive ``Money``.
    """

    product_id: str = attrs.field(converter=_product_id)
    amount: Money = attrs.field(converter=_line_amount)
    category: str | None = attrs.field(default=None, converter=_category)


# -- spend conditions ----------------------------------------------------------------------------


def _products(value: Iterable[str]) -> frozenset[str]:
    return _names(value, "products")


def _categories(value: Iterable[str]) -> frozenset[str]:
    return _names(value, "categories")


def _merchants(value: Iterable[str]) -> frozenset[str]:
    return _names(value, "merchants")


def _merchant_groups(value: Iterable[str]) -> frozenset[str]:
    return _names(value, "merchant_groups")


def _window_key(window: TimeWindow) -> tuple[tuple[int, ...], time, bool, time, str]:
    return (tuple(sorted(window.days)), window.start, window.until_end_of_day, window.end,
            window.zone)


def _windows(value: Iterable[TimeWindow]) -> tuple[TimeWindow, ...]:
    """Any iterable of windows, without duplicates, in a canonical order (so that two conditions
    with the same windows are equal)."""
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        raise InvalidInputError("windows", "must be a collection of TimeWindow", value)
    windows = list(value)
    for window in windows:
        if not isinstance(window, TimeWindow):
            raise InvalidInputError("windows", "must hold only TimeWindow values", value)
    return tuple(sorted(set(windows), key=_window_key))


def _valid_from(value: datetime | None) -> datetime | None:
    return _optional_instant(value, "valid_from")


def _valid_until(value: datetime | None) -> datetime | None:
    return _optional_instant(value, "valid_until")


def _minimum_purchase(value: Money | None) -> Money | None:
    if value is None:
        return None
    if not isinstance(value, Money):
        raise InvalidAmountError("minimum_purchase", "must be a Money or None", value)
    if value.minor_units <= 0:
        raise InvalidAmountError("minimum_purchase", "must be positive", value)
    return value


@attrs.frozen(kw_only=True)
class SpendCondition:
    """What a lot may pay for; every field optional, empty or ``None`` meaning "no restriction".

    * ``products``, ``categories`` -- any iterable of non-empty strings, kept as frozensets.
      When either is non-empty a line is allowed if its product id is in ``products`` or its
      category is in ``categories`` (see :meth:`allows_line`).
    * ``merchants``, ``merchant_groups`` -- likewise; when either is non-empty the purchase's
      merchant must be in ``merchants`` or one of its groups in ``merchant_groups``.
    * ``windows`` -- any iterable of :class:`TimeWindow`, kept as a tuple without duplicates in
      a canonical order; when non-empty the purchase instant must be inside one of them.
    * ``valid_from``, ``valid_until`` -- aware instants kept in UTC; the purchase instant must
      lie in ``[valid_from, valid_until)``.
    * ``minimum_purchase`` -- positive ``Money``; the purchase total must be at least this.

    Keyword-only. Raises ``InvalidInputError`` naming the field for a bad value,
    ``InvalidTimeError`` for a naive instant or ``valid_until`` not after ``valid_from``, and
    ``InvalidAmountError("minimum_purchase", ...)`` for a minimum that is not positive Money.
    """

    products: frozenset[str] = attrs.field(default=frozenset(), converter=_products)
    categories: frozenset[str] = attrs.field(default=frozenset(), converter=_categories)
    merchants: frozenset[str] = attrs.field(default=frozenset(), converter=_merchants)
    merchant_groups: frozenset[str] = attrs.field(default=frozenset(), converter=_merchant_groups)
    windows: tuple[TimeWindow, ...] = attrs.field(default=(), converter=_windows)
    valid_from: datetime | None = attrs.field(default=None, converter=_valid_from)
    valid_until: datetime | None = attrs.field(default=None, converter=_valid_until)
    minimum_purchase: Money | None = attrs.field(default=None, converter=_minimum_purchase)

    def __attrs_post_init__(self) -> None:
        _check_order(self.valid_from, self.valid_until)

    # -- predicates ------------------------------------------------------------------------------

    @property
    def is_unrestricted(self) -> bool:
        """True when nothing is set: the condition allows any purchase."""
        return self == _UNRESTRICTED

    def allows_line(self, line: LineItem) -> bool:
        """Whether ``line`` passes the product dimension (the only per-line one).

        True when neither ``products`` nor ``categories`` is set, or when the line's product id
        is in ``products``, or its category (if it has one) is in ``categories``. Raises
        ``InvalidInputError("line", ...)`` when ``line`` is not a :class:`LineItem`.
        """
        if not isinstance(line, LineItem):
            raise InvalidInputError("line", "must be a LineItem", line)
        if not self.products and not self.categories:
            return True
        return line.product_id in self.products or (
            line.category is not None and line.category in self.categories
        )

    def allows_purchase(
        self,
        *,
        at: datetime,
        merchant: str | None,
        merchant_groups: Iterable[str],
        total: Money,
    ) -> bool:
        """Whether the purchase as a whole passes the merchant, time, validity and minimum
        dimensions (products are judged per line with :meth:`allows_line`).

        ``at`` is the aware purchase instant; ``merchant`` the merchant id (``None`` when
        unknown: it then fails a merchant restriction, whatever ``merchant_groups`` says);
        ``merchant_groups`` the groups the merchant belongs to; ``total`` the purchase total,
        all lines together.

        Raises ``InvalidTimeError("at", ...)`` for a naive ``at``, ``InvalidInputError`` naming
        ``"merchant"`` or ``"merchant_groups"`` for a bad value, ``InvalidAmountError("total",
        ...)`` when ``total`` is not Money, and ``CurrencyMismatchError`` (field ``"total"``)
        when a minimum is set in another currency than ``total`` (checked whatever the other
        dimensions decide).
        """
        instant = require_aware(at, "at")
        merchant = _optional_text(merchant, "merchant")
        groups = _names(merchant_groups, "merchant_groups")
        if not isinstance(total, Money):
            raise InvalidAmountError("total", "must be a Money", total)
        minimum = self.minimum_purchase
        if minimum is not None and minimum.currency != total.currency:
            raise CurrencyMismatchError(minimum.currency, total.currency, field="total")
        if (self.merchants or self.merchant_groups) and not (
            merchant is not None
            and (merchant in self.merchants or not groups.isdisjoint(self.merchant_groups))
        ):
            return False
        if self.windows and not any(window.contains(instant) for window in self.windows):
            return False
        if not _is_valid_at(self.valid_from, self.valid_until, instant):
            return False
        return minimum is None or total >= minimum

    # -- words -----------------------------------------------------------------------------------

    def describe(self, locale: str = "en_US") -> tuple[str, ...]:
        """The restrictions in words, one phrase each, in a fixed order: products, categories,
        merchants, merchant groups, each window, validity, minimum purchase.

        >>> SpendCondition(products=["tea", "coffee"]).describe()
        ('products: coffee, tea',)

        Names are sorted. Windows read like ``"Monday to Friday 08:00–12:00 (Europe/Nicosia)"``
        (three or more consecutive days collapse to "X to Y", other days are listed, all seven
        are "every day", an end of midnight reads "24:00"); validity like ``"valid from
        2026-01-01 00:00 UTC"``; the minimum like ``"minimum purchase €20.00"``. Day names and
        the amount follow ``locale`` (CLDR, via babel); the other words are English. An
        unrestricted condition reads ``("any purchase",)``. The process locale is never read;
        raises ``InvalidInputError("locale", ...)`` for an empty or unknown locale.
        """
        phrases = self._phrases(locale)
        return phrases or ("any purchase",)

    def _phrases(self, locale: str) -> tuple[str, ...]:
        babel_locale = _locale(locale)
        phrases: list[str] = []
        for label, names in (
            ("products", self.products),
            ("categories", self.categories),
            ("merchants", self.merchants),
            ("merchant groups", self.merchant_groups),
        ):
            if names:
                phrases.append(f"{label}: {', '.join(sorted(names))}")
        if self.windows:
            from babel import dates as _babel_dates

            day_names = _babel_dates.get_day_names("wide", locale=babel_locale)
            phrases.extend(_describe_window(window, day_names) for window in self.windows)
        phrases.extend(_describe_validity(self.valid_from, self.valid_until))
        if self.minimum_purchase is not None:
            phrases.append("minimum purchase " + format_money(self.minimum_purchase, locale))
        return tuple(phrases)

    # -- data ------------------------------------------------------------------------------------

    def to_data(self) -> dict[str, Any]:
        """The condition as plain JSON-able data; :meth:`from_data` rebuilds it exactly.

        Sets become sorted lists, windows lists of :meth:`TimeWindow.to_data` dicts, instants
        ISO 8601 strings in UTC (``"2026-01-01T00:00:00+00:00"``) and money
        ``{"minor": 2000, "currency": "EUR"}``. Empty fields are left out, so an unrestricted
        condition is ``{}``.
        """
        data: dict[str, Any] = {}
        for key in ("products", "categories", "merchants", "merchant_groups"):
            names: frozenset[str] = getattr(self, key)
            if names:
                data[key] = sorted(names)
        if self.windows:
            data["windows"] = [window.to_data() for window in self.windows]
        if self.valid_from is not None:
            data["valid_from"] = self.valid_from.isoformat()
        if self.valid_until is not None:
            data["valid_until"] = self.valid_until.isoformat()
        if self.minimum_purchase is not None:
            data["minimum_purchase"] = {
                "minor": self.minimum_purchase.minor_units,
                "currency": self.minimum_purchase.currency,
            }
        return data

    @classmethod
    def from_data(cls, data: object) -> SpendCondition:
        """Rebuild a condition from :meth:`to_data` output, validating it like the constructor.

        Raises ``InvalidInputError`` (or a subclass) naming the field for malformed data:
        ``"condition"`` when ``data`` is not a mapping or has an unknown key, the field's name
        for a bad value, ``"windows[i].<field>"`` for a bad window.
        """
        fields = _mapping(data, "condition", _CONDITION_KEYS)
        values: dict[str, Any] = {}
        for key in ("products", "categories", "merchants", "merchant_groups"):
            if key in fields:
                names = fields[key]
                if not isinstance(names, list):
                    raise InvalidInputError(key, "must be a list of strings", names)
                values[key] = names
        if "windows" in fields:
            raw = fields["windows"]
            if not isinstance(raw, list):
                raise InvalidInputError("windows", "must be a list of windows", raw)
            windows = []
            for index, item in enumerate(raw):
                try:
                    windows.append(TimeWindow.from_data(item))
                except InvalidInputError as exc:
                    raise InvalidInputError(
                        f"windows[{index}].{exc.field}", exc.rule, exc.value
                    ) from exc
            values["windows"] = windows
        for key in ("valid_from", "valid_until"):
            if key in fields:
                values[key] = _instant_from_text(fields[key], key)
        if "minimum_purchase" in fields:
            values["minimum_purchase"] = _money_from_data(
                fields["minimum_purchase"], "minimum_purchase"
            )
        return cls(**values)


_UNRESTRICTED: Final = SpendCondition()
_CONDITION_KEYS: Final = frozenset(
    {
        "products",
        "categories",
        "merchants",
        "merchant_groups",
        "windows",
        "valid_from",
        "valid_until",
        "minimum_purchase",
    }
)


# -- words (private) -----------------------------------------------------------------------------


def _describe_time(value: time, *, end: bool = False) -> str:
    if end and value == _MIDNIGHT:
        return "24:00"
    if value.second == 0 and value.microsecond == 0:
        return value.isoformat(timespec="minutes")
    return value.isoformat()


def _describe_days(days: frozenset[int], day_names: Mapping[int, str]) -> str:
    if len(days) == 7:
        return "every day"
    runs: list[list[int]] = []
    for day in sorted(days):
        if runs and runs[-1][-1] == day - 1:
            runs[-1].append(day)
        else:
            runs.append([day])
    parts: list[str] = []
    for run in runs:
        names = [day_names[day - 1] for day in run]  # babel counts from 0 = Monday
        if len(run) >= 3:
            parts.append(f"{names[0]} to {names[-1]}")
        else:
            parts.extend(names)
    return ", ".join(parts)


def _describe_window(window: TimeWindow, day_names: Mapping[int, str]) -> str:
    return (
        f"{_describe_days(window.days, day_names)} {_describe_time(window.start)}"
        f"–{_describe_time(window.end, end=True)} ({window.zone})"
    )


def _describe_instant(value: datetime) -> str:
    return f"{value.date().isoformat()} {_describe_time(value.time())} UTC"


def _describe_validity(valid_from: datetime | None, valid_until: datetime | None) -> list[str]:
    phrases = []
    if valid_from is not None:
        phrases.append(f"valid from {_describe_instant(valid_from)}")
    if valid_until is not None:
        phrases.append(f"valid until {_describe_instant(valid_until)}")
    return phrases


# -- data (private) ------------------------------------------------------------------------------


def _mapping(data: object, field: str, keys: frozenset[str]) -> Mapping[str, Any]:
    if not isinstance(data, Mapping):
        raise InvalidInputError(field, "must be a mapping (a JSON object)", data)
    for key in data:
        if key not in keys:
            raise InvalidInputError(field, f"has an unknown key {key!r}", data)
    return data


def _time_from_text(value: object, field: str) -> time:
    if not isinstance(value, str):
        raise InvalidInputError(field, "must be an ISO 8601 time string such as '08:00:00'", value)
    try:
        return time.fromisoformat(value)
    except ValueError as exc:
        raise InvalidInputError(
            field, "must be an ISO 8601 time string such as '08:00:00'", value
        ) from exc






# -- condition groups ----------------------------------------------------------------------------


def _group_id(value: str) -> str:
    return _text(value, "id")


def _tenant_id(value: str) -> str:
    return _text(value, "tenant_id")


def _group_name(value: str) -> str:
    return _text(value, "name")


def _condition(value: SpendCondition) -> SpendCondition:
    if not isinstance(value, SpendCondition):
        raise InvalidInputError("condition", "must be a SpendCondition", value)
    return value


def _version(value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidInputError("version", "must be an int of at least 1", value)
    return value


@attrs.frozen
class ConditionGroup:
    """A named, reusable condition defined once for a tenant, with a validity of its own.

    ``condition`` holds the group's product, merchant and time restrictions (its own validity
    and minimum are allowed too). ``version`` starts at 1 and grows by one each time the
    condition changes (see :meth:`with_condition`); lots keep the version they were granted
    under. ``valid_from``/``valid_until`` are the group's validity, half-open and kept in UTC:
    lots that refer to the group follow it, whatever version they hold.

    Raises ``InvalidInputError`` naming ``"id"``, ``"tenant_id"``, ``"name"``, ``"condition"``
    or ``"version"`` (an int of at least 1), and ``InvalidTimeError`` for a naive instant or
    ``valid_until`` not after ``valid_from``.
    """

    id: str = attrs.field(converter=_group_id)
    tenant_id: str = attrs.field(converter=_tenant_id)
    name: str = attrs.field(converter=_group_name)
    condition: SpendCondition = attrs.field(converter=_condition)
    version: int = attrs.field(default=1, converter=_version)
    valid_from: datetime | None = attrs.field(default=None, converter=_valid_from)
    valid_until: datetime | None = attrs.field(default=None, converter=_valid_until)

    def __attrs_post_init__(self) -> None:
        _check_order(self.valid_from, self.valid_until)

    def is_valid_at(self, at: datetime) -> bool:
        """Whether the aware instant ``at`` lies in the group's own validity
        ``[valid_from, valid_until)`` (the condition's validity is judged by
        :meth:`SpendCondition.allows_purchase`). Raises ``InvalidTimeError("at", ...)`` for a
        naive ``at``."""
        return _is_valid_at(self.valid_from, self.valid_until, require_aware(at, "at"))

    def with_condition(self, condition: SpendCondition) -> ConditionGroup:
        """The group with ``condition``: the next version when it differs from the current
        one, the group itself when it is equal."""
        condition = _condition(condition)
        if condition == self.condition:
            return self
        return attrs.evolve(self, condition=condition, version=self.version + 1)

    def describe(self, locale: str = "en_US") -> tuple[str, ...]:
        """The condition's phrases (see :meth:`SpendCondition.describe`) followed by the
        group's own validity (``"valid from …"``, ``"valid until …"``); ``("any purchase",)``
        when neither restricts anything."""
        phrases = self.condition._phrases(locale) + tuple(
            _describe_validity(self.valid_from, self.valid_until)
        )
        return phrases or ("any purchase",)
