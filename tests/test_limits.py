"""Wallet limits: validation, window starts across DST, checks, overrides, data round trips."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from prepaid_wallet.clock import EARLIEST
from prepaid_wallet.errors import (
    CurrencyMismatchError,
    InvalidAmountError,
    InvalidInputError,
    InvalidTimeError,
)
from prepaid_wallet.money import Money
from prepaid_wallet.rules.limits import (
    LIMITED_OPERATIONS,
    Activity,
    LimitBreach,
    LimitRule,
    Limits,
    Period,
    Window,
    allowance,
    check,
    check_balance,
    check_override,
)
from prepaid_wallet.rules.operations import Operation
from tests.strategies import positive_money
from tests.tz_probe import PROCESS_ZONES, probe_here, probe_in_subprocess

US = timedelta(microseconds=1)
NICOSIA = "Europe/Nicosia"
BERLIN = "Europe/Berlin"
NEW_YORK = "America/New_York"
SANTIAGO = "America/Santiago"
LORD_HOWE = "Australia/Lord_Howe"


def eur(amount: str) -> Money:
    return Money.of(amount, "EUR")


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0,
    micro: int = 0,
) -> datetime:
    return datetime(year, month, day, hour, minute, second, micro, tzinfo=UTC)


DAY_NICOSIA = Window(period=Period.DAY, zone=NICOSIA)
WEEK_NICOSIA = Window(period=Period.WEEK, zone=NICOSIA)
MONTH_NICOSIA = Window(period=Period.MONTH, zone=NICOSIA)
ROLLING_7D = Window(rolling=timedelta(days=7))
ROLLING_24H = Window(rolling=timedelta(hours=24))

SPENDS_3_A_DAY = LimitRule(operation=Operation.SPEND, window=DAY_NICOSIA, max_count=3)
SPEND_100_A_WEEK = LimitRule(operation=Operation.SPEND, window=ROLLING_7D, max_amount=eur("100"))
SPENDS_5_AND_200_A_MONTH = LimitRule(
    operation=Operation.SPEND, window=MONTH_NICOSIA, max_count=5, max_amount=eur("200")
)

TOP_UP_100_A_WEEK = LimitRule(operation=Operation.TOP_UP, window=ROLLING_7D, max_amount=eur("100"))
PAYOUT_1_A_WEEK = LimitRule(operation=Operation.PAYOUT, window=WEEK_NICOSIA, max_count=1)


# -- validation ----------------------------------------------------------------------------------

_BAD_INPUT: list[tuple[str, Callable[[], object], type[Exception], str]] = [
    # windows
    ("no rolling nor period", lambda: Window(), InvalidInputError, "window"),
    ("rolling and period", lambda: Window(rolling=timedelta(hours=1), period=Period.DAY,
                                          zone=NICOSIA), InvalidInputError, "window"),
    ("zero rolling", lambda: Window(rolling=timedelta(0)), InvalidInputError, "rolling"),
    ("negative rolling", lambda: Window(rolling=timedelta(hours=-1)), InvalidInputError,
     "rolling"),
    ("fractional seconds", lambda: Window(rolling=timedelta(seconds=1, microseconds=5)),
     InvalidInputError, "rolling"),
    ("rolling as int", lambda: Window(rolling=3600), InvalidInputError, "rolling"),  # type: ignore[arg-type]
    ("unknown period", lambda: Window(period="year", zone=NICOSIA), InvalidInputError, "period"),
    ("period as int", lambda: Window(period=1, zone=NICOSIA), InvalidInputError, "period"),  # type: ignore[arg-type]
    ("period without zone", lambda: Window(period=Period.DAY), InvalidInputError, "zone"),
    ("unknown zone", lambda: Window(period=Period.DAY, zone="Nowhere/Atlantis"),
     InvalidInputError, "zone"),
    ("host zone", lambda: Window(period=Period.DAY, zone="localtime"), InvalidInputError, "zone"),
    ("empty zone", lambda: Window(period=Period.DAY, zone=""), InvalidInputError, "zone"),
    ("zone directory", lambda: Window(period=Period.DAY, zone="Europe"), InvalidInputError,
     "zone"),
    ("rolling with zone", lambda: Window(rolling=timedelta(hours=1), zone=NICOSIA),
     InvalidInputError, "zone"),
    ("naive at", lambda: DAY_NICOSIA.start(datetime(2026, 1, 1)), InvalidTimeError, "at"),
    ("at not a datetime", lambda: ROLLING_7D.start(date(2026, 1, 1)), InvalidTimeError, "at"),  # type: ignore[arg-type]
    ("at before any representable month", lambda: MONTH_NICOSIA.start(
        datetime.min.replace(tzinfo=UTC)), InvalidTimeError, "at"),
    ("at after any representable day", lambda: Window(period=Period.DAY, zone="Asia/Tokyo")
     .start(datetime.max.replace(tzinfo=UTC)), InvalidTimeError, "at"),
    # rules
    ("operation not limited", lambda: LimitRule(operation=Operation.TRANSFER_IN,
                                                window=DAY_NICOSIA, max_count=1),
     InvalidInputError, "operation"),
    ("unknown operation", lambda: LimitRule(operation="refund", window=DAY_NICOSIA,
                                            max_count=1), InvalidInputError, "operation"),
    ("operation as int", lambda: LimitRule(operation=1, window=DAY_NICOSIA, max_count=1),  # type: ignore[arg-type]
     InvalidInputError, "operation"),
    ("window not a Window", lambda: LimitRule(operation=Operation.SPEND, window="day",  # type: ignore[arg-type]
                                              max_count=1), InvalidInputError, "window"),
    ("no bound", lambda: LimitRule(operation=Operation.SPEND, window=DAY_NICOSIA),
     InvalidInputError, "rule"),
    ("zero count", lambda: LimitRule(operation=Operation.SPEND, window=DAY_NICOSIA, max_count=0),
     InvalidInputError, "max_count"),
    ("negative count", lambda: LimitRule(operation=Operation.SPEND, window=DAY_NICOSIA,
                                         max_count=-2), InvalidInputError, "max_count"),
    ("bool count", lambda: LimitRule(operation=Operation.SPEND, window=DAY_NICOSIA,
                                     max_count=True), InvalidInputError, "max_count"),
    ("float count", lambda: LimitRule(operation=Operation.SPEND, window=DAY_NICOSIA,
                                      max_count=2.0), InvalidInputError, "max_count"),  # type: ignore[arg-type]
    ("zero amount", lambda: LimitRule(operation=Operation.SPEND, window=DAY_NICOSIA,
                                      max_amount=eur("0")), InvalidAmountError, "max_amount"),
    ("negative amount", lambda: LimitRule(operation=Operation.SPEND, window=DAY_NICOSIA,
                                          max_amount=eur("-1")), InvalidAmountError,
     "max_amount"),
    ("amount not Money", lambda: LimitRule(operation=Operation.SPEND, window=DAY_NICOSIA,
                                           max_amount=Decimal("10")),  # type: ignore[arg-type]
     InvalidAmountError, "max_amount"),
    # limits
    ("two rules with one key", lambda: Limits(rules=[
        SPENDS_3_A_DAY,
        LimitRule(operation=Operation.SPEND, window=DAY_NICOSIA, max_amount=eur("5")),
    ]), InvalidInputError, "rules"),
    ("a rule that is not a rule", lambda: Limits(rules=[SPENDS_3_A_DAY, "x"]),  # type: ignore[list-item]
     InvalidInputError, "rules"),
    ("rules as text", lambda: Limits(rules="rules"), InvalidInputError, "rules"),  # type: ignore[arg-type]
    ("zero max balance", lambda: Limits(max_balance=eur("0")), InvalidAmountError,
     "max_balance"),
    ("max balance not Money", lambda: Limits(max_balance=500), InvalidAmountError,  # type: ignore[arg-type]
     "max_balance"),
    ("two currencies", lambda: Limits(rules=[SPEND_100_A_WEEK],
                                      max_balance=Money.of("500", "USD")),
     CurrencyMismatchError, "limits"),
    # activity and checks
    ("negative count done", lambda: Activity(-1, eur("0")), InvalidInputError, "count"),
    ("bool count done", lambda: Activity(True, eur("0")), InvalidInputError, "count"),
    ("negative total", lambda: Activity(0, eur("-0.01")), InvalidAmountError, "total"),
    ("total not Money", lambda: Activity(0, 5), InvalidAmountError, "total"),  # type: ignore[arg-type]
    ("check without limits", lambda: check(None, Operation.SPEND, eur("1"),  # type: ignore[arg-type]
                                           lambda r: Activity(0, eur("0"))),
     InvalidInputError, "limits"),
    ("check of no operation", lambda: check(Limits(), "refund", eur("1"),  # type: ignore[arg-type]
                                            lambda r: Activity(0, eur("0"))),
     InvalidInputError, "operation"),
    ("zero amount checked", lambda: check(Limits(), Operation.SPEND, eur("0"),
                                          lambda r: Activity(0, eur("0"))),
     InvalidAmountError, "amount"),
    ("amount in another currency", lambda: check(Limits(rules=[SPEND_100_A_WEEK]),
                                                 Operation.SPEND, Money.of("1", "USD"),
                                                 lambda r: Activity(0, Money.of("0", "USD"))),
     CurrencyMismatchError, "amount"),
    ("activity not an Activity", lambda: check(Limits(rules=[SPENDS_3_A_DAY]), Operation.SPEND,
                                               eur("1"), lambda r: (0, eur("0"))),  # type: ignore[arg-type, return-value]
     InvalidInputError, "activity"),
    ("activity in another currency", lambda: check(Limits(rules=[SPENDS_3_A_DAY]),
                                                   Operation.SPEND, eur("1"),
                                                   lambda r: Activity(0, Money.of("0", "USD"))),
     CurrencyMismatchError, "activity"),
    ("allowance of no rule", lambda: allowance("rule", Activity(0, eur("0"))),  # type: ignore[arg-type]
     InvalidInputError, "rule"),
    ("allowance in another currency", lambda: allowance(SPEND_100_A_WEEK,
                                                        Activity(0, Money.of("0", "USD"))),
     CurrencyMismatchError, "activity"),
    ("balance not Money", lambda: check_balance(Limits(max_balance=eur("5")), balance_before=1,  # type: ignore[arg-type]
                                                balance_after=eur("6")),
     InvalidAmountError, "balance_before"),
    ("balance in another currency", lambda: check_balance(
        Limits(max_balance=eur("5")), balance_before=Money.of("1", "USD"),
        balance_after=Money.of("6", "USD")), CurrencyMismatchError, "balance_after"),
    ("override not Limits", lambda: Limits().merged({}), InvalidInputError, "override"),  # type: ignore[arg-type]
    ("base not Limits", lambda: Limits().looser_than({}), InvalidInputError, "base"),  # type: ignore[arg-type]
]


@pytest.mark.parametrize(
    ("make", "error", "field"), [row[1:] for row in _BAD_INPUT], ids=[row[0] for row in _BAD_INPUT]
)
def test_bad_input_raises_a_typed_error_naming_the_field(
    make: Callable[[], object], error: type[InvalidInputError], field: str
) -> None:
    with pytest.raises(error) as info:
        make()
    assert info.value.field == field


def test_balance_breach_and_rule_breach_shapes_are_checked() -> None:
    with pytest.raises(InvalidInputError):
        LimitBreach(rule=None, amount_left=eur("1"))  # no max_balance
    with pytest.raises(InvalidInputError):
        LimitBreach(rule=None, count_left=1, amount_left=eur("1"), max_balance=eur("5"))
    with pytest.raises(InvalidInputError):
        LimitBreach(rule=SPENDS_3_A_DAY, count_left=0, max_balance=eur("5"))
    with pytest.raises(InvalidInputError):
        LimitBreach(rule=SPENDS_3_A_DAY, count_left=-1)


def test_values_are_frozen_and_converted() -> None:
    rule = LimitRule(operation="spend", window=Window(period="day", zone=NICOSIA), max_count=3)
    assert rule == SPENDS_3_A_DAY
    assert rule.operation is Operation.SPEND
    assert rule.window.period is Period.DAY
    assert Limits(rules=[SPENDS_3_A_DAY]).rules == (SPENDS_3_A_DAY,)
    with pytest.raises(AttributeError):
        rule.max_count = 4  # type: ignore[misc]
    limited = {Operation.SPEND, Operation.TOP_UP, Operation.TRANSFER_OUT, Operation.PAYOUT}
    assert limited == LIMITED_OPERATIONS


# -- keys and words ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("window", "words", "key"),
    [
        (DAY_NICOSIA, "per day in Europe/Nicosia", "day:Europe/Nicosia"),
        (WEEK_NICOSIA, "per week in Europe/Nicosia", "week:Europe/Nicosia"),
        (MONTH_NICOSIA, "per month in Europe/Nicosia", "month:Europe/Nicosia"),
        (ROLLING_24H, "per rolling 24 hours", "rolling:86400"),
        (ROLLING_7D, "per rolling 7 days", "rolling:604800"),
        (Window(rolling=timedelta(days=2)), "per rolling 2 days", "rolling:172800"),
        (Window(rolling=timedelta(hours=1)), "per rolling hour", "rolling:3600"),
        (Window(rolling=timedelta(minutes=90)), "per rolling 90 minutes", "rolling:5400"),
        (Window(rolling=timedelta(hours=25)), "per rolling 25 hours", "rolling:90000"),
        (Window(rolling=timedelta(seconds=1)), "per rolling second", "rolling:1"),
        (Window(rolling=timedelta(seconds=61)), "per rolling 61 seconds", "rolling:61"),
    ],
)
def test_window_words_and_key(window: Window, words: str, key: str) -> None:
    assert window.describe() == words
    assert window.key == key


def test_rule_key_names_operation_and_window_only() -> None:
    assert SPENDS_3_A_DAY.key == "spend:day:Europe/Nicosia"
    assert TOP_UP_100_A_WEEK.key == "top_up:rolling:604800"
    other_bounds = LimitRule(operation=Operation.SPEND, window=DAY_NICOSIA, max_amount=eur("1"))
    assert other_bounds.key == SPENDS_3_A_DAY.key
    assert Window(period=Period.DAY, zone=BERLIN).key != DAY_NICOSIA.key
    assert Window(period=Period.WEEK, zone=NICOSIA).key != DAY_NICOSIA.key


@pytest.mark.parametrize(
    ("breach", "words"),
    [
        (LimitBreach(rule=SPENDS_3_A_DAY, count_left=1),
         "at most 3 spends per day in Europe/Nicosia: 1 left"),
        (LimitBreach(rule=TOP_UP_100_A_WEEK, amount_left=eur("20")),
         "at most 100.00 EUR of top-ups per rolling 7 days: 20.00 EUR left"),
        (LimitBreach(rule=None, amount_left=eur("40"), max_balance=eur("500")),
         "balance at most 500.00 EUR: 40.00 EUR left"),
        (LimitBreach(rule=SPENDS_5_AND_200_A_MONTH, count_left=1, amount_left=eur("20")),
         "at most 5 spends and 200.00 EUR of spends per month in Europe/Nicosia:"
         " 1 spend and 20.00 EUR left"),
        (LimitBreach(rule=SPENDS_5_AND_200_A_MONTH, count_left=0, amount_left=eur("20")),
         "at most 5 spends and 200.00 EUR of spends per month in Europe/Nicosia:"
         " 0 spends and 20.00 EUR left"),
        (LimitBreach(rule=PAYOUT_1_A_WEEK, count_left=0),
         "at most 1 payout per week in Europe/Nicosia: 0 left"),
        (LimitBreach(rule=LimitRule(operation=Operation.TRANSFER_OUT, window=ROLLING_24H,
                                    max_count=2, max_amount=Money.of("300", "JPY")),
                     count_left=2, amount_left=Money.of("0", "JPY")),
         "at most 2 transfers out and 300 JPY of transfers out per rolling 24 hours:"
         " 2 transfers out and 0 JPY left"),
    ],
)
def test_breach_words(breach: LimitBreach, words: str) -> None:
    assert breach.describe() == words


# -- windows -------------------------------------------------------------------------------------


def test_rolling_start_is_elapsed_time_before_at() -> None:
    at = utc(2026, 3, 29, 10, 0, 0, 7)  # the day Berlin moves its clocks forward
    assert ROLLING_24H.start(at) == utc(2026, 3, 28, 10, 0, 0, 7)
    assert ROLLING_7D.start(at) == utc(2026, 3, 22, 10, 0, 0, 7)
    # The zone of `at` does not matter: the same instant gives the same start, in UTC.
    local = at.astimezone(ZoneInfo(BERLIN))
    assert ROLLING_24H.start(local) == utc(2026, 3, 28, 10, 0, 0, 7)
    assert ROLLING_24H.start(local).tzinfo is UTC
    # At the earliest instant the library takes, a window reaches back before it (it never
    # overflows); before that instant, nothing is taken.
    assert ROLLING_7D.start(EARLIEST) == EARLIEST - timedelta(days=7)
    with pytest.raises(InvalidTimeError) as info:
        ROLLING_7D.start(datetime.min.replace(tzinfo=UTC) + timedelta(days=1))
    assert info.value.field == "at"


_CALENDAR: list[tuple[str, Period, datetime, datetime]] = [
    # Berlin: forward 02:00 -> 03:00 on Sunday 2026-03-29, back 03:00 -> 02:00 on 2026-10-25.
    (BERLIN, Period.DAY, utc(2026, 3, 29, 10), utc(2026, 3, 28, 23)),
    (BERLIN, Period.DAY, utc(2026, 3, 29, 22), utc(2026, 3, 29, 22)),
    (BERLIN, Period.DAY, utc(2026, 3, 29, 22) - US, utc(2026, 3, 28, 23)),
    (BERLIN, Period.WEEK, utc(2026, 3, 29, 22), utc(2026, 3, 29, 22)),
    (BERLIN, Period.WEEK, utc(2026, 3, 29, 22) - US, utc(2026, 3, 22, 23)),
    (BERLIN, Period.MONTH, utc(2026, 3, 31, 22), utc(2026, 3, 31, 22)),
    (BERLIN, Period.MONTH, utc(2026, 3, 31, 22) - US, utc(2026, 2, 28, 23)),
    (BERLIN, Period.DAY, utc(2026, 10, 25, 1, 30), utc(2026, 10, 24, 22)),  # the repeated hour
    (BERLIN, Period.WEEK, utc(2026, 10, 25, 1, 30), utc(2026, 10, 18, 22)),
    (BERLIN, Period.WEEK, utc(2026, 10, 25, 23), utc(2026, 10, 25, 23)),
    (BERLIN, Period.WEEK, utc(2026, 10, 25, 23) - US, utc(2026, 10, 18, 22)),
    (BERLIN, Period.MONTH, utc(2026, 10, 31, 23), utc(2026, 10, 31, 23)),
    (BERLIN, Period.MONTH, utc(2026, 10, 31, 23) - US, utc(2026, 9, 30, 22)),
    # New York: forward 02:00 -> 03:00 on 2026-03-08, back 02:00 -> 01:00 on Sunday 2026-11-01.
    (NEW_YORK, Period.DAY, utc(2026, 3, 8, 12), utc(2026, 3, 8, 5)),
    (NEW_YORK, Period.DAY, utc(2026, 3, 9, 4), utc(2026, 3, 9, 4)),
    (NEW_YORK, Period.DAY, utc(2026, 3, 9, 4) - US, utc(2026, 3, 8, 5)),
    (NEW_YORK, Period.DAY, utc(2026, 11, 1, 6, 30), utc(2026, 11, 1, 4)),  # the repeated hour
    (NEW_YORK, Period.WEEK, utc(2026, 11, 1, 6, 30), utc(2026, 10, 26, 4)),
    (NEW_YORK, Period.MONTH, utc(2026, 11, 1, 6, 30), utc(2026, 11, 1, 4)),
    (NEW_YORK, Period.MONTH, utc(2026, 11, 1, 4), utc(2026, 11, 1, 4)),
    (NEW_YORK, Period.MONTH, utc(2026, 11, 1, 4) - US, utc(2026, 10, 1, 4)),
    (NEW_YORK, Period.DAY, utc(2026, 11, 2, 5), utc(2026, 11, 2, 5)),
    (NEW_YORK, Period.WEEK, utc(2026, 11, 2, 5), utc(2026, 11, 2, 5)),
    (NEW_YORK, Period.DAY, utc(2026, 11, 2, 5) - US, utc(2026, 11, 1, 4)),
    (NEW_YORK, Period.WEEK, utc(2026, 11, 2, 5) - US, utc(2026, 10, 26, 4)),
    # Santiago: on Sunday 2026-09-06 clocks jump from 00:00 to 01:00 (midnight does not exist,
    # the day starts at 01:00 -03); on 2026-04-04 they go back from 24:00 to 23:00.
    (SANTIAGO, Period.DAY, utc(2026, 9, 6, 4), utc(2026, 9, 6, 4)),
    (SANTIAGO, Period.DAY, utc(2026, 9, 6, 4) - US, utc(2026, 9, 5, 4)),
    (SANTIAGO, Period.DAY, utc(2026, 9, 6, 15), utc(2026, 9, 6, 4)),
    (SANTIAGO, Period.WEEK, utc(2026, 9, 6, 15), utc(2026, 8, 31, 4)),
    (SANTIAGO, Period.MONTH, utc(2026, 9, 6, 15), utc(2026, 9, 1, 4)),
    (SANTIAGO, Period.WEEK, utc(2026, 9, 7, 3), utc(2026, 9, 7, 3)),
    (SANTIAGO, Period.WEEK, utc(2026, 9, 7, 3) - US, utc(2026, 8, 31, 4)),
    (SANTIAGO, Period.DAY, utc(2026, 4, 5, 3, 30), utc(2026, 4, 4, 3)),  # the repeated hour
    (SANTIAGO, Period.DAY, utc(2026, 4, 5, 4), utc(2026, 4, 5, 4)),
    (SANTIAGO, Period.DAY, utc(2026, 4, 5, 4) - US, utc(2026, 4, 4, 3)),
    (SANTIAGO, Period.WEEK, utc(2026, 4, 5, 4), utc(2026, 3, 30, 3)),
    (SANTIAGO, Period.MONTH, utc(2026, 4, 5, 4), utc(2026, 4, 1, 3)),
    # Lord Howe: half-hour changes; back 02:00 -> 01:30 on 2026-04-05, forward 02:00 -> 02:30 on
    # Sunday 2026-10-04 (+10:30 in winter, +11 in summer).
    (LORD_HOWE, Period.DAY, utc(2026, 4, 4, 16), utc(2026, 4, 4, 13)),
    (LORD_HOWE, Period.DAY, utc(2026, 4, 5, 13, 30), utc(2026, 4, 5, 13, 30)),
    (LORD_HOWE, Period.DAY, utc(2026, 4, 5, 13, 30) - US, utc(2026, 4, 4, 13)),
    (LORD_HOWE, Period.DAY, utc(2026, 10, 4, 13), utc(2026, 10, 4, 13)),
    (LORD_HOWE, Period.WEEK, utc(2026, 10, 4, 13), utc(2026, 10, 4, 13)),
    (LORD_HOWE, Period.DAY, utc(2026, 10, 4, 13) - US, utc(2026, 10, 3, 13, 30)),
    (LORD_HOWE, Period.WEEK, utc(2026, 10, 4, 13) - US, utc(2026, 9, 27, 13, 30)),
    (LORD_HOWE, Period.MONTH, utc(2026, 9, 30, 13, 30), utc(2026, 9, 30, 13, 30)),
    (LORD_HOWE, Period.MONTH, utc(2026, 9, 30, 13, 30) - US, utc(2026, 8, 31, 13, 30)),
    # Toronto 1919: a gap from 23:30 to 00:30 straddles the midnight that starts Monday 03-31.
    ("America/Toronto", Period.DAY, utc(1919, 3, 31, 12), utc(1919, 3, 31, 4, 30)),
    ("America/Toronto", Period.WEEK, utc(1919, 3, 31, 4, 30), utc(1919, 3, 31, 4, 30)),
    ("America/Toronto", Period.DAY, utc(1919, 3, 31, 4, 30) - US, utc(1919, 3, 30, 5)),
    ("America/Toronto", Period.WEEK, utc(1919, 3, 31, 4, 30) - US, utc(1919, 3, 24, 5)),
    # Samoa skipped Friday 2011-12-30: Saturday starts when Thursday ends.
    ("Pacific/Apia", Period.DAY, utc(2011, 12, 30, 10), utc(2011, 12, 30, 10)),
    ("Pacific/Apia", Period.DAY, utc(2011, 12, 30, 10) - US, utc(2011, 12, 29, 10)),
    ("Pacific/Apia", Period.WEEK, utc(2011, 12, 30, 10), utc(2011, 12, 26, 10)),
]


@pytest.mark.parametrize(("zone", "period", "at", "start"), _CALENDAR)
def test_calendar_window_starts(zone: str, period: Period, at: datetime, start: datetime) -> None:
    window = Window(period=period, zone=zone)
    assert window.start(at) == start
    assert window.start(at).tzinfo is UTC
    # The same instant written in another zone has the same window.
    assert window.start(at.astimezone(ZoneInfo("Asia/Kathmandu"))) == start


PROPERTY_ZONES = (
    "UTC", NICOSIA, BERLIN, NEW_YORK, SANTIAGO, LORD_HOWE, "Asia/Kathmandu",
    "Pacific/Kiritimati", "Pacific/Apia", "Pacific/Chatham",
)


def _period_first_day(day: date, period: Period) -> date:
    if period is Period.WEEK:
        return day - timedelta(days=day.weekday())
    if period is Period.MONTH:
        return day.replace(day=1)
    return day


@given(
    zone=st.sampled_from(PROPERTY_ZONES),
    period=st.sampled_from(list(Period)),
    at=st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2037, 12, 31),
                    timezones=st.just(UTC)),
)
def test_calendar_start_is_the_first_instant_of_the_local_period(
    zone: str, period: Period, at: datetime
) -> None:
    zone_info = ZoneInfo(zone)
    start = Window(period=period, zone=zone).start(at)
    first_day = _period_first_day(at.astimezone(zone_info).date(), period)
    assert start <= at
    assert start.astimezone(zone_info).date() == first_day
    assert (start - US).astimezone(zone_info).date() < first_day
    # Every instant from the start up to `at` is in the same window.
    assert Window(period=period, zone=zone).start(start) == start


_TZ_PROBE = """
import json
import time as _time
from datetime import UTC, datetime, timedelta

from prepaid_wallet.rules.limits import Period, Window


def probe():
    zones = ["Europe/Berlin", "America/New_York", "America/Santiago", "Australia/Lord_Howe"]
    instants = [datetime(2026, 1, 1, tzinfo=UTC) + timedelta(hours=37 * i) for i in range(240)]
    starts = [
        Window(period=period, zone=zone).start(at).isoformat()
        for zone in zones for period in Period for at in instants
    ]
    rolling = [Window(rolling=timedelta(hours=24)).start(at).isoformat() for at in instants]
    return {"starts": starts, "rolling": rolling, "zone": _time.strftime("%Z")}


if __name__ == "__main__":
    print(json.dumps(probe()))
"""


def test_window_starts_do_not_depend_on_the_process_time_zone() -> None:
    here = probe_here(_TZ_PROBE)
    there = {tz: probe_in_subprocess(_TZ_PROBE, tz) for tz in PROCESS_ZONES}
    assert there["Pacific/Kiritimati"]["zone"] != there["America/Santiago"]["zone"]
    for result in there.values():
        assert result["starts"] == here["starts"]
        assert result["rolling"] == here["rolling"]


# -- check ---------------------------------------------------------------------------------------

Done = dict[str, Activity]
NOTHING = Activity(0, eur("0"))

# (name, rules, operation, amount, what was done per rule key,
#  expected breaches as (rule, count_left, amount_left))
_CHECKS: list[tuple[str, tuple[LimitRule, ...], Operation, Money, Done,
                    list[tuple[LimitRule, int | None, Money | None]]]] = [
    ("count: the third of three is allowed", (SPENDS_3_A_DAY,), Operation.SPEND, eur("1"),
     {SPENDS_3_A_DAY.key: Activity(2, eur("50"))}, []),
    ("count: a fourth of three is breached", (SPENDS_3_A_DAY,), Operation.SPEND, eur("1"),
     {SPENDS_3_A_DAY.key: Activity(3, eur("50"))}, [(SPENDS_3_A_DAY, 0, None)]),
    ("count: already overrun", (SPENDS_3_A_DAY,), Operation.SPEND, eur("1"),
     {SPENDS_3_A_DAY.key: Activity(7, eur("50"))}, [(SPENDS_3_A_DAY, 0, None)]),
    ("amount: exactly at the bound is allowed", (SPEND_100_A_WEEK,), Operation.SPEND,
     eur("20"), {SPEND_100_A_WEEK.key: Activity(9, eur("80"))}, []),
    ("amount: one cent over is breached", (SPEND_100_A_WEEK,), Operation.SPEND, eur("20.01"),
     {SPEND_100_A_WEEK.key: Activity(9, eur("80"))}, [(SPEND_100_A_WEEK, None, eur("20"))]),
    ("amount: alone over the bound", (SPEND_100_A_WEEK,), Operation.SPEND, eur("100.01"),
     {SPEND_100_A_WEEK.key: NOTHING}, [(SPEND_100_A_WEEK, None, eur("100"))]),
    ("amount: already overrun", (SPEND_100_A_WEEK,), Operation.SPEND, eur("1"),
     {SPEND_100_A_WEEK.key: Activity(1, eur("150"))}, [(SPEND_100_A_WEEK, None, eur("0"))]),
    ("both: exactly at both bounds", (SPENDS_5_AND_200_A_MONTH,), Operation.SPEND, eur("100"),
     {SPENDS_5_AND_200_A_MONTH.key: Activity(4, eur("100"))}, []),
    ("both: count breached", (SPENDS_5_AND_200_A_MONTH,), Operation.SPEND, eur("1"),
     {SPENDS_5_AND_200_A_MONTH.key: Activity(5, eur("0"))},
     [(SPENDS_5_AND_200_A_MONTH, 0, eur("200"))]),
    ("both: amount breached", (SPENDS_5_AND_200_A_MONTH,), Operation.SPEND, eur("60"),
     {SPENDS_5_AND_200_A_MONTH.key: Activity(0, eur("150"))},
     [(SPENDS_5_AND_200_A_MONTH, 5, eur("50"))]),
    ("both: both breached", (SPENDS_5_AND_200_A_MONTH,), Operation.SPEND, eur("60"),
     {SPENDS_5_AND_200_A_MONTH.key: Activity(5, eur("150"))},
     [(SPENDS_5_AND_200_A_MONTH, 0, eur("50"))]),
    ("several: only the day count breached",
     (SPENDS_3_A_DAY, SPEND_100_A_WEEK, SPENDS_5_AND_200_A_MONTH), Operation.SPEND, eur("10"),
     {SPENDS_3_A_DAY.key: Activity(3, eur("30")), SPEND_100_A_WEEK.key: Activity(3, eur("30")),
      SPENDS_5_AND_200_A_MONTH.key: Activity(3, eur("30"))},
     [(SPENDS_3_A_DAY, 0, None)]),
    ("several: breaches in rule order",
     (SPEND_100_A_WEEK, SPENDS_3_A_DAY, SPENDS_5_AND_200_A_MONTH), Operation.SPEND, eur("90"),
     {SPENDS_3_A_DAY.key: Activity(3, eur("30")), SPEND_100_A_WEEK.key: Activity(3, eur("30")),
      SPENDS_5_AND_200_A_MONTH.key: Activity(4, eur("30"))},
     [(SPEND_100_A_WEEK, None, eur("70")), (SPENDS_3_A_DAY, 0, None)]),
    ("other operations' rules are ignored",
     (TOP_UP_100_A_WEEK, PAYOUT_1_A_WEEK, SPENDS_3_A_DAY), Operation.TOP_UP, eur("100"),
     {TOP_UP_100_A_WEEK.key: NOTHING}, []),
    ("a top-up over its own bound", (SPENDS_3_A_DAY, TOP_UP_100_A_WEEK), Operation.TOP_UP,
     eur("60"), {TOP_UP_100_A_WEEK.key: Activity(1, eur("50"))},
     [(TOP_UP_100_A_WEEK, None, eur("50"))]),
    ("a payout over its count", (PAYOUT_1_A_WEEK,), Operation.PAYOUT, eur("5"),
     {PAYOUT_1_A_WEEK.key: Activity(1, eur("5"))}, [(PAYOUT_1_A_WEEK, 0, None)]),
    ("an operation never limited", (SPENDS_3_A_DAY, TOP_UP_100_A_WEEK), Operation.TRANSFER_IN,
     eur("1000"), {}, []),
    ("no rules", (), Operation.SPEND, eur("1000"), {}, []),
]


@pytest.mark.parametrize(
    ("rules", "operation", "amount", "done", "expected"),
    [row[1:] for row in _CHECKS],
    ids=[row[0] for row in _CHECKS],
)
def test_check(
    rules: tuple[LimitRule, ...],
    operation: Operation,
    amount: Money,
    done: Done,
    expected: list[tuple[LimitRule, int | None, Money | None]],
) -> None:
    asked: list[str] = []

    def activity(rule: LimitRule) -> Activity:
        asked.append(rule.key)
        return done[rule.key]  # a KeyError if a rule of another operation were asked for

    breaches = check(Limits(rules=rules), operation, amount, activity)
    assert [(b.rule, b.count_left, b.amount_left) for b in breaches] == expected
    # activity() was asked once for each rule of this operation, in rule order.
    assert asked == [r.key for r in rules if r.operation == operation]
    # What a breach says is left is the rule's allowance before the operation.
    for breach in breaches:
        assert breach.rule is not None
        assert (breach.count_left, breach.amount_left) == allowance(
            breach.rule, done[breach.rule.key]
        )


@pytest.mark.parametrize(
    ("rule", "done", "left"),
    [
        (SPENDS_3_A_DAY, NOTHING, (3, None)),
        (SPENDS_3_A_DAY, Activity(2, eur("999")), (1, None)),
        (SPENDS_3_A_DAY, Activity(3, eur("0")), (0, None)),
        (SPENDS_3_A_DAY, Activity(10, eur("0")), (0, None)),
        (SPEND_100_A_WEEK, Activity(50, eur("99.99")), (None, eur("0.01"))),
        (SPEND_100_A_WEEK, Activity(1, eur("100")), (None, eur("0"))),
        (SPEND_100_A_WEEK, Activity(1, eur("250")), (None, eur("0"))),
        (SPENDS_5_AND_200_A_MONTH, Activity(2, eur("120.50")), (3, eur("79.50"))),
        # A count-only rule does not care which currency the totals are in.
        (SPENDS_3_A_DAY, Activity(1, Money.of("5", "USD")), (2, None)),
    ],
)
def test_allowance(
    rule: LimitRule, done: Activity, left: tuple[int | None, Money | None]
) -> None:
    assert allowance(rule, done) == left


@given(
    max_count=st.none() | st.integers(1, 6),
    max_cents=st.none() | st.integers(1, 1000),
    count=st.integers(0, 8),
    total_cents=st.integers(0, 1200),
    cents=st.integers(1, 1200),
)
def test_check_breaches_exactly_when_the_allowance_is_too_small(
    max_count: int | None, max_cents: int | None, count: int, total_cents: int, cents: int
) -> None:
    if max_count is None and max_cents is None:
        max_count = 1
    rule = LimitRule(
        operation=Operation.SPEND,
        window=ROLLING_24H,
        max_count=max_count,
        max_amount=None if max_cents is None else Money(max_cents, "EUR"),
    )
    done = Activity(count, Money(total_cents, "EUR"))
    amount = Money(cents, "EUR")
    count_left, amount_left = allowance(rule, done)
    too_many = count_left is not None and count_left < 1
    too_much = amount_left is not None and amount > amount_left
    breaches = check(Limits(rules=[rule]), Operation.SPEND, amount, lambda r: done)
    assert breaches == (
        (LimitBreach(rule=rule, count_left=count_left, amount_left=amount_left),)
        if too_many or too_much
        else ()
    )
    # Nothing left is ever negative.
    assert count_left is None or count_left >= 0
    assert amount_left is None or not amount_left.is_negative()


# -- maximum balance -----------------------------------------------------------------------------

LIMIT_500 = Limits(max_balance=eur("500"))


@pytest.mark.parametrize(
    ("limits", "before", "after", "left"),
    [
        (LIMIT_500, eur("460"), eur("560"), eur("40")),
        (LIMIT_500, eur("400"), eur("500"), None),  # exactly at the maximum is allowed
        (LIMIT_500, eur("400"), eur("500.01"), eur("100")),
        (LIMIT_500, eur("-50"), eur("600"), eur("550")),
        (LIMIT_500, eur("600"), eur("550"), None),  # above a lowered maximum, spending
        (LIMIT_500, eur("600"), eur("600"), None),
        (LIMIT_500, eur("600"), eur("610"), eur("0")),
        (Limits(), eur("0"), eur("1000000"), None),
        (Limits(rules=[SPENDS_3_A_DAY]), eur("0"), eur("1000000"), None),
    ],
)
def test_check_balance(
    limits: Limits, before: Money, after: Money, left: Money | None
) -> None:
    breach = check_balance(limits, balance_before=before, balance_after=after)
    if left is None:
        assert breach is None
    else:
        assert breach == LimitBreach(rule=None, amount_left=left, max_balance=eur("500"))


def test_check_balance_with_extreme_balances_does_not_overflow() -> None:
    lowest = Money(-(2**63 - 1), "EUR")
    breach = check_balance(LIMIT_500, balance_before=lowest, balance_after=eur("501"))
    assert breach is not None
    assert breach.amount_left == Money(2**63 - 1, "EUR")


# -- overrides -----------------------------------------------------------------------------------

SPENDS_2_A_DAY = LimitRule(operation=Operation.SPEND, window=DAY_NICOSIA, max_count=2)
SPENDS_5_A_DAY = LimitRule(operation=Operation.SPEND, window=DAY_NICOSIA, max_count=5)
SPEND_50_A_DAY = LimitRule(operation=Operation.SPEND, window=DAY_NICOSIA, max_amount=eur("50"))
SPENDS_3_AND_50_A_DAY = LimitRule(
    operation=Operation.SPEND, window=DAY_NICOSIA, max_count=3, max_amount=eur("50")
)
SPENDS_3_AND_80_A_DAY = LimitRule(
    operation=Operation.SPEND, window=DAY_NICOSIA, max_count=3, max_amount=eur("80")
)
SPENDS_10_A_WEEK = LimitRule(operation=Operation.SPEND, window=WEEK_NICOSIA, max_count=10)
TOP_UP_150_A_WEEK = LimitRule(operation=Operation.TOP_UP, window=ROLLING_7D, max_amount=eur("150"))
TENANT = Limits(rules=[SPENDS_3_A_DAY, TOP_UP_100_A_WEEK], max_balance=eur("500"))


@pytest.mark.parametrize(
    ("override", "merged"),
    [
        (Limits(), TENANT),
        (Limits(rules=[SPENDS_2_A_DAY]),
         Limits(rules=[SPENDS_2_A_DAY, TOP_UP_100_A_WEEK], max_balance=eur("500"))),
        (Limits(rules=[PAYOUT_1_A_WEEK, SPENDS_2_A_DAY], max_balance=eur("300")),
         Limits(rules=[SPENDS_2_A_DAY, TOP_UP_100_A_WEEK, PAYOUT_1_A_WEEK],
                max_balance=eur("300"))),
        # Another window of the same operation adds a rule; it does not replace the day rule.
        (Limits(rules=[SPENDS_10_A_WEEK]),
         Limits(rules=[SPENDS_3_A_DAY, TOP_UP_100_A_WEEK, SPENDS_10_A_WEEK],
                max_balance=eur("500"))),
        # An override looser than the tenant (made when the tenant's limit was looser, before
        # the tenant lowered it) never loosens it: each bound is the stricter of the two.
        (Limits(rules=[TOP_UP_150_A_WEEK], max_balance=eur("900")),
         Limits(rules=[SPENDS_3_A_DAY, TOP_UP_100_A_WEEK], max_balance=eur("500"))),
        (Limits(rules=[SPENDS_3_AND_50_A_DAY]),
         Limits(rules=[SPENDS_3_AND_50_A_DAY, TOP_UP_100_A_WEEK], max_balance=eur("500"))),
    ],
)
def test_merged(override: Limits, merged: Limits) -> None:
    assert TENANT.merged(override) == merged


def test_merged_without_tenant_limits_is_the_override() -> None:
    override = Limits(rules=[SPENDS_2_A_DAY], max_balance=eur("10"))
    assert Limits().merged(override) == override


def test_merged_refuses_two_currencies() -> None:
    with pytest.raises(CurrencyMismatchError) as info:
        TENANT.merged(Limits(max_balance=Money.of("300", "USD")))
    assert (info.value.left, info.value.right) == ("EUR", "USD")


@pytest.mark.parametrize(
    ("base", "override", "phrases"),
    [
        (TENANT, Limits(), ()),
        (TENANT, TENANT, ()),
        (TENANT, Limits(rules=[SPENDS_2_A_DAY], max_balance=eur("499.99")), ()),
        (TENANT, Limits(rules=[SPENDS_10_A_WEEK, PAYOUT_1_A_WEEK]), ()),  # new keys only add
        (Limits(rules=[SPENDS_3_A_DAY]), Limits(rules=[SPENDS_3_AND_50_A_DAY]), ()),  # adds a bound
        (Limits(), Limits(rules=[SPENDS_5_A_DAY], max_balance=eur("900")), ()),
        (TENANT, Limits(rules=[SPENDS_5_A_DAY]),
         ("spends per day in Europe/Nicosia: at most 5 instead of 3",)),
        (TENANT, Limits(rules=[TOP_UP_150_A_WEEK]),
         ("top-ups per rolling 7 days: at most 150.00 EUR instead of 100.00 EUR",)),
        (TENANT, Limits(rules=[SPEND_50_A_DAY]),
         ("spends per day in Europe/Nicosia: no count bound instead of 3",)),
        (Limits(rules=[SPENDS_3_AND_50_A_DAY]), Limits(rules=[SPENDS_3_A_DAY]),
         ("spends per day in Europe/Nicosia: no amount bound instead of 50.00 EUR",)),
        (Limits(rules=[SPENDS_3_AND_50_A_DAY]), Limits(rules=[SPENDS_3_AND_80_A_DAY]),
         ("spends per day in Europe/Nicosia: at most 80.00 EUR instead of 50.00 EUR",)),
        (TENANT, Limits(max_balance=eur("500.01")),
         ("balance: at most 500.01 EUR instead of 500.00 EUR",)),
        (Limits(rules=[SPENDS_3_A_DAY, TOP_UP_100_A_WEEK], max_balance=eur("500")),
         Limits(rules=[TOP_UP_150_A_WEEK, SPEND_50_A_DAY], max_balance=eur("600")),
         ("spends per day in Europe/Nicosia: no count bound instead of 3",
          "top-ups per rolling 7 days: at most 150.00 EUR instead of 100.00 EUR",
          "balance: at most 600.00 EUR instead of 500.00 EUR")),
    ],
)
def test_looser_than_and_check_override(
    base: Limits, override: Limits, phrases: tuple[str, ...]
) -> None:
    assert override.looser_than(base) == phrases
    if not phrases:
        check_override(base, override)  # does not raise
        return
    with pytest.raises(InvalidInputError) as info:
        check_override(base, override)
    assert info.value.field == "limits"
    assert info.value.rule == "; ".join(phrases) + "; an override may only be stricter"
    assert info.value.value == override


@pytest.mark.parametrize(
    ("base", "override"),
    [
        (TENANT, Limits(max_balance=Money.of("100", "USD"))),
        (TENANT, Limits(rules=[LimitRule(operation=Operation.SPEND, window=DAY_NICOSIA,
                                         max_amount=Money.of("1", "USD"))])),
        (Limits(rules=[SPEND_50_A_DAY]), Limits(rules=[LimitRule(
            operation=Operation.PAYOUT, window=DAY_NICOSIA, max_amount=Money.of("1", "GBP"))])),
    ],
)
def test_override_in_another_currency_is_refused(base: Limits, override: Limits) -> None:
    with pytest.raises(CurrencyMismatchError) as info:
        override.looser_than(base)
    assert info.value.field == "limits"
    assert info.value.left == "EUR"
    with pytest.raises(CurrencyMismatchError):
        check_override(base, override)


def test_check_override_refuses_a_non_limits_override() -> None:
    with pytest.raises(InvalidInputError) as info:
        check_override(TENANT, None)  # type: ignore[arg-type]
    assert info.value.field == "override"


@given(
    base_count=st.integers(1, 5),
    override_count=st.integers(1, 5),
    base_balance=st.integers(1, 5),
    override_balance=st.none() | st.integers(1, 5),
)
def test_a_checked_override_never_loosens_the_merged_limits(
    base_count: int, override_count: int, base_balance: int, override_balance: int | None
) -> None:
    base = Limits(
        rules=[LimitRule(operation=Operation.SPEND, window=DAY_NICOSIA, max_count=base_count)],
        max_balance=Money(base_balance, "EUR"),
    )
    override = Limits(
        rules=[LimitRule(operation=Operation.SPEND, window=DAY_NICOSIA, max_count=override_count)],
        max_balance=None if override_balance is None else Money(override_balance, "EUR"),
    )
    looser = bool(override.looser_than(base))
    assert looser == (
        override_count > base_count
        or (override_balance is not None and override_balance > base_balance)
    )
    if not looser:
        merged = base.merged(override)
        assert merged.rules[0].max_count is not None
        assert merged.rules[0].max_count <= base_count
        assert merged.max_balance is not None
        assert base.max_balance is not None
        assert merged.max_balance <= base.max_balance


# -- data ----------------------------------------------------------------------------------------


def windows() -> st.SearchStrategy[Window]:
    return st.one_of(
        st.integers(1, 10**9).map(lambda s: Window(rolling=timedelta(seconds=s))),
        st.builds(
            lambda p, z: Window(period=p, zone=z),
            st.sampled_from(list(Period)),
            st.sampled_from(PROPERTY_ZONES),
        ),
    )


@st.composite
def limits(draw: st.DrawFn) -> Limits:
    currency = draw(st.sampled_from(("EUR", "JPY", "KWD", "USD")))
    rules: dict[str, LimitRule] = {}
    for _ in range(draw(st.integers(0, 5))):
        max_count = draw(st.none() | st.integers(1, 10**6))
        max_amount = draw(st.none() | positive_money(currency))
        if max_count is None and max_amount is None:
            max_count = 1
        rule = LimitRule(
            operation=draw(st.sampled_from(sorted(LIMITED_OPERATIONS))),
            window=draw(windows()),
            max_count=max_count,
            max_amount=max_amount,
        )
        rules.setdefault(rule.key, rule)
    max_balance = draw(st.none() | positive_money(currency))
    return Limits(rules=list(rules.values()), max_balance=max_balance)


@given(limits())
def test_limits_round_trip_through_json(value: Limits) -> None:
    data = value.to_data()
    assert Limits.from_data(json.loads(json.dumps(data))) == value
    assert Limits.from_data(data).to_data() == data


def test_data_shape() -> None:
    assert Limits().to_data() == {}
    assert Limits(rules=[SPENDS_5_AND_200_A_MONTH, TOP_UP_100_A_WEEK],
                  max_balance=eur("500")).to_data() == {
        "rules": [
            {"operation": "spend", "window": {"period": "month", "zone": "Europe/Nicosia"},
             "max_count": 5, "max_amount": {"minor": 20000, "currency": "EUR"}},
            {"operation": "top_up", "window": {"rolling_seconds": 604800},
             "max_amount": {"minor": 10000, "currency": "EUR"}},
        ],
        "max_balance": {"minor": 50000, "currency": "EUR"},
    }


def _rule_data(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {"operation": "spend", "window": {"rolling_seconds": 60},
                            "max_count": 1}
    data.update(changes)
    return {key: value for key, value in data.items() if value is not None}


_BAD_DATA: list[tuple[str, object, type[Exception], str]] = [
    ("not a mapping", [], InvalidInputError, "limits"),
    ("unknown key", {"rule": []}, InvalidInputError, "limits"),
    ("rules not a list", {"rules": {}}, InvalidInputError, "rules"),
    ("rule not a mapping", {"rules": ["x"]}, InvalidInputError, "rules[0].rule"),
    ("rule with an unknown key", {"rules": [_rule_data(limit=1)]}, InvalidInputError,
     "rules[0].rule"),
    ("rule without a window", {"rules": [_rule_data(window=None)]}, InvalidInputError,
     "rules[0].rule"),
    ("rule without an operation", {"rules": [_rule_data(operation=None)]}, InvalidInputError,
     "rules[0].rule"),
    ("rule without a bound", {"rules": [_rule_data(max_count=None)]}, InvalidInputError,
     "rules[0].rule"),
    ("unknown operation", {"rules": [_rule_data(operation="refund")]}, InvalidInputError,
     "rules[0].operation"),
    ("count as text", {"rules": [_rule_data(max_count="3")]}, InvalidInputError,
     "rules[0].max_count"),
    ("amount as text", {"rules": [_rule_data(max_amount="10.00")]}, InvalidAmountError,
     "rules[0].max_amount"),
    ("amount of an unknown currency",
     {"rules": [_rule_data(max_amount={"minor": 1, "currency": "eur"})]}, InvalidAmountError,
     "rules[0].max_amount"),
    ("zero amount", {"rules": [_rule_data(max_amount={"minor": 0, "currency": "EUR"})]},
     InvalidAmountError, "rules[0].max_amount"),
    ("window not a mapping", {"rules": [_rule_data(window="day")]}, InvalidInputError,
     "rules[0].window"),
    ("window with an unknown key", {"rules": [_rule_data(window={"hours": 1})]},
     InvalidInputError, "rules[0].window"),
    ("window with both", {"rules": [_rule_data(window={"rolling_seconds": 60, "period": "day",
                                                       "zone": NICOSIA})]},
     InvalidInputError, "rules[0].window"),
    ("zero seconds", {"rules": [_rule_data(window={"rolling_seconds": 0})]}, InvalidInputError,
     "rules[0].window.rolling_seconds"),
    ("bool seconds", {"rules": [_rule_data(window={"rolling_seconds": True})]},
     InvalidInputError, "rules[0].window.rolling_seconds"),
    ("float seconds", {"rules": [_rule_data(window={"rolling_seconds": 60.0})]},
     InvalidInputError, "rules[0].window.rolling_seconds"),
    ("huge seconds", {"rules": [_rule_data(window={"rolling_seconds": 10**20})]},
     InvalidInputError, "rules[0].window.rolling_seconds"),
    ("unknown period", {"rules": [_rule_data(window={"period": "year", "zone": NICOSIA})]},
     InvalidInputError, "rules[0].window.period"),
    ("unknown zone", {"rules": [_rule_data(window={"period": "day", "zone": "Mars/Olympus"})]},
     InvalidInputError, "rules[0].window.zone"),
    ("missing zone", {"rules": [_rule_data(window={"period": "day"})]}, InvalidInputError,
     "rules[0].window.zone"),
    ("second rule bad", {"rules": [_rule_data(), _rule_data(operation="payout", max_count=0)]},
     InvalidInputError, "rules[1].max_count"),
    ("two rules with one key", {"rules": [_rule_data(), _rule_data(max_count=2)]},
     InvalidInputError, "rules"),
    ("negative max balance", {"max_balance": {"minor": -1, "currency": "EUR"}},
     InvalidAmountError, "max_balance"),
    ("max balance as a number", {"max_balance": 500}, InvalidAmountError, "max_balance"),
    ("two currencies", {"rules": [_rule_data(max_amount={"minor": 1, "currency": "USD"})],
                        "max_balance": {"minor": 1, "currency": "EUR"}},
     CurrencyMismatchError, "limits"),
]


@pytest.mark.parametrize(
    ("data", "error", "field"), [row[1:] for row in _BAD_DATA], ids=[row[0] for row in _BAD_DATA]
)
def test_from_data_refuses_bad_data_naming_the_field(
    data: object, error: type[InvalidInputError], field: str
) -> None:
    with pytest.raises(error) as info:
        Limits.from_data(data)
    assert info.value.field == field


def test_from_data_keeps_the_error_class() -> None:
    with pytest.raises(InvalidAmountError) as amount:
        Limits.from_data({"rules": [_rule_data(max_amount={"minor": 1, "currency": "EUR",
                                                           "x": 1})]})
    assert type(amount.value) is InvalidAmountError
    with pytest.raises(InvalidInputError) as zone:
        Limits.from_data({"rules": [_rule_data(window={"period": "day", "zone": 3})]})
    assert type(zone.value) is InvalidInputError
