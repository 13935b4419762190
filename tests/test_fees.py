"""Fee rules and periodic fees: validation, rounding, order, occurrences in local time."""

from __future__ import annotations

import itertools
import json
import os
import re
import subprocess
import sys
import textwrap
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from prepaid_wallet.errors import (
    CurrencyMismatchError,
    InvalidAmountError,
    InvalidCurrencyError,
    InvalidInputError,
    InvalidTimeError,
)
from prepaid_wallet.money import Money
from prepaid_wallet.rules.fees import (
    FEE_OPERATIONS,
    FeeCharge,
    FeeRule,
    PeriodicFee,
    fees_for,
    total_fee,
)
from prepaid_wallet.rules.operations import Operation


def eur(text: str) -> Money:
    return Money.of(text, "EUR")


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


TOP_UP = frozenset({Operation.TOP_UP})
NICOSIA = ZoneInfo("Europe/Nicosia")
BERLIN = ZoneInfo("Europe/Berlin")


# -- FeeRule validation --------------------------------------------------------------------------

VALID: dict[str, Any] = {"name": "fee", "operations": [Operation.SPEND], "percent": Decimal(1)}


@pytest.mark.parametrize(
    ("changes", "error", "field"),
    [
        ({"name": ""}, InvalidInputError, "name"),
        ({"name": "   "}, InvalidInputError, "name"),
        ({"name": None}, InvalidInputError, "name"),
        ({"operations": []}, InvalidInputError, "operations"),
        ({"operations": "spend"}, InvalidInputError, "operations"),
        ({"operations": ["refund"]}, InvalidInputError, "operations"),
        ({"operations": [Operation.TRANSFER_IN]}, InvalidInputError, "operations"),
        ({"operations": 3}, InvalidInputError, "operations"),
        ({"percent": None}, InvalidInputError, "fixed"),  # neither fixed nor percent
        ({"percent": 1.5}, InvalidInputError, "percent"),
        ({"percent": True}, InvalidInputError, "percent"),
        ({"percent": "1.5"}, InvalidInputError, "percent"),
        ({"percent": Decimal("NaN")}, InvalidInputError, "percent"),
        ({"percent": Decimal("sNaN")}, InvalidInputError, "percent"),
        ({"percent": Decimal("Infinity")}, InvalidInputError, "percent"),
        ({"percent": Decimal(0)}, InvalidInputError, "percent"),
        ({"percent": Decimal("-0")}, InvalidInputError, "percent"),
        ({"percent": Decimal("-1")}, InvalidInputError, "percent"),
        ({"percent": Decimal("100.01")}, InvalidInputError, "percent"),
        ({"percent": 101}, InvalidInputError, "percent"),
        ({"percent": Decimal("1E-9")}, InvalidInputError, "percent"),  # too many places
        ({"percent": Decimal("1E-999999999")}, InvalidInputError, "percent"),
        ({"fixed": Decimal("0.30")}, InvalidAmountError, "fixed"),
        ({"fixed": eur("0")}, InvalidAmountError, "fixed"),
        ({"fixed": eur("-0.30")}, InvalidAmountError, "fixed"),
        ({"minimum": eur("-0.01")}, InvalidAmountError, "minimum"),
        ({"minimum": 50}, InvalidAmountError, "minimum"),
        ({"maximum": eur("-1")}, InvalidAmountError, "maximum"),
        ({"minimum": eur("2"), "maximum": eur("1")}, InvalidAmountError, "maximum"),
        ({"fixed": eur("1"), "minimum": Money.of("1", "USD")}, CurrencyMismatchError, "minimum"),
        ({"fixed": eur("1"), "maximum": Money.of("1", "JPY")}, CurrencyMismatchError, "maximum"),
        (
            {"minimum": eur("1"), "maximum": Money.of("2", "USD")},
            CurrencyMismatchError,
            "maximum",
        ),
        ({"owner_groups": "students"}, InvalidInputError, "owner_groups"),
        ({"owner_groups": [""]}, InvalidInputError, "owner_groups"),
        ({"owner_groups": [1]}, InvalidInputError, "owner_groups"),
        ({"owner_groups": [["a"]]}, InvalidInputError, "owner_groups"),
    ],
)
def test_fee_rule_validation(changes: dict[str, Any], error: type[Exception], field: str) -> None:
    with pytest.raises(error) as caught:
        FeeRule(**{**VALID, **changes})
    assert isinstance(caught.value, InvalidInputError)
    assert caught.value.field == field


def test_fee_rule_accepts_any_iterable_and_ints() -> None:
    rule = FeeRule(
        "fee",
        (op for op in ["spend", Operation.TOP_UP]),
        percent=2,
        owner_groups=("a", "b"),
    )
    assert rule.operations == frozenset({Operation.SPEND, Operation.TOP_UP})
    assert isinstance(rule.percent, Decimal)
    assert rule.percent == Decimal(2)
    assert rule.owner_groups == frozenset({"a", "b"})
    assert rule.currency is None
    assert frozenset(Operation) - {Operation.TRANSFER_IN} == FEE_OPERATIONS


def test_fee_rule_is_frozen() -> None:
    rule = FeeRule(**VALID)
    with pytest.raises(AttributeError):
        rule.name = "other"  # type: ignore[misc]


# -- fee() ---------------------------------------------------------------------------------------


def rule_of(
    currency: str = "EUR",
    fixed: str | None = None,
    percent: str | None = None,
    minimum: str | None = None,
    maximum: str | None = None,
) -> FeeRule:
    def money(text: str | None) -> Money | None:
        return None if text is None else Money.of(text, currency)

    return FeeRule(
        "fee",
        TOP_UP,
        fixed=money(fixed),
        percent=None if percent is None else Decimal(percent),
        minimum=money(minimum),
        maximum=money(maximum),
    )


@pytest.mark.parametrize(
    ("currency", "fixed", "percent", "minimum", "maximum", "amount", "expected"),
    [
        # fixed only
        ("EUR", "0.30", None, None, None, "0.01", "0.30"),
        ("EUR", "0.30", None, None, None, "1000.00", "0.30"),
        # percent only: rounded up to the cent
        ("EUR", None, "1.5", None, None, "0.01", "0.01"),
        ("EUR", None, "1.5", None, None, "1.00", "0.02"),
        ("EUR", None, "1.5", None, None, "0.66", "0.01"),  # 0.0099 -> 0.01
        ("EUR", None, "1.5", None, None, "0.67", "0.02"),  # 0.01005 -> 0.02 (not 0.01)
        ("EUR", None, "1.5", None, None, "10.00", "0.15"),  # exact stays exact
        ("EUR", None, "1", None, None, "2.00", "0.02"),
        ("EUR", None, "100", None, None, "12.34", "12.34"),
        ("EUR", None, "0.00000001", None, None, "0.01", "0.01"),
        ("EUR", None, "2.9", None, None, "1.00", "0.03"),  # 0.029 -> 0.03
        # zero decimals
        ("JPY", None, "1.5", None, None, "1", "1"),
        ("JPY", None, "1.5", None, None, "1000", "15"),
        ("JPY", None, "1.5", None, None, "1001", "16"),  # 15.015 -> 16
        # three decimals
        ("KWD", None, "1.5", None, None, "0.001", "0.001"),
        ("KWD", None, "1.5", None, None, "1.000", "0.015"),
        ("KWD", None, "1.5", None, None, "1.001", "0.016"),  # 0.015015 -> 0.016
        # both
        ("EUR", "0.30", "1.5", None, None, "1.00", "0.32"),
        ("EUR", "0.30", "1.5", None, None, "100.00", "1.80"),
        ("EUR", "0.30", "2.9", None, None, "10.01", "0.60"),  # 0.30 + 0.29029 -> 0.30 + 0.30
        # minimum and maximum clamps
        ("EUR", None, "1.5", "0.50", None, "1.00", "0.50"),
        ("EUR", None, "1.5", "0.50", None, "100.00", "1.50"),
        ("EUR", None, "1.5", None, "5.00", "1000.00", "5.00"),
        ("EUR", None, "1.5", None, "5.00", "333.33", "5.00"),  # 4.99995 -> 5.00
        ("EUR", None, "1.5", None, "5.00", "300.00", "4.50"),
        ("EUR", "0.30", "1.5", "0.50", "5.00", "1.00", "0.50"),
        ("EUR", "0.30", "1.5", "0.50", "5.00", "100.00", "1.80"),
        ("EUR", "0.30", "1.5", "0.50", "5.00", "1000.00", "5.00"),
        ("EUR", "0.30", None, "0.50", None, "1.00", "0.50"),  # minimum above the fixed part
        ("EUR", "0.30", None, None, "0.20", "1.00", "0.20"),  # maximum below the fixed part
        ("EUR", None, "1.5", "0.00", "0.00", "100.00", "0.00"),  # switched off
    ],
)
def test_fee(
    currency: str,
    fixed: str | None,
    percent: str | None,
    minimum: str | None,
    maximum: str | None,
    amount: str,
    expected: str,
) -> None:
    rule = rule_of(currency, fixed, percent, minimum, maximum)
    assert rule.fee(Money.of(amount, currency)) == Money.of(expected, currency)


def test_percent_only_rule_works_in_any_currency() -> None:
    rule = FeeRule("fx", TOP_UP, percent=Decimal("1.5"))
    assert rule.fee(Money.of("1.00", "EUR")) == Money.of("0.02", "EUR")
    assert rule.fee(Money.of("1001", "JPY")) == Money.of("16", "JPY")
    assert rule.fee(Money.of("1.001", "KWD")) == Money.of("0.016", "KWD")


@pytest.mark.parametrize(
    ("rule", "amount", "error", "field"),
    [
        (rule_of(fixed="0.30"), eur("0"), InvalidAmountError, "amount"),
        (rule_of(percent="1"), eur("-1"), InvalidAmountError, "amount"),
        (rule_of(percent="1"), Decimal(1), InvalidAmountError, "amount"),
        (rule_of(fixed="0.30"), Money.of("1", "USD"), CurrencyMismatchError, "amount"),
        (rule_of(percent="1", maximum="5"), Money.of("1", "USD"), CurrencyMismatchError, "amount"),
        (rule_of(percent="1", minimum="0"), Money.of("1", "JPY"), CurrencyMismatchError, "amount"),
        (
            rule_of(fixed="0.01", percent="100"),
            Money.from_minor_units(2**63 - 1, "EUR"),
            InvalidAmountError,
            "amount",
        ),
    ],
)
def test_fee_refuses(rule: FeeRule, amount: Any, error: type[Exception], field: str) -> None:
    with pytest.raises(error) as caught:
        rule.fee(amount)
    assert isinstance(caught.value, InvalidInputError)
    assert caught.value.field == field


CURRENCIES = ("EUR", "JPY", "KWD")


@st.composite
def fee_rules(draw: st.DrawFn, currency: str) -> FeeRule:
    """Rules with every combination of fixed, percent, minimum and maximum."""
    fixed = draw(st.none() | st.integers(1, 10_000))
    percent = draw(
        (st.none() if fixed is not None else st.nothing())
        | st.decimals(Decimal("0.0001"), Decimal(100), places=4)
    )
    minimum = draw(st.none() | st.integers(0, 10_000))
    maximum = draw(st.none() | st.integers(minimum or 0, 100_000))

    def money(minor: int | None) -> Money | None:
        return None if minor is None else Money.from_minor_units(minor, currency)

    return FeeRule(
        "fee",
        TOP_UP,
        fixed=money(fixed),
        percent=percent,
        minimum=money(minimum),
        maximum=money(maximum),
    )


@st.composite
def rule_and_parts(draw: st.DrawFn) -> tuple[FeeRule, list[int], str]:
    currency = draw(st.sampled_from(CURRENCIES))
    rule = draw(fee_rules(currency))
    parts = draw(st.lists(st.integers(1, 10**9), min_size=1, max_size=20))
    return rule, parts, currency


@given(rule_and_parts())
def test_splitting_never_lowers_the_fee(case: tuple[FeeRule, list[int], str]) -> None:
    rule, parts, currency = case
    whole = rule.fee(Money.from_minor_units(sum(parts), currency))
    split = Money.sum((rule.fee(Money.from_minor_units(p, currency)) for p in parts), currency)
    assert split >= whole


@given(rule_and_parts())
def test_fee_matches_exact_fractions(case: tuple[FeeRule, list[int], str]) -> None:
    rule, parts, currency = case
    amount = parts[0]
    exact = Fraction(0 if rule.fixed is None else rule.fixed.minor_units)
    if rule.percent is not None:
        exact += Fraction(amount) * Fraction(rule.percent) / 100
    expected = -(-exact.numerator // exact.denominator)  # ceiling
    if rule.minimum is not None:
        expected = max(expected, rule.minimum.minor_units)
    if rule.maximum is not None:
        expected = min(expected, rule.maximum.minor_units)
    assert rule.fee(Money.from_minor_units(amount, currency)).minor_units == expected


@given(
    st.sampled_from(CURRENCIES),
    st.decimals(Decimal("0.00000001"), Decimal(100), places=8),
    st.integers(1, 10**15),
    st.integers(0, 10**15),
)
def test_percent_fee_is_monotone(currency: str, percent: Decimal, small: int, extra: int) -> None:
    rule = FeeRule("fee", TOP_UP, percent=percent)
    low = rule.fee(Money.from_minor_units(small, currency))
    high = rule.fee(Money.from_minor_units(small + extra, currency))
    assert Money.zero(currency) < low <= high


# -- applies, fees_for, total_fee ----------------------------------------------------------------


def test_applies() -> None:
    everyone = FeeRule("a", [Operation.SPEND, Operation.PAYOUT], fixed=eur("1"))
    students = FeeRule(
        "b", [Operation.SPEND], fixed=eur("1"), owner_groups={"students", "staff"}
    )
    assert everyone.applies(Operation.SPEND, frozenset())
    assert everyone.applies(Operation.PAYOUT, frozenset({"x"}))
    assert not everyone.applies(Operation.TOP_UP, frozenset())
    assert students.applies(Operation.SPEND, frozenset({"staff"}))
    assert students.applies(Operation.SPEND, frozenset({"other", "students"}))
    assert not students.applies(Operation.SPEND, frozenset())
    assert not students.applies(Operation.SPEND, frozenset({"other"}))
    assert not students.applies(Operation.TOP_UP, frozenset({"students"}))
    with pytest.raises(InvalidInputError) as caught:
        students.applies(Operation.SPEND, "students")  # a single string, not a collection
    assert caught.value.field == "owner_groups"
    with pytest.raises(InvalidInputError) as caught:
        students.applies("refund", frozenset())  # type: ignore[arg-type]
    assert caught.value.field == "operation"


RULES = (
    FeeRule("percent", [Operation.SPEND, Operation.TOP_UP], percent=Decimal("1.5")),
    FeeRule("students", [Operation.SPEND], fixed=eur("0.10"), owner_groups={"students"}),
    FeeRule("transfer", [Operation.TRANSFER_OUT], fixed=eur("0.25")),
    FeeRule("flat", [Operation.SPEND], fixed=eur("0.30")),
    FeeRule("waived", [Operation.SPEND], percent=1, maximum=eur("0")),
)


@pytest.mark.parametrize(
    ("operation", "groups", "expected"),
    [
        (Operation.SPEND, set(), [("percent", "1.50"), ("flat", "0.30")]),
        (
            Operation.SPEND,
            {"students"},
            [("percent", "1.50"), ("students", "0.10"), ("flat", "0.30")],
        ),
        (Operation.TOP_UP, {"students"}, [("percent", "1.50")]),
        (Operation.TRANSFER_OUT, set(), [("transfer", "0.25")]),
        (Operation.TRANSFER_IN, set(), []),
        (Operation.CREDIT, set(), []),
    ],
)
def test_fees_for(operation: Operation, groups: set[str], expected: list[tuple[str, str]]) -> None:
    charges = fees_for(RULES, operation, eur("100.00"), groups)
    assert charges == tuple(FeeCharge(name, eur(amount)) for name, amount in expected)


def test_fees_for_keeps_the_given_order_and_uses_the_operation_amount() -> None:
    rules = list(RULES[:4])
    forward = fees_for(rules, Operation.SPEND, eur("100.00"), {"students"})
    backward = fees_for(rules[::-1], Operation.SPEND, eur("100.00"), {"students"})
    assert [c.rule for c in forward] == ["percent", "students", "flat"]
    assert backward == forward[::-1]
    # every rule on the amount alone: 1.5 % of 100.00, not of 100.00 plus earlier fees
    assert forward[0].amount == backward[-1].amount == eur("1.50")
    assert total_fee(forward, "EUR") == eur("1.90")


def test_fees_for_refuses() -> None:
    with pytest.raises(CurrencyMismatchError) as mismatch:
        fees_for(RULES, Operation.TRANSFER_OUT, Money.of("1", "USD"), set())
    assert mismatch.value.field == "amount"
    for args, field in [
        ((RULES[0], Operation.SPEND, eur("1"), set()), "rules"),
        (([RULES[0], "x"], Operation.SPEND, eur("1"), set()), "rules"),
        ((RULES, "refund", eur("1"), set()), "operation"),
        ((RULES, Operation.SPEND, eur("0"), set()), "amount"),
        ((RULES, Operation.SPEND, eur("1"), "students"), "owner_groups"),
    ]:
        with pytest.raises(InvalidInputError) as caught:
            fees_for(*args)  # type: ignore[arg-type]
        assert caught.value.field == field


def test_total_fee() -> None:
    assert total_fee([], "JPY") == Money.zero("JPY")
    charges = [FeeCharge("a", eur("0.30")), FeeCharge("b", eur("1.25"))]
    assert total_fee(charges, "EUR") == eur("1.55")
    with pytest.raises(CurrencyMismatchError):
        total_fee(charges, "USD")
    with pytest.raises(InvalidCurrencyError):
        total_fee(charges, "eur")
    with pytest.raises(InvalidInputError) as caught:
        total_fee([eur("1")], "EUR")  # type: ignore[list-item]
    assert caught.value.field == "charges"


@pytest.mark.parametrize(
    ("rule", "amount", "field"),
    [("", eur("1"), "rule"), ("a", eur("0"), "amount"), ("a", Decimal(1), "amount")],
)
def test_fee_charge_validation(rule: str, amount: Any, field: str) -> None:
    with pytest.raises(InvalidInputError) as caught:
        FeeCharge(rule, amount)
    assert caught.value.field == field


# -- describe and data ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rule", "words"),
    [
        (
            FeeRule(
                "card top-up fee",
                TOP_UP,
                fixed=eur("0.30"),
                percent=Decimal("1.5"),
                minimum=eur("0.50"),
                maximum=eur("5.00"),
                owner_groups={"students"},
            ),
            "card top-up fee: 0.30 EUR + 1.5 %, at least 0.50 EUR, at most 5.00 EUR,"
            " for owners in students",
        ),
        (FeeRule("payout", [Operation.PAYOUT], fixed=eur("1.00")), "payout: 1.00 EUR"),
        (
            FeeRule("fx", TOP_UP, percent=Decimal("1E+1"), owner_groups={"b", "a"}),
            "fx: 10 %, for owners in a or b",
        ),
    ],
)
def test_describe(rule: FeeRule, words: str) -> None:
    assert rule.describe() == words


@given(st.sampled_from(CURRENCIES).flatmap(fee_rules), st.frozensets(st.sampled_from("xyz")))
def test_fee_rule_data_round_trip(rule: FeeRule, groups: frozenset[str]) -> None:
    import attrs

    rule = attrs.evolve(rule, owner_groups=groups, operations=FEE_OPERATIONS)
    data = json.loads(json.dumps(rule.to_data()))
    assert FeeRule.from_data(data) == rule
    assert FeeRule.from_data(data).to_data() == rule.to_data()


def test_fee_rule_data_shape() -> None:
    rule = FeeRule("f", [Operation.SPEND, Operation.DEBIT], fixed=eur("0.30"), percent=Decimal(2))
    assert rule.to_data() == {
        "name": "f",
        "operations": ["debit", "spend"],
        "fixed": {"minor": 30, "currency": "EUR"},
        "percent": "2",
    }


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ([], "fee_rule"),
        ({"name": "f", "operations": ["spend"], "percent": "1", "extra": 1}, "fee_rule"),
        ({"operations": ["spend"], "percent": "1"}, "name"),
        ({"name": "f", "percent": "1"}, "operations"),
        ({"name": "f", "operations": "spend", "percent": "1"}, "operations"),
        ({"name": "f", "operations": ["spend"], "percent": 1.5}, "percent"),
        ({"name": "f", "operations": ["spend"], "percent": "1e1"}, "percent"),
        ({"name": "f", "operations": ["spend"], "percent": "NaN"}, "percent"),
        ({"name": "f", "operations": ["spend"], "fixed": {"minor": 1.5, "currency": "EUR"}},
         "fixed"),
        ({"name": "f", "operations": ["spend"], "fixed": {"minor": 1, "currency": "eur"}},
         "fixed"),
        ({"name": "f", "operations": ["spend"], "fixed": {"minor": True, "currency": "EUR"}},
         "fixed"),
        ({"name": "f", "operations": ["spend"], "percent": "1", "owner_groups": "a"},
         "owner_groups"),
    ],
)
def test_fee_rule_from_bad_data(data: Any, field: str) -> None:
    with pytest.raises(InvalidInputError) as caught:
        FeeRule.from_data(data)
    assert caught.value.field == field


# -- periodic fees -------------------------------------------------------------------------------


def monthly(**changes: Any) -> PeriodicFee:
    values: dict[str, Any] = {
        "name": "monthly-maintenance",
        "amount": eur("2.00"),
        "rule": "FREQ=MONTHLY;BYMONTHDAY=1",
        "start": datetime(2026, 1, 1, tzinfo=NICOSIA),
        "zone": "Europe/Nicosia",
    }
    return PeriodicFee(**{**values, **changes})


@pytest.mark.parametrize(
    ("changes", "error", "field"),
    [
        ({"name": ""}, InvalidInputError, "name"),
        ({"name": "monthly fee"}, InvalidInputError, "name"),  # a space
        ({"name": "a@b"}, InvalidInputError, "name"),  # "@" separates name and instant
        ({"name": "x" * 101}, InvalidInputError, "name"),
        ({"amount": eur("0")}, InvalidAmountError, "amount"),
        ({"amount": Decimal(2)}, InvalidAmountError, "amount"),
        ({"rule": ""}, InvalidInputError, "rule"),
        ({"rule": 7}, InvalidInputError, "rule"),
        ({"rule": "FREQ=FORTNIGHTLY"}, InvalidInputError, "rule"),
        ({"rule": "FREQ=MONTHLY;BYFOO=1"}, InvalidInputError, "rule"),
        ({"rule": "FREQ=MONTHLY;;"}, InvalidInputError, "rule"),
        ({"rule": "FREQ=MONTHLY;FREQ=DAILY"}, InvalidInputError, "rule"),
        ({"rule": "FREQ=DAILY;COUNT=x"}, InvalidInputError, "rule"),
        ({"rule": "FREQ=DAILY;COUNT=3;UNTIL=20270101T000000Z"}, InvalidInputError, "rule"),
        ({"rule": "FREQ=DAILY;UNTIL=2027Z"}, InvalidInputError, "rule"),
        ({"rule": "FREQ=DAILY;DTSTART=20260101T000000"}, InvalidInputError, "rule"),
        ({"rule": "FREQ=DAILY\nRDATE:20260105T000000"}, InvalidInputError, "rule"),
        ({"rule": "DTSTART:20260101T000000\nRRULE:FREQ=DAILY"}, InvalidInputError, "rule"),
        ({"rule": "EXRULE:FREQ=DAILY"}, InvalidInputError, "rule"),
        ({"start": datetime(2026, 1, 1)}, InvalidTimeError, "start"),  # naive
        ({"start": "2026-01-01T00:00:00+00:00"}, InvalidTimeError, "start"),
        ({"start": datetime(2026, 1, 1, 0, 0, 0, 5, tzinfo=UTC)}, InvalidTimeError, "start"),
        ({"zone": "Mars/Olympus"}, InvalidInputError, "zone"),
        ({"zone": ""}, InvalidInputError, "zone"),
        ({"zone": "localtime"}, InvalidInputError, "zone"),
        ({"owner_groups": "students"}, InvalidInputError, "owner_groups"),
    ],
)
def test_periodic_fee_validation(
    changes: dict[str, Any], error: type[Exception], field: str
) -> None:
    with pytest.raises(error) as caught:
        monthly(**changes)
    assert isinstance(caught.value, InvalidInputError)
    assert caught.value.field == field


def test_monthly_at_local_midnight_over_a_year() -> None:
    fee = monthly()
    got = fee.occurrences(utc(2025, 12, 31, 22), utc(2026, 12, 31, 22))
    # Jan 1 2026 00:00 EET (= since) is excluded; Jan 1 2027 00:00 EET (= until) included.
    expected = [
        utc(2026, 1, 31, 22),  # Feb 1 00:00 +02
        utc(2026, 2, 28, 22),  # Mar 1 00:00 +02
        utc(2026, 3, 31, 21),  # Apr 1 00:00 +03 (summer time since Mar 29)
        utc(2026, 4, 30, 21),
        utc(2026, 5, 31, 21),
        utc(2026, 6, 30, 21),
        utc(2026, 7, 31, 21),
        utc(2026, 8, 31, 21),
        utc(2026, 9, 30, 21),  # Oct 1 00:00 +03
        utc(2026, 10, 31, 22),  # Nov 1 00:00 +02 (winter time since Oct 25)
        utc(2026, 11, 30, 22),
        utc(2026, 12, 31, 22),  # Jan 1 2027
    ]
    assert list(got) == expected
    for at in got:
        assert at.tzinfo is UTC
        local = at.astimezone(NICOSIA)
        assert (local.day, local.hour, local.minute) == (1, 0, 0)


def test_half_open_bounds() -> None:
    fee = monthly()
    feb, mar = utc(2026, 1, 31, 22), utc(2026, 2, 28, 22)
    assert fee.occurrences(feb, mar) == (mar,)
    assert fee.occurrences(feb - timedelta(seconds=1), mar - timedelta(seconds=1)) == (feb,)
    assert fee.occurrences(feb, feb) == ()
    assert fee.occurrences(feb - timedelta(microseconds=1), feb) == (feb,)
    # nothing before the start, the start itself when it matches the rule
    start = utc(2025, 12, 31, 22)
    assert fee.occurrences(utc(2000, 1, 1), start) == (start,)
    assert fee.occurrences(utc(2000, 1, 1), start - timedelta(seconds=1)) == ()


def test_start_that_does_not_match_the_rule_is_not_an_occurrence() -> None:
    fee = monthly(start=datetime(2026, 1, 15, tzinfo=NICOSIA))
    assert fee.occurrences(utc(2026, 1, 1), utc(2026, 3, 1)) == (
        utc(2026, 1, 31, 22),
        utc(2026, 2, 28, 22),
    )


@st.composite
def cut_points(draw: st.DrawFn) -> list[datetime]:
    base = utc(2026, 1, 1)
    offsets = draw(st.lists(st.integers(0, 366 * 24 * 3600), min_size=2, max_size=6))
    return sorted(base + timedelta(seconds=s) for s in offsets)


@given(cut_points())
def test_consecutive_ranges_see_each_occurrence_once(cuts: list[datetime]) -> None:
    fee = PeriodicFee(
        "daily", eur("1"), "FREQ=DAILY", datetime(2025, 12, 1, 2, 30, tzinfo=BERLIN),
        "Europe/Berlin",
    )
    pieces = [
        at for low, high in itertools.pairwise(cuts) for at in fee.occurrences(low, high)
    ]
    assert pieces == list(fee.occurrences(cuts[0], cuts[-1]))


def test_daily_across_berlin_spring_forward_and_fall_back() -> None:
    fee = PeriodicFee(
        "daily", eur("1"), "FREQ=DAILY", datetime(2026, 3, 1, 2, 30, tzinfo=BERLIN),
        "Europe/Berlin",
    )
    assert fee.occurrences(utc(2026, 3, 27), utc(2026, 3, 31)) == (
        utc(2026, 3, 27, 1, 30),  # 02:30 CET
        utc(2026, 3, 28, 1, 30),
        utc(2026, 3, 29, 1, 0),  # 02:30 does not exist: 03:00 CEST, the end of the gap
        utc(2026, 3, 30, 0, 30),  # 02:30 CEST
    )
    spring = fee.occurrences(utc(2026, 3, 29), utc(2026, 3, 30))[0]
    assert spring.astimezone(BERLIN).isoformat() == "2026-03-29T03:00:00+02:00"
    assert fee.occurrences(utc(2026, 10, 24), utc(2026, 10, 27)) == (
        utc(2026, 10, 24, 0, 30),
        utc(2026, 10, 25, 0, 30),  # 02:30 happens twice: the first (CEST)
        utc(2026, 10, 26, 1, 30),  # 02:30 CET
    )


def test_hourly_rule_in_a_gap_gives_one_occurrence() -> None:
    fee = PeriodicFee(
        "half-hourly", eur("1"), "FREQ=HOURLY;BYMINUTE=0,30",
        datetime(2026, 3, 29, tzinfo=BERLIN), "Europe/Berlin",
    )
    # local 01:30 CET, then 02:00, 02:30 (missing) and 03:00 CEST all at 01:00Z, then 03:30
    assert fee.occurrences(utc(2026, 3, 29, 0, 15), utc(2026, 3, 29, 1, 45)) == (
        utc(2026, 3, 29, 0, 30),
        utc(2026, 3, 29, 1, 0),
        utc(2026, 3, 29, 1, 30),
    )


def test_santiago_midnight_gap() -> None:
    zone = ZoneInfo("America/Santiago")
    fee = PeriodicFee(
        "daily", eur("1"), "FREQ=DAILY", datetime(2024, 9, 1, tzinfo=zone), "America/Santiago"
    )
    got = fee.occurrences(utc(2024, 9, 6, 12), utc(2024, 9, 9, 12))
    # Sep 8 2024: clocks jump from 00:00 -04 to 01:00 -03, so midnight does not exist.
    assert got == (utc(2024, 9, 7, 4), utc(2024, 9, 8, 4), utc(2024, 9, 9, 3))
    assert [at.astimezone(zone).isoformat() for at in got] == [
        "2024-09-07T00:00:00-04:00",
        "2024-09-08T01:00:00-03:00",
        "2024-09-09T00:00:00-03:00",
    ]


def test_until_in_utc_and_in_local_time() -> None:
    start = datetime(2026, 1, 1, tzinfo=BERLIN)  # 2025-12-31T23:00Z
    since, until = utc(2025, 1, 1), utc(2027, 1, 1)
    in_utc = PeriodicFee("d", eur("1"), "FREQ=DAILY;UNTIL=20260102T230000Z", start,
                         "Europe/Berlin")
    assert in_utc.occurrences(since, until) == (
        utc(2025, 12, 31, 23), utc(2026, 1, 1, 23), utc(2026, 1, 2, 23)
    )
    local = PeriodicFee("d", eur("1"), "RRULE:FREQ=DAILY;UNTIL=20260102T000000", start,
                        "Europe/Berlin")
    assert local.occurrences(since, until) == (utc(2025, 12, 31, 23), utc(2026, 1, 1, 23))
    count = PeriodicFee("d", eur("1"), "freq=daily;count=2", start, "Europe/Berlin")
    assert count.occurrences(since, until) == (utc(2025, 12, 31, 23), utc(2026, 1, 1, 23))


def test_occurrences_refuse() -> None:
    fee = monthly()
    for args, field in [
        ((datetime(2026, 1, 1), utc(2026, 2, 1)), "since"),
        ((utc(2026, 1, 1), datetime(2026, 2, 1)), "until"),
        ((utc(2026, 2, 1), utc(2026, 1, 1)), "until"),
    ]:
        with pytest.raises(InvalidTimeError) as caught:
            fee.occurrences(*args)
        assert caught.value.field == field


def test_occurrence_keys() -> None:
    fee = monthly()
    got = fee.occurrences(utc(2026, 1, 1), utc(2027, 1, 1))
    keys = [fee.occurrence_key(at) for at in got]
    assert keys[0] == "monthly-maintenance@2026-01-31T22:00:00+00:00"
    assert len(set(keys)) == len(keys) == 12
    for key in keys:
        assert re.fullmatch(r"[A-Za-z0-9._@+:-]+", key)
    # stable: the same instant in another zone, and an equal fee built again, give the same key
    assert fee.occurrence_key(got[3].astimezone(NICOSIA)) == keys[3]
    assert monthly().occurrence_key(got[3]) == keys[3]
    # another fee's key differs for the same instant
    assert monthly(name="other").occurrence_key(got[3]) != keys[3]
    for at in (got[0] + timedelta(hours=1), got[0] + timedelta(microseconds=1)):
        with pytest.raises(InvalidTimeError) as caught:
            fee.occurrence_key(at)
        assert caught.value.field == "at"
    with pytest.raises(InvalidTimeError):
        fee.occurrence_key(datetime(2026, 2, 1))


def test_periodic_fee_applies() -> None:
    assert monthly().applies(frozenset())
    fee = monthly(owner_groups={"students"})
    assert fee.applies({"students", "x"})
    assert not fee.applies(set())
    with pytest.raises(InvalidInputError):
        fee.applies("students")


def test_periodic_fee_data_round_trip() -> None:
    for fee in (
        monthly(),
        monthly(owner_groups={"b", "a"}, rule="RRULE:FREQ=WEEKLY;INTERVAL=2;BYDAY=MO,SU"),
        monthly(amount=Money.of("500", "JPY"), zone="America/Santiago"),
    ):
        data = json.loads(json.dumps(fee.to_data()))
        again = PeriodicFee.from_data(data)
        assert again == fee
        assert again.to_data() == data
        window = (utc(2026, 1, 1), utc(2026, 6, 1))
        assert again.occurrences(*window) == fee.occurrences(*window)
    assert monthly().to_data() == {
        "name": "monthly-maintenance",
        "amount": {"minor": 200, "currency": "EUR"},
        "rule": "FREQ=MONTHLY;BYMONTHDAY=1",
        "start": "2025-12-31T22:00:00+00:00",
        "zone": "Europe/Nicosia",
    }


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"extra": 1}, "periodic_fee"),
        ({"start": "yesterday"}, "start"),
        ({"start": "2026-01-01T00:00:00"}, "start"),
        ({"start": 5}, "start"),
        ({"amount": {"minor": 0, "currency": "EUR"}}, "amount"),
        ({"amount": "2.00 EUR"}, "amount"),
        ({"rule": "FREQ=NEVER"}, "rule"),
        ({"zone": "Nowhere"}, "zone"),
        ({"owner_groups": "a"}, "owner_groups"),
    ],
)
def test_periodic_fee_from_bad_data(changes: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidInputError) as caught:
        PeriodicFee.from_data({**monthly().to_data(), **changes})
    assert caught.value.field == field


def test_periodic_fee_from_data_needs_every_field() -> None:
    data = monthly().to_data()
    del data["zone"]
    with pytest.raises(InvalidInputError) as caught:
        PeriodicFee.from_data(data)
    assert caught.value.field == "zone"
    with pytest.raises(InvalidInputError) as caught:
        PeriodicFee.from_data("x")
    assert caught.value.field == "periodic_fee"


_SCRIPT = textwrap.dedent(
    """
    import calendar, json, sys
    from datetime import UTC, datetime
    from zoneinfo import ZoneInfo
    from prepaid_wallet.money import Money
    from prepaid_wallet.rules.fees import PeriodicFee

    calendar.setfirstweekday(calendar.SUNDAY)  # WKST must not follow the process setting
    fees = [
        PeriodicFee("m", Money.of("2", "EUR"), "FREQ=MONTHLY;BYMONTHDAY=1",
                    datetime(2026, 1, 1, tzinfo=ZoneInfo("Europe/Nicosia")), "Europe/Nicosia"),
        PeriodicFee("d", Money.of("1", "EUR"), "FREQ=DAILY",
                    datetime(2026, 3, 1, 2, 30, tzinfo=ZoneInfo("Europe/Berlin")),
                    "Europe/Berlin"),
        PeriodicFee("w", Money.of("1", "EUR"), "FREQ=WEEKLY;INTERVAL=2;BYDAY=MO,SU",
                    datetime(2026, 1, 7, 12, tzinfo=UTC), "America/Santiago"),
    ]
    since, until = datetime(2026, 1, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC)
    json.dump([[at.isoformat() for at in f.occurrences(since, until)] for f in fees], sys.stdout)
    """
)


@pytest.mark.parametrize("tz", ["UTC", "Pacific/Kiritimati", "America/St_Johns", "Asia/Kathmandu"])
def test_independent_of_process_time_zone_and_calendar(tz: str) -> None:
    expected = [
        [at.isoformat() for at in fee.occurrences(utc(2026, 1, 1), utc(2027, 1, 1))]
        for fee in (
            monthly(name="m"),
            PeriodicFee("d", eur("1"), "FREQ=DAILY",
                        datetime(2026, 3, 1, 2, 30, tzinfo=BERLIN), "Europe/Berlin"),
            PeriodicFee("w", eur("1"), "FREQ=WEEKLY;INTERVAL=2;BYDAY=MO,SU",
                        utc(2026, 1, 7, 12), "America/Santiago"),
        )
    ]
    assert len(expected[0]) == 12
    assert expected[1][28] == "2026-03-29T01:00:00+00:00"  # the spring-forward day
    # weeks start on Monday: Sun Jan 11 belongs to the week of Mon Jan 5 (the start's week)
    assert expected[2][:3] == [
        "2026-01-11T12:00:00+00:00",  # 09:00 -03, the start's local time
        "2026-01-19T12:00:00+00:00",
        "2026-01-25T12:00:00+00:00",
    ]
    result = subprocess.run(
        [sys.executable, "-c", _SCRIPT],
        env={**os.environ, "TZ": tz},
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert json.loads(result.stdout) == expected


def test_every_wall_time_of_a_year_resolves_to_the_documented_instant() -> None:
    """Hourly occurrences over a whole year in Berlin: every existing local time maps to the
    instant that reads it (the first one when it happens twice), missing ones to the jump."""
    fee = PeriodicFee("h", eur("1"), "FREQ=HOURLY;BYMINUTE=0,30",
                      datetime(2026, 1, 1, tzinfo=BERLIN), "Europe/Berlin")
    got = fee.occurrences(utc(2026, 1, 1), utc(2027, 1, 1))
    # every wall time of the local year once; in spring 02:00 and 02:30 join 03:00 at the jump
    assert len(got) == 2 * 8760 - 2
    assert len(set(got)) == len(got)
    for at in got:
        local = at.astimezone(BERLIN)
        assert (local.minute, local.second, local.fold) in ((0, 0, 0), (30, 0, 0))
    # in autumn 02:00 and 02:30 count once, in summer time: the second 02:xx hour has none
    assert fee.occurrences(utc(2026, 10, 25, 0, 15), utc(2026, 10, 25, 2, 15)) == (
        utc(2026, 10, 25, 0, 30),  # 02:30 CEST
        utc(2026, 10, 25, 2, 0),  # 03:00 CET
    )
