"""Spend conditions: validation, time windows across DST, words, data round trips, predicates."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from babel.dates import get_day_names
from dateutil import tz as dateutil_tz
from hypothesis import given
from hypothesis import strategies as st

from prepaid_wallet.conditions import (
    ConditionGroup,
    LineItem,
    SpendCondition,
    TimeWindow,
    end_of_local_day,
)
from prepaid_wallet.errors import (
    CurrencyMismatchError,
    InvalidAmountError,
    InvalidInputError,
    InvalidTimeError,
)
from prepaid_wallet.formatting import format_money
from prepaid_wallet.money import Money
from tests.tz_probe import PROCESS_ZONES, probe_here, probe_in_subprocess

US = timedelta(microseconds=1)
MINUTE = timedelta(minutes=1)
NICOSIA = "Europe/Nicosia"
WEEKDAYS = frozenset({1, 2, 3, 4, 5})
MON = date(2026, 1, 5)  # a Monday; Nicosia is UTC+2 in January
T0 = datetime(2026, 1, 1, tzinfo=UTC)
T1 = datetime(2026, 2, 1, tzinfo=UTC)


def eur(amount: str) -> Money:
    return Money.of(amount, "EUR")


# Day names and amounts in other locales are CLDR data (babel's): expectations are built from it.
DE_DAYS = get_day_names("wide", locale="de_DE")


def nicosia(day: date, hour: int, minute: int = 0, micro: int = 0) -> datetime:
    """A Nicosia wall time as an aware datetime in that zone."""
    return datetime.combine(day, time(hour, minute, 0, micro), tzinfo=ZoneInfo(NICOSIA))


OFFICE = TimeWindow(WEEKDAYS, time(8), time(12), NICOSIA)


# -- strategies (conditions) ---------------------------------------------------------------------

ZONES = ("UTC", NICOSIA, "Europe/Berlin", "America/New_York", "America/Santiago",
         "Australia/Lord_Howe", "Asia/Kathmandu", "Pacific/Kiritimati", "Pacific/Chatham")


def names() -> st.SearchStrategy[frozenset[str]]:
    return st.frozensets(st.text(min_size=1, max_size=6), max_size=4)


@st.composite
def time_windows(draw: st.DrawFn) -> TimeWindow:
    days = draw(st.frozensets(st.integers(1, 7), min_size=1))
    start = draw(st.times())
    end = time(0) if draw(st.booleans()) else draw(st.times().filter(lambda t: t > start))
    return TimeWindow(days, start, end, draw(st.sampled_from(ZONES)))


def instants() -> st.SearchStrategy[datetime]:
    return st.datetimes(
        min_value=datetime(1990, 1, 1), max_value=datetime(2037, 12, 31), timezones=st.just(UTC)
    )


@st.composite
def spend_conditions(draw: st.DrawFn) -> SpendCondition:
    valid_from = draw(st.none() | instants())
    valid_until = draw(st.none() | instants())
    if valid_from is not None and valid_until is not None and valid_until <= valid_from:
        valid_until = valid_from + draw(st.timedeltas(min_value=US, max_value=timedelta(days=900)))
    minimum = draw(
        st.none()
        | st.builds(Money, st.integers(1, 10**12), st.sampled_from(("EUR", "JPY", "KWD")))
    )
    return SpendCondition(
        products=draw(names()),
        categories=draw(names()),
        merchants=draw(names()),
        merchant_groups=draw(names()),
        windows=draw(st.lists(time_windows(), max_size=3)),
        valid_from=valid_from,
        valid_until=valid_until,
        minimum_purchase=minimum,
    )


# -- validation ----------------------------------------------------------------------------------


def window(**changes: Any) -> TimeWindow:
    fields: dict[str, Any] = {"days": WEEKDAYS, "start": time(8), "end": time(12), "zone": NICOSIA}
    fields.update(changes)
    return TimeWindow(**fields)


def group(**changes: Any) -> ConditionGroup:
    fields: dict[str, Any] = {"id": "g1", "tenant_id": "t1", "name": "Coffee",
                              "condition": SpendCondition(products=["coffee"])}
    fields.update(changes)
    return ConditionGroup(**fields)


# Untyped handles on the public API, to call it with the wrong types on purpose.
AnyLineItem: Any = LineItem
AnySpendCondition: Any = SpendCondition
any_end_of_local_day: Any = end_of_local_day

BAD_INPUTS: list[tuple[str, Callable[[], object], type[Exception], str]] = [
    ("days empty", lambda: window(days=[]), InvalidInputError, "days"),
    ("days zero", lambda: window(days=[0, 1]), InvalidInputError, "days"),
    ("days eight", lambda: window(days=[8]), InvalidInputError, "days"),
    ("days bool", lambda: window(days=[True]), InvalidInputError, "days"),
    ("days str", lambda: window(days="12"), InvalidInputError, "days"),
    ("days str items", lambda: window(days=["1"]), InvalidInputError, "days"),
    ("days not iterable", lambda: window(days=1), InvalidInputError, "days"),
    ("days unhashable", lambda: window(days=[[1]]), InvalidInputError, "days"),
    ("start not time", lambda: window(start="08:00"), InvalidInputError, "start"),
    ("start datetime", lambda: window(start=datetime(2026, 1, 1, 8)), InvalidInputError, "start"),
    ("start aware", lambda: window(start=time(8, tzinfo=UTC)), InvalidInputError, "start"),
    ("end aware", lambda: window(end=time(12, tzinfo=UTC)), InvalidInputError, "end"),
    ("end before start", lambda: window(end=time(7)), InvalidInputError, "end"),
    ("end equals start", lambda: window(end=time(8)), InvalidInputError, "end"),
    ("zone unknown", lambda: window(zone="Mars/Olympus"), InvalidInputError, "zone"),
    ("zone empty", lambda: window(zone=""), InvalidInputError, "zone"),
    ("zone directory", lambda: window(zone="Europe"), InvalidInputError, "zone"),
    ("zone path", lambda: window(zone="../etc/passwd"), InvalidInputError, "zone"),
    ("zone host", lambda: window(zone="localtime"), InvalidInputError, "zone"),
    ("zone not str", lambda: window(zone=3), InvalidInputError, "zone"),
    ("product empty", lambda: AnyLineItem("", eur("1.00")), InvalidInputError, "product_id"),
    ("product not str", lambda: AnyLineItem(7, eur("1.00")), InvalidInputError, "product_id"),
    ("amount zero", lambda: AnyLineItem("p", eur("0.00")), InvalidAmountError, "amount"),
    ("amount negative", lambda: AnyLineItem("p", eur("-1.00")), InvalidAmountError, "amount"),
    ("amount not money", lambda: AnyLineItem("p", 100), InvalidAmountError, "amount"),
    ("category empty", lambda: AnyLineItem("p", eur("1.00"), ""), InvalidInputError, "category"),
    ("category not str", lambda: AnyLineItem("p", eur("1.00"), 3), InvalidInputError, "category"),
    ("products str", lambda: AnySpendCondition(products="tea"), InvalidInputError, "products"),
    ("products empty item", lambda: AnySpendCondition(products=[""]), InvalidInputError,
     "products"),
    ("categories int", lambda: AnySpendCondition(categories=[1]), InvalidInputError, "categories"),
    ("merchants none", lambda: AnySpendCondition(merchants=None), InvalidInputError, "merchants"),
    ("merchant groups item", lambda: AnySpendCondition(merchant_groups=[None]),
     InvalidInputError, "merchant_groups"),
    ("windows item", lambda: AnySpendCondition(windows=["Mon"]), InvalidInputError, "windows"),
    ("windows single", lambda: AnySpendCondition(windows=OFFICE), InvalidInputError, "windows"),
    ("valid_from naive", lambda: AnySpendCondition(valid_from=datetime(2026, 1, 1)),
     InvalidTimeError, "valid_from"),
    ("valid_until str", lambda: AnySpendCondition(valid_until="2026-01-01"),
     InvalidTimeError, "valid_until"),
    ("valid_until equal", lambda: AnySpendCondition(valid_from=T0, valid_until=T0),
     InvalidTimeError, "valid_until"),
    ("valid_until before", lambda: AnySpendCondition(valid_from=T1, valid_until=T0),
     InvalidTimeError, "valid_until"),
    ("minimum zero", lambda: AnySpendCondition(minimum_purchase=eur("0")),
     InvalidAmountError, "minimum_purchase"),
    ("minimum negative", lambda: AnySpendCondition(minimum_purchase=eur("-5")),
     InvalidAmountError, "minimum_purchase"),
    ("minimum not money", lambda: AnySpendCondition(minimum_purchase=5),
     InvalidAmountError, "minimum_purchase"),
    ("group id", lambda: group(id=""), InvalidInputError, "id"),
    ("group tenant", lambda: group(tenant_id=None), InvalidInputError, "tenant_id"),
    ("group name", lambda: group(name=""), InvalidInputError, "name"),
    ("group condition", lambda: group(condition={}), InvalidInputError, "condition"),
    ("group version zero", lambda: group(version=0), InvalidInputError, "version"),
    ("group version bool", lambda: group(version=True), InvalidInputError, "version"),
    ("group version str", lambda: group(version="2"), InvalidInputError, "version"),
    ("group naive", lambda: group(valid_from=datetime(2026, 1, 1)), InvalidTimeError,
     "valid_from"),
    ("group order", lambda: group(valid_from=T1, valid_until=T0), InvalidTimeError,
     "valid_until"),
    ("contains naive", lambda: OFFICE.contains(datetime(2026, 1, 5, 9)), InvalidTimeError, "at"),
    ("is_valid_at naive", lambda: group().is_valid_at(datetime(2026, 1, 5)), InvalidTimeError,
     "at"),
    ("allows_line not line", lambda: AnySpendCondition().allows_line("coffee"), InvalidInputError,
     "line"),
    ("describe empty locale", lambda: AnySpendCondition(products=["a"]).describe(""),
     InvalidInputError, "locale"),
    ("describe bad locale", lambda: AnySpendCondition().describe("xx_NOPE"), InvalidInputError,
     "locale"),
    ("end_of_local_day datetime", lambda: any_end_of_local_day(datetime(2026, 1, 5), NICOSIA),
     InvalidInputError, "day"),
    ("end_of_local_day aware datetime",
     lambda: any_end_of_local_day(datetime(2026, 1, 5, tzinfo=UTC), NICOSIA), InvalidInputError,
     "day"),
    ("end_of_local_day str", lambda: any_end_of_local_day("2026-01-05", NICOSIA), InvalidInputError,
     "day"),
    ("end_of_local_day last day", lambda: any_end_of_local_day(date.max, "UTC"), InvalidInputError,
     "day"),
    ("end_of_local_day zone", lambda: any_end_of_local_day(MON, "Nowhere/City"), InvalidInputError,
     "zone"),
    ("end_of_local_day zone none", lambda: any_end_of_local_day(MON, None), InvalidInputError,
     "zone"),
]


@pytest.mark.parametrize(
    ("build", "error", "field"),
    [pytest.param(b, e, f, id=name) for name, b, e, f in BAD_INPUTS],
)
def test_bad_input_raises_a_typed_error_naming_the_field(
    build: Callable[[], object], error: type[InvalidInputError], field: str
) -> None:
    with pytest.raises(error) as info:
        build()
    assert info.value.field == field
    assert info.value.rule


def test_values_are_normalised() -> None:
    w = TimeWindow([5, 1, 1], time(8, fold=1), time(12), NICOSIA)
    assert w.days == frozenset({1, 5})
    assert w.start.fold == 0
    c = SpendCondition(products=("b", "a", "a"), windows=[OFFICE, OFFICE],
                       valid_from=datetime(2026, 1, 1, 2, tzinfo=ZoneInfo(NICOSIA)))
    assert c.products == frozenset({"a", "b"})
    assert c.windows == (OFFICE,)
    assert c.valid_from == datetime(2026, 1, 1, tzinfo=UTC)
    assert c.valid_from is not None
    assert c.valid_from.utcoffset() == timedelta(0)
    # Window order does not matter: equal windows make equal conditions.
    other = window(days=[6, 7])
    assert SpendCondition(windows=[OFFICE, other]) == SpendCondition(windows=[other, OFFICE])


# -- windows -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("at", "inside"),
    [
        (nicosia(MON, 8), True),
        (nicosia(MON, 7, 59, 0).replace(second=59, microsecond=999_999), False),
        (nicosia(MON, 10, 30), True),
        (nicosia(MON, 11, 59).replace(second=59, microsecond=999_999), True),  # 1 µs before end
        (nicosia(MON, 12), False),  # at end
        (nicosia(MON + timedelta(days=4), 9), True),  # Friday
        (nicosia(MON + timedelta(days=5), 9), False),  # Saturday
        (nicosia(MON + timedelta(days=6), 9), False),  # Sunday
        (datetime(2026, 1, 5, 6, tzinfo=UTC), True),  # 08:00 in Nicosia
        (datetime(2026, 1, 5, 10, tzinfo=UTC), False),  # 12:00 in Nicosia
        # 01:30 Monday in Tokyo is 18:30 Sunday in Nicosia; 15:30 is 08:30 Monday there.
        (datetime(2026, 1, 5, 1, 30, tzinfo=ZoneInfo("Asia/Tokyo")), False),
        (datetime(2026, 1, 5, 15, 30, tzinfo=ZoneInfo("Asia/Tokyo")), True),
    ],
)
def test_office_window(at: datetime, inside: bool) -> None:
    assert OFFICE.contains(at) is inside


def test_window_until_midnight() -> None:
    late = TimeWindow([5], time(22), time(0), NICOSIA)  # Friday 22:00 to the end of the day
    friday = MON + timedelta(days=4)
    assert late.until_end_of_day
    assert not late.contains(nicosia(friday, 21, 59).replace(second=59, microsecond=999_999))
    assert late.contains(nicosia(friday, 22))
    assert late.contains(nicosia(friday, 23, 59).replace(second=59, microsecond=999_999))
    assert not late.contains(nicosia(friday + timedelta(days=1), 0))
    assert not late.contains(nicosia(friday + timedelta(days=1), 22, 30))  # Saturday
    whole = TimeWindow(range(1, 8), time(0), time(0), "UTC")
    assert whole.contains(datetime(2026, 3, 1, tzinfo=UTC))
    assert whole.contains(datetime(2026, 3, 1, 23, 59, 59, 999_999, tzinfo=UTC))


def test_window_with_seconds_and_microseconds() -> None:
    w = TimeWindow([1], time(8, 0, 30), time(8, 0, 30, 500), "UTC")
    at = datetime(2026, 1, 5, 8, 0, 30, tzinfo=UTC)
    assert w.contains(at)
    assert w.contains(at + timedelta(microseconds=499))
    assert not w.contains(at + timedelta(microseconds=500))
    assert not w.contains(at - US)


def _local_wall(at: datetime, zone: str) -> datetime:
    """Local wall time with dateutil's tz engine: an oracle independent of zoneinfo."""
    zone_info = dateutil_tz.gettz(zone)
    assert zone_info is not None
    return at.astimezone(zone_info).replace(tzinfo=None)


@given(w=time_windows(), at=instants())
def test_contains_agrees_with_an_independent_local_time(w: TimeWindow, at: datetime) -> None:
    local = _local_wall(at, w.zone)
    wall = local.time()
    expected = (
        local.isoweekday() in w.days
        and wall >= w.start
        and (w.end == time(0) or wall < w.end)
    )
    assert w.contains(at) is expected
    # The same instant in another zone is the same answer.
    assert w.contains(at.astimezone(ZoneInfo("Asia/Kathmandu"))) is expected


# -- DST -----------------------------------------------------------------------------------------

DST_ZONES = ("Europe/Berlin", "America/New_York", "America/Santiago", "Australia/Lord_Howe")
KNOWN_2026 = {
    "Europe/Berlin": [date(2026, 3, 29), date(2026, 10, 25)],
    "America/New_York": [date(2026, 3, 8), date(2026, 11, 1)],
    "Australia/Lord_Howe": [date(2026, 4, 5), date(2026, 10, 4)],
}


def transitions_2026(zone: str) -> list[datetime]:
    """The instants in 2026 at which ``zone`` changes its UTC offset (scanned, to the minute;
    every change since 1970 in these zones falls on a whole minute)."""
    zone_info = ZoneInfo(zone)
    found = []
    at = datetime(2026, 1, 1, tzinfo=UTC)
    offset = at.astimezone(zone_info).utcoffset()
    while at.year == 2026:
        step = at + timedelta(hours=1)
        if step.astimezone(zone_info).utcoffset() != offset:
            change = at
            while change.astimezone(zone_info).utcoffset() == offset:
                change += MINUTE
            found.append(change)
            offset = change.astimezone(zone_info).utcoffset()
        at = step
    return found


def first_instant(zone: str, start: datetime, reached: Callable[[datetime], bool]) -> datetime:
    """Brute force: the first whole UTC minute from ``start`` whose local time is ``reached``."""
    zone_info = ZoneInfo(zone)
    at = start
    while not reached(at.astimezone(zone_info)):
        at += MINUTE
    return at


def scan_start(day: date) -> datetime:
    """An instant that is still before ``day`` begins in every zone (offsets are below 15h)."""
    return datetime.combine(day, time(0), tzinfo=UTC) - timedelta(hours=15)


DST_DAYS = [
    pytest.param(zone, change.astimezone(ZoneInfo(zone)).date() + timedelta(days=shift),
                 id=f"{zone}-{change.date()}{shift:+d}")
    for zone in DST_ZONES
    for change in transitions_2026(zone)
    for shift in (-1, 0, 1)
]


def test_transitions_found_by_scanning_are_the_known_ones() -> None:
    for zone, days in KNOWN_2026.items():
        assert [c.astimezone(ZoneInfo(zone)).date() for c in transitions_2026(zone)] == days
    santiago = transitions_2026("America/Santiago")
    assert len(santiago) == 2
    assert len(DST_DAYS) == 3 * 2 * len(DST_ZONES)


@pytest.mark.parametrize(("zone", "day"), DST_DAYS)
def test_end_of_local_day_across_dst(zone: str, day: date) -> None:
    zone_info = ZoneInfo(zone)
    expected = first_instant(zone, scan_start(day), lambda local: local.date() > day)
    result = end_of_local_day(day, zone)
    assert result == expected
    assert result.tzinfo is UTC
    assert result.astimezone(zone_info).date() == day + timedelta(days=1)
    assert (result - US).astimezone(zone_info).date() <= day


@pytest.mark.parametrize(("zone", "day"), DST_DAYS)
def test_window_boundaries_across_dst(zone: str, day: date) -> None:
    zone_info = ZoneInfo(zone)
    changes = [c.astimezone(zone_info) for c in transitions_2026(zone)]
    # Ends on whole minutes around the change: before, at, inside and after the shifted hour.
    ends = {time(0), time(1), time(1, 45), time(2), time(2, 15), time(2, 30), time(3),
            time(23, 30)}
    ends |= {c.time().replace(second=0) for c in changes}
    for end in sorted(ends):
        w = TimeWindow([day.isoweekday()], time(0), end, zone)
        if end == time(0):
            boundary = first_instant(zone, scan_start(day), lambda local: local.date() > day)
        else:

            def reached(local: datetime, end: time = end) -> bool:
                return local.date() > day or (local.date() == day and local.time() >= end)

            boundary = first_instant(zone, scan_start(day), reached)
        # Inside one microsecond before the boundary, unless the day has no such hours at all
        # (Santiago's 00:00-01:00 on the day clocks jump from 00:00 to 01:00).
        just_before = (boundary - US).astimezone(zone_info)
        assert w.contains(boundary - US) is (just_before.date() == day), (end, boundary)
        assert not w.contains(boundary), (end, boundary)
        if zone == "America/Santiago" and day == date(2026, 9, 6) and end == time(1):
            assert just_before.date() < day  # that hour never happens


@pytest.mark.parametrize(
    ("day", "zone", "expected"),
    [
        # Santiago: clocks jump from 00:00 to 01:00, so the day starts at 01:00 local.
        (date(2026, 9, 5), "America/Santiago", datetime(2026, 9, 6, 4, tzinfo=UTC)),
        # Santiago: clocks go back from 24:00 to 23:00; the next day starts after the repeat.
        (date(2026, 4, 4), "America/Santiago", datetime(2026, 4, 5, 4, tzinfo=UTC)),
        # Toronto 1919: a gap from 23:30 to 00:30 straddles midnight; the day starts at 00:30.
        (date(1919, 3, 30), "America/Toronto", datetime(1919, 3, 31, 4, 30, tzinfo=UTC)),
        # Samoa skipped 2011-12-30 entirely: 2011-12-29 ends when 2011-12-31 begins.
        (date(2011, 12, 29), "Pacific/Apia", datetime(2011, 12, 30, 10, tzinfo=UTC)),
        (date(2026, 1, 5), NICOSIA, datetime(2026, 1, 5, 22, tzinfo=UTC)),
        (date(2026, 1, 5), "Pacific/Kiritimati", datetime(2026, 1, 5, 10, tzinfo=UTC)),
        (date(2026, 1, 5), "UTC", datetime(2026, 1, 6, tzinfo=UTC)),
    ],
)
def test_end_of_local_day_known_values(day: date, zone: str, expected: datetime) -> None:
    result = end_of_local_day(day, zone)
    assert result == expected
    assert result.astimezone(ZoneInfo(zone)).date() > day
    assert (result - US).astimezone(ZoneInfo(zone)).date() <= day


@given(day=st.dates(min_value=date(1900, 1, 2), max_value=date(2037, 12, 30)),
       zone=st.sampled_from((*ZONES, "Pacific/Apia", "America/Toronto", "Europe/Moscow")))
def test_end_of_local_day_is_where_the_local_date_changes(day: date, zone: str) -> None:
    zone_info = ZoneInfo(zone)
    result = end_of_local_day(day, zone)
    assert result.astimezone(zone_info).date() > day
    assert (result - US).astimezone(zone_info).date() <= day
    assert end_of_local_day(day - timedelta(days=1), zone) < result


# -- process time zone ---------------------------------------------------------------------------

_TZ_PROBE = """
import json
import time as _time
from datetime import UTC, date, datetime, time, timedelta

from prepaid_wallet.conditions import TimeWindow, end_of_local_day


def probe():
    days = [date(2026, 1, 5), date(2026, 3, 28), date(2026, 4, 4), date(2026, 9, 5),
            date(2026, 10, 3), date(2026, 10, 24)]
    zones = ["Europe/Nicosia", "America/Santiago", "Australia/Lord_Howe", "UTC"]
    ends = [end_of_local_day(d, z).isoformat() for d in days for z in zones]
    window = TimeWindow([1, 2, 3, 4, 5], time(8), time(12), "Europe/Nicosia")
    start = datetime(2026, 3, 27, tzinfo=UTC)
    inside = [window.contains(start + timedelta(minutes=37 * i)) for i in range(400)]
    return {"ends": ends, "inside": inside, "zone": _time.strftime("%Z")}


if __name__ == "__main__":
    print(json.dumps(probe()))
"""


def test_results_do_not_depend_on_the_process_time_zone() -> None:
    here = probe_here(_TZ_PROBE)
    there = {tz: probe_in_subprocess(_TZ_PROBE, tz) for tz in PROCESS_ZONES}
    # The processes really ran in different local zones ...
    assert there["Pacific/Kiritimati"]["zone"] != there["America/Santiago"]["zone"]
    # ... and computed the same instants and answers.
    for result in there.values():
        assert result["ends"] == here["ends"]
        assert result["inside"] == here["inside"]


# -- words ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("condition", "locale", "expected"),
    [
        (SpendCondition(), "en_US", ("any purchase",)),
        (SpendCondition(), "de_DE", ("any purchase",)),
        (
            SpendCondition(products=["tea", "coffee"], categories=["bakery"],
                           merchants=["m2", "m1"], merchant_groups=["hubs"]),
            "en_US",
            ("products: coffee, tea", "categories: bakery", "merchants: m1, m2",
             "merchant groups: hubs"),
        ),
        (SpendCondition(windows=[OFFICE]), "en_US",
         ("Monday to Friday 08:00–12:00 (Europe/Nicosia)",)),
        (SpendCondition(windows=[OFFICE]), "de_DE",
         (f"{DE_DAYS[0]} to {DE_DAYS[4]} 08:00–12:00 (Europe/Nicosia)",)),
        (SpendCondition(windows=[TimeWindow([1, 3], time(9, 30), time(0), "UTC")]), "en_US",
         ("Monday, Wednesday 09:30–24:00 (UTC)",)),
        (SpendCondition(windows=[TimeWindow([6, 7, 1, 2], time(0), time(0), "UTC")]), "en_US",
         ("Monday, Tuesday, Saturday, Sunday 00:00–24:00 (UTC)",)),
        (SpendCondition(windows=[TimeWindow([1, 2, 3, 5, 6, 7], time(7), time(8, 0, 30),
                                            "UTC")]), "en_US",
         ("Monday to Wednesday, Friday to Sunday 07:00–08:00:30 (UTC)",)),
        (SpendCondition(windows=[TimeWindow(range(1, 8), time(6), time(22), "Asia/Kathmandu")]),
         "en_US", ("every day 06:00–22:00 (Asia/Kathmandu)",)),
        (SpendCondition(valid_from=T0, valid_until=datetime(2026, 2, 1, 12, 30, 5, tzinfo=UTC)),
         "en_US", ("valid from 2026-01-01 00:00 UTC", "valid until 2026-02-01 12:30:05 UTC")),
        (SpendCondition(minimum_purchase=eur("20.00")), "en_US",
         ("minimum purchase " + format_money(eur("20.00"), "en_US"),)),
        (SpendCondition(minimum_purchase=eur("1234.50")), "de_DE",
         ("minimum purchase " + format_money(eur("1234.50"), "de_DE"),)),
        (
            SpendCondition(products=["p"], windows=[OFFICE, window(days=[6], zone="UTC")],
                           valid_until=T1, minimum_purchase=Money.of("500", "JPY")),
            "en_US",
            ("products: p", "Monday to Friday 08:00–12:00 (Europe/Nicosia)",
             "Saturday 08:00–12:00 (UTC)", "valid until 2026-02-01 00:00 UTC",
             "minimum purchase " + format_money(Money.of("500", "JPY"), "en_US")),
        ),
    ],
)
def test_describe(condition: SpendCondition, locale: str, expected: tuple[str, ...]) -> None:
    assert condition.describe(locale) == expected


def test_describe_defaults_to_en_us_whatever_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("LANG", "LC_ALL", "LC_TIME", "LANGUAGE"):
        monkeypatch.setenv(name, "de_DE.UTF-8")
    assert SpendCondition(windows=[OFFICE]).describe() == (
        "Monday to Friday 08:00–12:00 (Europe/Nicosia)",
    )


def test_group_describe() -> None:
    g = group(condition=SpendCondition(products=["coffee"]), valid_from=T0)
    assert g.describe() == ("products: coffee", "valid from 2026-01-01 00:00 UTC")
    assert group(condition=SpendCondition()).describe() == ("any purchase",)
    assert group(condition=SpendCondition(), valid_until=T1).describe("de_DE") == (
        "valid until 2026-02-01 00:00 UTC",
    )


# -- data ----------------------------------------------------------------------------------------


@given(condition=spend_conditions())
def test_data_round_trip(condition: SpendCondition) -> None:
    data = condition.to_data()
    through_json = json.loads(json.dumps(data))
    assert through_json == data
    again = SpendCondition.from_data(through_json)
    assert again == condition
    assert again.to_data() == data
    assert again.describe() == condition.describe()


def test_data_shape() -> None:
    assert SpendCondition().to_data() == {}
    assert SpendCondition.from_data({}) == SpendCondition()
    condition = SpendCondition(
        products=["b", "a"], windows=[TimeWindow([5, 1], time(8), time(12, 0, 0, 1), NICOSIA)],
        valid_from=datetime(2026, 1, 1, 2, tzinfo=ZoneInfo(NICOSIA)),
        minimum_purchase=eur("20.00"),
    )
    assert condition.to_data() == {
        "products": ["a", "b"],
        "windows": [{"days": [1, 5], "start": "08:00:00", "end": "12:00:00.000001",
                     "zone": NICOSIA}],
        "valid_from": "2026-01-01T00:00:00+00:00",
        "minimum_purchase": {"minor": 2000, "currency": "EUR"},
    }


GOOD_WINDOW = {"days": [1], "start": "08:00:00", "end": "12:00:00", "zone": NICOSIA}

MALFORMED: list[tuple[object, str]] = [
    (None, "condition"),
    ([], "condition"),
    ({"product": ["a"]}, "condition"),
    ({"products": "a"}, "products"),
    ({"products": ["a", 1]}, "products"),
    ({"categories": [""]}, "categories"),
    ({"merchants": None}, "merchants"),
    ({"merchant_groups": {"a": 1}}, "merchant_groups"),
    ({"windows": GOOD_WINDOW}, "windows"),
    ({"windows": ["Mon 08-12"]}, "windows[0].window"),
    ({"windows": [GOOD_WINDOW, {**GOOD_WINDOW, "extra": 1}]}, "windows[1].window"),
    ({"windows": [{k: v for k, v in GOOD_WINDOW.items() if k != "zone"}]}, "windows[0].window"),
    ({"windows": [{**GOOD_WINDOW, "days": 1}]}, "windows[0].days"),
    ({"windows": [{**GOOD_WINDOW, "days": [9]}]}, "windows[0].days"),
    ({"windows": [{**GOOD_WINDOW, "start": "8 o'clock"}]}, "windows[0].start"),
    ({"windows": [{**GOOD_WINDOW, "start": 8}]}, "windows[0].start"),
    ({"windows": [{**GOOD_WINDOW, "end": "08:00:00+02:00"}]}, "windows[0].end"),
    ({"windows": [{**GOOD_WINDOW, "end": "07:00:00"}]}, "windows[0].end"),
    ({"windows": [{**GOOD_WINDOW, "zone": "Europe/Atlantis"}]}, "windows[0].zone"),
    ({"valid_from": "2026-01-01T00:00:00"}, "valid_from"),
    ({"valid_from": "yesterday"}, "valid_from"),
    ({"valid_until": 1767225600}, "valid_until"),
    ({"valid_from": "2026-02-01T00:00:00+00:00", "valid_until": "2026-01-01T00:00:00+00:00"},
     "valid_until"),
    ({"minimum_purchase": "20.00 EUR"}, "minimum_purchase"),
    ({"minimum_purchase": {"minor": 2000}}, "minimum_purchase"),
    ({"minimum_purchase": {"minor": "2000", "currency": "EUR"}}, "minimum_purchase"),
    ({"minimum_purchase": {"minor": True, "currency": "EUR"}}, "minimum_purchase"),
    ({"minimum_purchase": {"minor": 2000, "currency": "eur"}}, "minimum_purchase"),
    ({"minimum_purchase": {"minor": 0, "currency": "EUR"}}, "minimum_purchase"),
    ({"minimum_purchase": {"minor": 2**63, "currency": "EUR"}}, "minimum_purchase"),
]


@pytest.mark.parametrize(("data", "field"), MALFORMED)
def test_malformed_data(data: object, field: str) -> None:
    with pytest.raises(InvalidInputError) as info:
        SpendCondition.from_data(data)
    assert info.value.field == field


def test_window_data_round_trip() -> None:
    w = TimeWindow([7, 1], time(8, 15, 1, 2), time(0), "Australia/Lord_Howe")
    assert TimeWindow.from_data(json.loads(json.dumps(w.to_data()))) == w


# -- predicates ----------------------------------------------------------------------------------

COFFEE = LineItem("coffee", eur("3.00"), "drinks")
TEA = LineItem("tea", eur("2.00"), "drinks")
BREAD = LineItem("bread", eur("4.00"), "bakery")
SOAP = LineItem("soap", eur("5.00"))  # no category

# condition / line / expected
LINE_TABLE: list[tuple[SpendCondition, LineItem, bool]] = [
    (SpendCondition(), SOAP, True),
    (SpendCondition(merchants=["m1"]), SOAP, True),  # not a product restriction
    (SpendCondition(products=["coffee"]), COFFEE, True),
    (SpendCondition(products=["coffee"]), TEA, False),
    (SpendCondition(categories=["drinks"]), TEA, True),
    (SpendCondition(categories=["drinks"]), BREAD, False),
    (SpendCondition(categories=["drinks"]), SOAP, False),  # no category: product id only
    (SpendCondition(products=["bread"], categories=["drinks"]), BREAD, True),
    (SpendCondition(products=["bread"], categories=["drinks"]), COFFEE, True),
    (SpendCondition(products=["bread"], categories=["drinks"]), SOAP, False),
    (SpendCondition(products=["soap"], categories=["drinks"]), SOAP, True),
    (SpendCondition(products=["drinks"]), COFFEE, False),  # a category is not a product id
    (SpendCondition(categories=["coffee"]), COFFEE, False),  # nor a product id a category
]


@pytest.mark.parametrize(("condition", "line", "expected"), LINE_TABLE)
def test_allows_line(condition: SpendCondition, line: LineItem, expected: bool) -> None:
    assert condition.allows_line(line) is expected


MON_9 = nicosia(MON, 9)  # inside OFFICE
SAT_9 = nicosia(MON + timedelta(days=5), 9)
P: dict[str, Any] = {
    "at": MON_9, "merchant": "m1", "merchant_groups": frozenset({"hubs"}), "total": eur("30")
}

# condition / purchase changes / expected
PURCHASE_TABLE: list[tuple[SpendCondition, dict[str, Any], bool]] = [
    (SpendCondition(), {}, True),
    (SpendCondition(), {"merchant": None, "merchant_groups": frozenset()}, True),
    (SpendCondition(products=["x"]), {}, True),  # products are judged per line
    (SpendCondition(merchants=["m1"]), {}, True),
    (SpendCondition(merchants=["m2"]), {}, False),
    (SpendCondition(merchants=["m2"], merchant_groups=["hubs"]), {}, True),
    (SpendCondition(merchant_groups=["hubs"]), {}, True),
    (SpendCondition(merchant_groups=["hubs"]), {"merchant_groups": ["shops", "hubs"]}, True),
    (SpendCondition(merchant_groups=["malls"]), {}, False),
    (SpendCondition(merchant_groups=["hubs"]), {"merchant_groups": frozenset()}, False),
    (SpendCondition(merchants=["m1"]), {"merchant": None}, False),
    (SpendCondition(merchant_groups=["hubs"]), {"merchant": None}, False),
    (SpendCondition(windows=[OFFICE]), {}, True),
    (SpendCondition(windows=[OFFICE]), {"at": SAT_9}, False),
    (SpendCondition(windows=[OFFICE, window(days=[6])]), {"at": SAT_9}, True),
    (SpendCondition(valid_from=MON_9), {}, True),
    (SpendCondition(valid_from=MON_9 + US), {}, False),
    (SpendCondition(valid_until=MON_9 + US), {}, True),
    (SpendCondition(valid_until=MON_9), {}, False),
    (SpendCondition(minimum_purchase=eur("30")), {}, True),
    (SpendCondition(minimum_purchase=eur("30.01")), {}, False),
    (SpendCondition(merchants=["m1"], windows=[OFFICE], minimum_purchase=eur("10")), {}, True),
    (SpendCondition(merchants=["m1"], windows=[OFFICE], minimum_purchase=eur("10")),
     {"at": SAT_9}, False),
    (SpendCondition(merchants=["m1"], windows=[OFFICE], minimum_purchase=eur("10")),
     {"total": eur("9.99")}, False),
]


@pytest.mark.parametrize(("condition", "changes", "expected"), PURCHASE_TABLE)
def test_allows_purchase(
    condition: SpendCondition, changes: dict[str, Any], expected: bool
) -> None:
    assert condition.allows_purchase(**{**P, **changes}) is expected


@pytest.mark.parametrize(
    ("changes", "error", "field"),
    [
        ({"at": datetime(2026, 1, 5, 9)}, InvalidTimeError, "at"),
        ({"merchant": ""}, InvalidInputError, "merchant"),
        ({"merchant_groups": "hubs"}, InvalidInputError, "merchant_groups"),
        ({"total": 30}, InvalidAmountError, "total"),
        ({"total": Money.of("30", "USD")}, CurrencyMismatchError, "total"),
    ],
)
def test_allows_purchase_bad_input(
    changes: dict[str, Any], error: type[InvalidInputError], field: str
) -> None:
    # The minimum is in EUR and the merchant fails: the currency is still checked.
    condition = SpendCondition(merchants=["m9"], minimum_purchase=eur("10"))
    with pytest.raises(error) as info:
        condition.allows_purchase(**{**P, **changes})
    assert info.value.field == field


def test_currency_mismatch_names_both_currencies() -> None:
    with pytest.raises(CurrencyMismatchError) as info:
        SpendCondition(minimum_purchase=eur("10")).allows_purchase(
            **{**P, "total": Money.of("30", "USD")}
        )
    assert (info.value.left, info.value.right) == ("EUR", "USD")
    # Without a minimum any currency is fine.
    assert SpendCondition().allows_purchase(**{**P, "total": Money.of("30", "USD")})


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        (SpendCondition(), True),
        (SpendCondition(products=[]), True),
        (SpendCondition(products=["a"]), False),
        (SpendCondition(categories=["a"]), False),
        (SpendCondition(merchants=["a"]), False),
        (SpendCondition(merchant_groups=["a"]), False),
        (SpendCondition(windows=[OFFICE]), False),
        (SpendCondition(valid_from=T0), False),
        (SpendCondition(valid_until=T0), False),
        (SpendCondition(minimum_purchase=eur("1")), False),
    ],
)
def test_is_unrestricted(condition: SpendCondition, expected: bool) -> None:
    assert condition.is_unrestricted is expected


# -- condition groups ----------------------------------------------------------------------------


def test_group_validity_is_half_open() -> None:
    g = group(valid_from=T0, valid_until=T1)
    assert not g.is_valid_at(T0 - US)
    assert g.is_valid_at(T0)
    assert g.is_valid_at(T1 - US)
    assert not g.is_valid_at(T1)
    assert group().is_valid_at(datetime(1990, 1, 1, tzinfo=UTC))
    # Only the group's own validity: the condition's is judged by allows_purchase.
    assert group(condition=SpendCondition(valid_until=T0)).is_valid_at(T1)


def test_group_version_grows_when_the_condition_changes() -> None:
    g = group()
    assert g.version == 1
    assert g.with_condition(SpendCondition(products={"coffee"})) is g
    g2 = g.with_condition(SpendCondition(products=["coffee", "tea"]))
    assert (g2.version, g2.id, g2.name) == (2, g.id, g.name)
    assert g2.with_condition(SpendCondition()).version == 3
    with pytest.raises(InvalidInputError) as info:
        g.with_condition(None)  # type: ignore[arg-type]
    assert info.value.field == "condition"
