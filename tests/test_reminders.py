"""Low-balance thresholds: which ones a move of the open balance crosses."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from prepaid_wallet.errors import CurrencyMismatchError, InvalidAmountError, InvalidInputError
from prepaid_wallet.money import Money
from prepaid_wallet.rules.reminders import LowBalanceRule, Threshold, crossed


def eur(text: str) -> Money:
    return Money.of(text, "EUR")


RULE = LowBalanceRule((Threshold(eur("30.00"), "warn"), Threshold(eur("40.00"), "notice")))


@pytest.mark.parametrize(
    ("before", "after", "labels"),
    [
        ("50.00", "45.00", []),  # still above both
        ("50.00", "40.00", ["notice"]),  # equal to a threshold: crossed
        ("50.00", "39.99", ["notice"]),
        ("50.00", "30.00", ["notice", "warn"]),  # both at once, highest first
        ("50.00", "-10.00", ["notice", "warn"]),
        ("40.00", "35.00", []),  # already at "notice": staying below emits nothing
        ("35.00", "30.00", ["warn"]),
        ("30.00", "10.00", []),
        ("29.00", "50.00", []),  # going up crosses nothing (it re-arms)
        ("40.01", "40.00", ["notice"]),  # re-armed by one cent, crossed again
    ],
)
def test_crossed(before: str, after: str, labels: list[str]) -> None:
    assert [t.label for t in crossed(RULE, eur(before), eur(after))] == labels


def test_thresholds_are_kept_highest_first_and_found_by_label() -> None:
    assert [t.label for t in RULE.thresholds] == ["notice", "warn"]
    assert RULE.threshold("warn").amount == eur("30.00")
    assert RULE.currency == "EUR"
    with pytest.raises(InvalidInputError) as info:
        RULE.threshold("panic")
    assert info.value.field == "threshold"


def test_another_currency_crosses_nothing() -> None:
    usd = Money.of("10.00", "USD")
    assert crossed(RULE, Money.of("50.00", "USD"), usd) == ()


@pytest.mark.parametrize(
    ("make", "error", "field"),
    [
        (lambda: Threshold(eur("1.00"), " "), InvalidInputError, "label"),
        (lambda: Threshold(1, "x"), InvalidAmountError, "amount"),  # type: ignore[arg-type]
        (lambda: LowBalanceRule(()), InvalidInputError, "thresholds"),
        (lambda: LowBalanceRule("x"), InvalidInputError, "thresholds"),  # type: ignore[arg-type]
        (lambda: LowBalanceRule((Threshold(eur("1.00"), "a"), Threshold(eur("1.00"), "b"))),
         InvalidInputError, "thresholds"),
        (lambda: LowBalanceRule((Threshold(eur("1.00"), "a"), Threshold(eur("2.00"), "a"))),
         InvalidInputError, "thresholds"),
        (lambda: LowBalanceRule((Threshold(eur("1.00"), "a"),
                                 Threshold(Money.of("2.00", "USD"), "b"))),
         CurrencyMismatchError, "thresholds"),
    ],
)
def test_bad_input(make: object, error: type[Exception], field: str) -> None:
    with pytest.raises(error) as info:
        make()  # type: ignore[operator]
    assert getattr(info.value, "field", None) == field


@given(st.lists(st.integers(-10_000, 10_000), min_size=2, max_size=30))
def test_a_walk_emits_like_armed_thresholds(path: list[int]) -> None:
    """Along any walk of the balance, events follow the armed/disarmed model: a threshold is
    armed while the balance is above it, fires once when an armed threshold is reached or
    passed, and is re-armed only by going back above it."""
    thresholds = (0, 3_000, 4_000)
    rule = LowBalanceRule(tuple(Threshold(Money(a, "EUR"), f"t{a}") for a in thresholds))
    armed = {a: path[0] > a for a in thresholds}
    for before, after in itertools.pairwise(path):
        fired = [int(t.label[1:]) for t in crossed(rule, Money(before, "EUR"),
                                                    Money(after, "EUR"))]
        expected = [a for a in sorted(thresholds, reverse=True) if armed[a] and after <= a]
        assert fired == expected
        for a in thresholds:
            armed[a] = after > a
