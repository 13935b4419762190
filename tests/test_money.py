"""Tests for :mod:`prepaid_wallet.money`: tables for the rules, properties for the arithmetic."""

from __future__ import annotations

import decimal
from collections.abc import Callable
from decimal import Decimal
from fractions import Fraction

import attrs
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from prepaid_wallet.errors import (
    CurrencyMismatchError,
    InexactMoneyError,
    InvalidAmountError,
    InvalidCurrencyError,
    InvalidInputError,
)
from prepaid_wallet.money import (
    MAX_MINOR_UNITS,
    ROUNDING_MODES,
    Currency,
    Money,
    currency_exponent,
)
from tests.strategies import CURRENCIES, currencies, decimals, money, positive_money

EUR_MAX = "92233720368547758.07"  # 2**63 - 1 cents
EUR_OVER = "92233720368547758.08"  # 2**63 cents

# Contexts in which every multiplication below is exact and every division is carried far
# enough that rounding it to an integer gives the same result as rounding the exact quotient
# (the divisors have at most 10 significant digits, so a quotient that is not exactly half-way
# is at least 10**-10 away from it, far more than 200 digits can blur).
EXACT = decimal.Context(prec=200, traps=[decimal.Inexact, decimal.InvalidOperation])
WIDE = decimal.Context(prec=200, traps=[decimal.InvalidOperation])


# -- currencies ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "exponent"),
    [("EUR", 2), ("USD", 2), ("GBP", 2), ("CHF", 2), ("JPY", 0), ("KWD", 3), ("BHD", 3),
     ("CLF", 4)],
)
def test_currency_exponent(code: str, exponent: int) -> None:
    assert currency_exponent(code) == exponent
    assert Currency.of(code) == Currency(code, exponent)
    assert str(Currency.of(code)) == code


@pytest.mark.parametrize("code", ["eur", "Eur", "ABC", "EURO", "EU", "", " EUR", "EUR ", 978, None,
                                  b"EUR", ["EUR"]])
def test_unknown_currency_is_rejected(code: object) -> None:
    with pytest.raises(InvalidCurrencyError) as info:
        currency_exponent(code, field="wallet_currency")
    assert info.value.field == "wallet_currency"
    with pytest.raises(InvalidCurrencyError) as info:
        Money.of("1", code)  # type: ignore[arg-type]
    assert info.value.field == "currency"
    with pytest.raises(InvalidCurrencyError):
        Money.from_minor_units(1, code)  # type: ignore[arg-type]


# -- Money.of: what it accepts -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "currency", "minor"),
    [
        (Decimal("12.50"), "EUR", 1250),
        (Decimal("12.5"), "EUR", 1250),
        (Decimal("1.500"), "EUR", 150),  # trailing zeros are not extra precision
        (Decimal("1E+2"), "EUR", 10000),
        (Decimal("0E+1000000"), "EUR", 0),
        (Decimal("0E-1000000"), "EUR", 0),
        (Decimal("0"), "EUR", 0),
        (12, "EUR", 1200),
        (-3, "EUR", -300),
        (0, "JPY", 0),
        ("12.50", "EUR", 1250),
        ("12.5", "EUR", 1250),
        ("-3", "EUR", -300),
        ("0", "EUR", 0),
        ("0.00", "EUR", 0),
        ("007", "EUR", 700),
        ("5", "JPY", 5),
        ("1.0", "JPY", 1),  # a zero in a place JPY lacks is not extra precision
        (Decimal("1.00"), "JPY", 1),
        ("1.005", "KWD", 1005),
        ("1.1234", "CLF", 11234),
        ("1." + "0" * 5000, "EUR", 100),  # longer than int()'s 4300-digit limit
        (Decimal("1." + "0" * 5000), "EUR", 100),
        (EUR_MAX, "EUR", MAX_MINOR_UNITS),
        ("-" + EUR_MAX, "EUR", -MAX_MINOR_UNITS),
        (str(MAX_MINOR_UNITS), "JPY", MAX_MINOR_UNITS),
        (-MAX_MINOR_UNITS, "JPY", -MAX_MINOR_UNITS),
        ("9223372036854775.807", "KWD", MAX_MINOR_UNITS),
    ],
)
def test_of_accepts(value: Decimal | int | str, currency: str, minor: int) -> None:
    m = Money.of(value, currency)
    assert m.minor_units == minor
    assert type(m.minor_units) is int
    assert m.currency == currency


# -- Money.of: what it rejects, with the exact error and field -----------------------------------


@pytest.mark.parametrize(
    ("value", "currency"),
    [
        pytest.param(1.5, "EUR", id="float"),
        pytest.param(1.0, "EUR", id="integral-float"),
        pytest.param(True, "EUR", id="bool"),
        pytest.param(False, "EUR", id="bool-false"),
        pytest.param(None, "EUR", id="none"),
        pytest.param(Fraction(1, 2), "EUR", id="fraction"),
        pytest.param(b"1", "EUR", id="bytes"),
        pytest.param("nan", "EUR", id="str-nan"),
        pytest.param("NaN", "EUR", id="str-NaN"),
        pytest.param("Infinity", "EUR", id="str-inf"),
        pytest.param(Decimal("NaN"), "EUR", id="nan"),
        pytest.param(Decimal("sNaN"), "EUR", id="snan"),
        pytest.param(Decimal("-NaN"), "EUR", id="neg-nan"),
        pytest.param(Decimal("Infinity"), "EUR", id="inf"),
        pytest.param(Decimal("-Infinity"), "EUR", id="neg-inf"),
        pytest.param(Decimal("-0"), "EUR", id="neg-zero"),
        pytest.param(Decimal("-0.00"), "EUR", id="neg-zero-places"),
        pytest.param(Decimal("-0E-5"), "EUR", id="neg-zero-exp"),
        pytest.param("-0", "EUR", id="str-neg-zero"),
        pytest.param("-0.00", "EUR", id="str-neg-zero-places"),
        pytest.param("1.234", "EUR", id="eur-3-places"),
        pytest.param("0.001", "EUR", id="eur-below-cent"),
        pytest.param(Decimal("1.234"), "EUR", id="eur-3-places-decimal"),
        pytest.param("1.5", "JPY", id="jpy-1-place"),
        pytest.param("1.2345", "KWD", id="kwd-4-places"),
        pytest.param("1." + "0" * 5000 + "1", "EUR", id="5000-places"),
        pytest.param(Decimal("1E-999999999"), "EUR", id="tiny-exponent"),
        pytest.param("1e3", "EUR", id="str-exponent"),
        pytest.param("1E3", "EUR", id="str-exponent-upper"),
        pytest.param(" 1", "EUR", id="leading-space"),
        pytest.param("1 ", "EUR", id="trailing-space"),
        pytest.param("1\n", "EUR", id="trailing-newline"),
        pytest.param("1,00", "EUR", id="comma-decimal"),
        pytest.param("1,000.00", "EUR", id="grouping"),
        pytest.param("1_000", "EUR", id="underscore"),
        pytest.param("+1", "EUR", id="plus"),
        pytest.param("--1", "EUR", id="double-minus"),
        pytest.param("\u22121", "EUR", id="unicode-minus"),
        pytest.param("1.", "EUR", id="trailing-dot"),
        pytest.param(".5", "EUR", id="leading-dot"),
        pytest.param("", "EUR", id="empty"),
        pytest.param("٣٤", "EUR", id="arabic-indic-digits"),
        pytest.param("１２", "EUR", id="fullwidth-digits"),
        pytest.param("0x10", "EUR", id="hex"),
        pytest.param(EUR_OVER, "EUR", id="2**63-cents"),
        pytest.param("-" + EUR_OVER, "EUR", id="-2**63-cents"),
        pytest.param(Decimal(EUR_OVER), "EUR", id="2**63-cents-decimal"),
        pytest.param(2**63, "JPY", id="2**63-yen-int"),
        pytest.param(-(2**63), "JPY", id="-2**63-yen-int"),
        pytest.param(10**30, "JPY", id="huge-int"),
        pytest.param(Decimal("1e1000000"), "EUR", id="1e1000000"),
        pytest.param(Decimal("-1e1000000"), "EUR", id="-1e1000000"),
        pytest.param("1" + "0" * 5000, "EUR", id="5000-digit-int-str"),
    ],
)
def test_of_rejects_amount(value: object, currency: str) -> None:
    with pytest.raises(InvalidAmountError) as info:
        Money.of(value, currency)  # type: ignore[arg-type]
    assert type(info.value) is InvalidAmountError
    assert info.value.field == "amount"
    assert isinstance(info.value, ValueError)
    with pytest.raises(InvalidAmountError) as info:
        Money.of(value, currency, field="price")  # type: ignore[arg-type]
    assert info.value.field == "price"


def test_error_carries_rule_and_value() -> None:
    with pytest.raises(InvalidAmountError) as info:
        Money.of("1.234", "EUR")
    assert "2 decimal places" in info.value.rule
    assert info.value.value == Decimal("1.234")


# -- boundaries ----------------------------------------------------------------------------------


def test_range_is_63_bits_both_ways() -> None:
    assert MAX_MINOR_UNITS == 2**63 - 1
    top = Money.from_minor_units(MAX_MINOR_UNITS, "EUR")
    bottom = Money.from_minor_units(-MAX_MINOR_UNITS, "EUR")
    assert Money.of(EUR_MAX, "EUR") == top
    assert Money.of("-" + EUR_MAX, "EUR") == bottom
    assert -top == bottom
    assert abs(bottom) == top
    for minor in (2**63, -(2**63)):
        with pytest.raises(InvalidAmountError) as info:
            Money.from_minor_units(minor, "EUR")
        assert info.value.field == "minor_units"


@pytest.mark.parametrize(
    "operation",
    [
        pytest.param(lambda top, one: top + one, id="add"),
        pytest.param(lambda top, one: -top - one - one, id="sub"),
        pytest.param(lambda top, one: top * 2, id="mul"),
        pytest.param(lambda top, one: top.multiply("1.5", decimal.ROUND_DOWN), id="multiply"),
        pytest.param(lambda top, one: top / Decimal("0.5"), id="div"),
        pytest.param(lambda top, one: Money.sum([top, one], "EUR"), id="sum"),
    ],
)
def test_arithmetic_overflow_raises(operation: object) -> None:
    top = Money.from_minor_units(MAX_MINOR_UNITS, "EUR")
    one = Money.from_minor_units(1, "EUR")
    with pytest.raises(InvalidAmountError):
        operation(top, one)  # type: ignore[operator]


def test_operator_overflow_names_the_amount() -> None:
    top = Money.from_minor_units(MAX_MINOR_UNITS, "EUR")
    for operation in (
        lambda: top + top,
        lambda: -top - top,
        lambda: top * 2,
        lambda: top.multiply("1.5", decimal.ROUND_DOWN),
        lambda: top.divide("0.5"),
    ):
        with pytest.raises(InvalidAmountError) as info:
            operation()
        assert info.value.field == "amount"


def test_arithmetic_up_to_the_boundary_is_fine() -> None:
    top = Money.from_minor_units(MAX_MINOR_UNITS, "EUR")
    one = Money.from_minor_units(1, "EUR")
    assert (top - one) + one == top
    assert -top + top == Money.zero("EUR")
    assert (top - one) / 2 == Money.from_minor_units((MAX_MINOR_UNITS - 1) // 2, "EUR")


# -- construction directly and from minor units --------------------------------------------------


@pytest.mark.parametrize("minor", [1.0, True, "5", Decimal(5), None])
def test_minor_units_must_be_int(minor: object) -> None:
    with pytest.raises(InvalidAmountError) as info:
        Money.from_minor_units(minor, "EUR")  # type: ignore[arg-type]
    assert info.value.field == "minor_units"
    with pytest.raises(InvalidAmountError):
        Money(minor, "EUR")  # type: ignore[arg-type]


@given(st.integers(-MAX_MINOR_UNITS, MAX_MINOR_UNITS), currencies())
def test_minor_units_round_trip(minor: int, currency: str) -> None:
    m = Money.from_minor_units(minor, currency)
    assert m.minor_units == minor
    assert Money.from_minor_units(m.minor_units, m.currency) == m
    assert m.amount == Fraction(minor, 10**m.exponent)
    assert m.amount.as_tuple().exponent == -currency_exponent(currency)
    assert Money.of(m.amount, currency) == m


def test_money_is_immutable() -> None:
    m = Money.of("1", "EUR")
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        m.minor_units = 5  # type: ignore[misc]


def test_signs() -> None:
    m = Money.of("-1.50", "EUR")
    assert m.is_negative()
    assert not m.is_positive()
    assert not m.is_zero()
    assert (-m).is_positive()
    assert abs(m) == -m == Money.of("1.50", "EUR")
    assert +m is m
    assert Money.zero("JPY").is_zero()
    assert Money.zero("JPY") == Money.of(0, "JPY")


# -- comparison and equality ---------------------------------------------------------------------


def test_equality_and_hash_ignore_how_the_amount_was_written() -> None:
    a, b = Money.of("5", "EUR"), Money.of("5.00", "EUR")
    assert a == b
    assert hash(a) == hash(b)
    assert len({a, b, Money.of(Decimal("5.0"), "EUR"), Money.of(5, "EUR")}) == 1


def test_equality_across_currencies_is_false() -> None:
    assert Money.of("5", "EUR") != Money.of("5", "USD")
    assert not Money.of("5", "EUR") == Money.of("5", "USD")  # noqa: SIM201
    assert Money.of("0", "EUR") != Money.of("0", "JPY")
    assert Money.of("5", "EUR") != 5  # type: ignore[comparison-overlap]
    assert Money.of("5", "EUR") != Decimal(5)
    assert Money.of("5", "EUR") != "5.00 EUR"  # type: ignore[comparison-overlap]


@pytest.mark.parametrize(
    "compare",
    [
        pytest.param(lambda a, b: a < b, id="lt"),
        pytest.param(lambda a, b: a <= b, id="le"),
        pytest.param(lambda a, b: a > b, id="gt"),
        pytest.param(lambda a, b: a >= b, id="ge"),
        pytest.param(lambda a, b: a + b, id="add"),
        pytest.param(lambda a, b: a - b, id="sub"),
        pytest.param(lambda a, b: Money.sum([a, b], a.currency), id="sum"),
    ],
)
def test_mixing_currencies_raises_mismatch(compare: object) -> None:
    eur, usd = Money.of("5", "EUR"), Money.of("5", "USD")
    with pytest.raises(CurrencyMismatchError) as info:
        compare(eur, usd)  # type: ignore[operator]
    assert (info.value.left, info.value.right) == ("EUR", "USD")
    assert info.value.field == "currency"
    assert isinstance(info.value, InvalidInputError)
    with pytest.raises(CurrencyMismatchError) as info:
        compare(usd, eur)  # type: ignore[operator]
    assert (info.value.left, info.value.right) == ("USD", "EUR")


@pytest.mark.parametrize("other", [5, Decimal(5), "5", 5.0, None])
def test_comparing_with_non_money_is_a_type_error(other: object) -> None:
    m = Money.of("5", "EUR")
    with pytest.raises(TypeError):
        _ = m < other
    with pytest.raises(TypeError):
        _ = m + other
    with pytest.raises(TypeError):
        _ = m - other


@given(st.data(), currencies())
def test_order_follows_minor_units(data: st.DataObject, currency: str) -> None:
    a, b = data.draw(money(currency)), data.draw(money(currency))
    assert (a < b) == (a.minor_units < b.minor_units)
    assert (a <= b) == (a.minor_units <= b.minor_units)
    assert (a > b) == (a.minor_units > b.minor_units)
    assert (a >= b) == (a.minor_units >= b.minor_units)
    assert (a == b) == (a.minor_units == b.minor_units)


# -- addition and subtraction --------------------------------------------------------------------


def test_add_and_subtract() -> None:
    assert Money.of("1.50", "EUR") + Money.of("2.75", "EUR") == Money.of("4.25", "EUR")
    assert Money.of("1.50", "EUR") - Money.of("2.75", "EUR") == Money.of("-1.25", "EUR")
    assert Money.of("1", "JPY") - Money.of("1", "JPY") == Money.zero("JPY")


@given(st.data(), currencies())
def test_add_subtract_are_exact(data: st.DataObject, currency: str) -> None:
    half = MAX_MINOR_UNITS // 2
    a = data.draw(money(currency, -half, half))
    b = data.draw(money(currency, -half, half))
    assert (a + b).minor_units == a.minor_units + b.minor_units
    assert (a + b) - b == a
    assert a + b == b + a
    assert a - b == -(b - a)


def test_sum() -> None:
    amounts = [Money.of("1.10", "EUR"), Money.of("2.20", "EUR"), Money.of("-0.30", "EUR")]
    assert Money.sum(amounts, "EUR") == Money.of("3.00", "EUR")
    assert Money.sum([], "KWD") == Money.zero("KWD")
    assert Money.sum(iter(amounts), "EUR") == Money.of("3.00", "EUR")
    with pytest.raises(InvalidCurrencyError):
        Money.sum([], "eur")


@given(st.lists(money("EUR", -(10**15), 10**15), max_size=20))
def test_sum_matches_minor_units(amounts: list[Money]) -> None:
    total = Money.sum(amounts, "EUR")
    assert total.minor_units == sum(m.minor_units for m in amounts)


# -- multiplication and division -----------------------------------------------------------------


def test_rounding_modes_are_the_seven_decimal_modes() -> None:
    assert frozenset(
        {
            decimal.ROUND_CEILING,
            decimal.ROUND_DOWN,
            decimal.ROUND_FLOOR,
            decimal.ROUND_HALF_DOWN,
            decimal.ROUND_HALF_EVEN,
            decimal.ROUND_HALF_UP,
            decimal.ROUND_UP,
        }
    ) == ROUNDING_MODES
    assert decimal.ROUND_05UP not in ROUNDING_MODES


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        pytest.param(lambda m: m * 3, "30.00", id="mul-int"),
        pytest.param(lambda m: 3 * m, "30.00", id="rmul-int"),
        pytest.param(lambda m: m * Decimal("0.5"), "5.00", id="mul-decimal"),
        pytest.param(lambda m: Decimal("0.25") * m, "2.50", id="rmul-decimal"),
        pytest.param(lambda m: m * -1, "-10.00", id="mul-negative"),
        pytest.param(lambda m: m * 0, "0.00", id="mul-zero"),
        pytest.param(lambda m: m / 4, "2.50", id="div-int"),
        pytest.param(lambda m: m / Decimal("0.5"), "20.00", id="div-decimal"),
        pytest.param(lambda m: m / -8, "-1.25", id="div-negative"),
        pytest.param(lambda m: m.multiply("0.125"), "1.25", id="multiply-str"),
        pytest.param(lambda m: m.divide("1000"), "0.01", id="divide-str"),
        pytest.param(lambda m: m.multiply(Decimal("-0")), "0.00", id="multiply-neg-zero"),
    ],
)
def test_exact_multiply_divide(expression: object, expected: str) -> None:
    assert expression(Money.of("10.00", "EUR")) == Money.of(expected, "EUR")  # type: ignore[operator]


@pytest.mark.parametrize(
    ("expression", "field"),
    [
        pytest.param(lambda m: m / 3, "divisor", id="div-3"),
        pytest.param(lambda m: m.divide(7), "divisor", id="divide-7"),
        pytest.param(lambda m: m * Decimal("0.0001"), "factor", id="mul-ten-thousandth"),
        pytest.param(lambda m: m.multiply("1.0005"), "factor", id="multiply-str"),
    ],
)
def test_inexact_without_rounding_mode_raises(expression: object, field: str) -> None:
    with pytest.raises(InexactMoneyError) as info:
        expression(Money.of("10.00", "EUR"))  # type: ignore[operator]
    assert info.value.field == field
    assert isinstance(info.value, InvalidAmountError)


def test_inexact_error_is_typed_even_under_a_trapping_decimal_context() -> None:
    with decimal.localcontext() as ctx:
        ctx.prec = 5
        ctx.traps[decimal.Inexact] = True
        ctx.traps[decimal.Rounded] = True
        with pytest.raises(InexactMoneyError):
            Money.of("10.00", "EUR") / 3
        assert Money.of("12345678.91", "EUR").multiply(3) == Money.of("37037036.73", "EUR")


def test_rounding_examples() -> None:
    m = Money.of("0.05", "EUR")
    assert m.multiply("0.5", decimal.ROUND_HALF_UP) == Money.of("0.03", "EUR")
    assert m.multiply("0.5", decimal.ROUND_HALF_DOWN) == Money.of("0.02", "EUR")
    assert m.multiply("0.5", decimal.ROUND_HALF_EVEN) == Money.of("0.02", "EUR")
    assert (-m).multiply("0.5", decimal.ROUND_HALF_UP) == Money.of("-0.03", "EUR")
    assert (-m).multiply("0.5", decimal.ROUND_FLOOR) == Money.of("-0.03", "EUR")
    assert (-m).multiply("0.5", decimal.ROUND_CEILING) == Money.of("-0.02", "EUR")
    assert Money.of("10", "JPY").divide(3, decimal.ROUND_UP) == Money.of("4", "JPY")
    assert Money.of("-10", "JPY").divide(3, decimal.ROUND_DOWN) == Money.of("-3", "JPY")
    assert Money.of("10", "JPY").divide(-3, decimal.ROUND_FLOOR) == Money.of("-4", "JPY")


@pytest.mark.parametrize("mode", sorted(ROUNDING_MODES))
def test_every_mode_on_halves_and_thirds_of_small_amounts(mode: str) -> None:
    # Exact halves (where the HALF_* modes differ) and non-halves, on both sides of zero.
    for minor in range(-12, 13):
        m = Money.from_minor_units(minor, "EUR")
        for divisor in (2, 3, 4, -2, -3):
            exact = WIDE.divide(Decimal(minor), Decimal(divisor))
            assert m.divide(divisor, mode).minor_units == _reference(exact, mode), (minor, divisor)
        for factor in ("0.5", "1.5", "-0.5", "0.25", "0.1"):
            exact = EXACT.multiply(Decimal(minor), Decimal(factor))
            assert m.multiply(factor, mode).minor_units == _reference(exact, mode), (minor, factor)


def _reference(exact: Decimal, mode: str) -> int:
    return int(exact.quantize(Decimal(1), rounding=mode, context=WIDE))


@given(
    money(min_minor=-(10**15), max_minor=10**15),
    decimals(-1000, 1000, places=6),
    st.sampled_from(sorted(ROUNDING_MODES)),
)
def test_multiply_matches_decimal_quantize(m: Money, factor: Decimal, mode: str) -> None:
    exact = EXACT.multiply(Decimal(m.minor_units), factor)
    assert m.multiply(factor, mode).minor_units == _reference(exact, mode)
    assert m.multiply(str(factor), mode) == m.multiply(factor, mode)


@given(
    money(), st.integers(-(10**6), 10**6).filter(bool), st.sampled_from(sorted(ROUNDING_MODES))
)
def test_multiply_and_divide_by_int_match_decimal_quantize(m: Money, n: int, mode: str) -> None:
    assert m.divide(n, mode).minor_units == _reference(
        WIDE.divide(Decimal(m.minor_units), Decimal(n)), mode
    )
    exact = EXACT.multiply(Decimal(m.minor_units), Decimal(n))
    if abs(exact) <= MAX_MINOR_UNITS:
        assert m.multiply(n, mode).minor_units == int(exact)
        assert (m * n).minor_units == int(exact)
    else:
        with pytest.raises(InvalidAmountError):
            m.multiply(n, mode)


@given(
    money(min_minor=-(10**15), max_minor=10**15),
    decimals(-1000, 1000, places=6).filter(lambda d: not d.is_zero()),
    st.sampled_from(sorted(ROUNDING_MODES)),
)
def test_divide_matches_decimal_quantize(m: Money, divisor: Decimal, mode: str) -> None:
    exact = WIDE.divide(Decimal(m.minor_units), divisor)
    expected = _reference(exact, mode)
    if abs(expected) <= MAX_MINOR_UNITS:
        assert m.divide(divisor, mode).minor_units == expected
    else:
        with pytest.raises(InvalidAmountError):
            m.divide(divisor, mode)


@given(money(min_minor=-(10**12), max_minor=10**12), decimals(-1000, 1000, places=4))
def test_exact_operator_agrees_with_rounded_methods(m: Money, factor: Decimal) -> None:
    exact = EXACT.multiply(Decimal(m.minor_units), factor)
    if exact == exact.to_integral_value(context=EXACT):
        for mode in ROUNDING_MODES:
            assert m * factor == m.multiply(factor, mode)
    else:
        with pytest.raises(InexactMoneyError):
            _ = m * factor


@pytest.mark.parametrize("mode", ["ROUND_BANKERS", "round_half_up", decimal.ROUND_05UP, "", 1])
def test_invalid_rounding_mode_is_rejected(mode: object) -> None:
    m = Money.of("1", "EUR")
    for call in (m.multiply, m.divide):
        with pytest.raises(InvalidAmountError) as info:
            call(3, mode)  # type: ignore[arg-type]
        assert info.value.field == "rounding"


@pytest.mark.parametrize("zero", [0, Decimal(0), Decimal("-0"), Decimal("0E+5"), "0", "0.000"])
def test_divide_by_zero_is_rejected(zero: object) -> None:
    m = Money.of("1", "EUR")
    with pytest.raises(InvalidAmountError) as info:
        m.divide(zero, decimal.ROUND_HALF_EVEN)  # type: ignore[arg-type]
    assert info.value.field == "divisor"
    if not isinstance(zero, str):
        with pytest.raises(InvalidAmountError):
            _ = m / zero


@pytest.mark.parametrize(
    "bad", [1.5, 2.0, True, Decimal("NaN"), Decimal("sNaN"), Decimal("Infinity"), "1e2", " 2",
            None, Fraction(1, 2)]
)
def test_bad_factor_is_rejected(bad: object) -> None:
    m = Money.of("1", "EUR")
    with pytest.raises(InvalidAmountError) as info:
        m.multiply(bad)  # type: ignore[arg-type]
    assert info.value.field == "factor"
    with pytest.raises(InvalidAmountError) as info:
        m.divide(bad, decimal.ROUND_HALF_EVEN)  # type: ignore[arg-type]
    assert info.value.field == "divisor"


@pytest.mark.parametrize("bad", [1.5, 2.0, "2", Fraction(1, 2)])
def test_operators_refuse_floats_and_strings(bad: object) -> None:
    m = Money.of("1", "EUR")
    with pytest.raises(TypeError):
        _ = m * bad
    with pytest.raises(TypeError):
        _ = bad * m
    with pytest.raises(TypeError):
        _ = m / bad


def test_operators_refuse_money_by_money() -> None:
    m = Money.of("1", "EUR")
    with pytest.raises(TypeError):
        _ = m * m
    with pytest.raises(TypeError):
        _ = m / m


def test_bool_factor_is_rejected_by_operator() -> None:
    with pytest.raises(InvalidAmountError):
        _ = Money.of("1", "EUR") * True


# -- allocate and split --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("amount", "ratios", "expected"),
    [
        ("0.05", [1, 1, 1], ["0.02", "0.02", "0.01"]),  # ties go to the earlier part
        ("0.10", [1, 1, 1], ["0.04", "0.03", "0.03"]),
        ("-0.10", [1, 1, 1], ["-0.04", "-0.03", "-0.03"]),
        ("0.01", [1, 0, 1], ["0.01", "0.00", "0.00"]),
        ("0.01", [0, 1, 1], ["0.00", "0.01", "0.00"]),
        ("1.00", [3, 7], ["0.30", "0.70"]),
        ("1.00", ["0.5", "0.25", "0.25"], ["0.50", "0.25", "0.25"]),
        ("1.00", [Decimal("0.3"), Decimal("0.7")], ["0.30", "0.70"]),
        ("0.05", [1, 3], ["0.01", "0.04"]),  # 1.25 / 3.75: largest remainder (0.75) wins
        ("0.07", [1, 2], ["0.02", "0.05"]),  # 2.33 / 4.67: the 0.67 remainder wins
        ("0.00", [1, 2], ["0.00", "0.00"]),
        ("100.00", [1], ["100.00"]),
    ],
)
def test_allocate_table(amount: str, ratios: list[object], expected: list[str]) -> None:
    parts = Money.of(amount, "EUR").allocate(ratios)  # type: ignore[arg-type]
    assert parts == tuple(Money.of(e, "EUR") for e in expected)
    assert isinstance(parts, tuple)


_ratio = st.one_of(st.integers(0, 1000), decimals(0, 1000, places=3))


@given(money(), st.lists(_ratio, min_size=1, max_size=12))
def test_allocate_properties(whole: Money, ratios: list[int | Decimal]) -> None:
    weights = [Fraction(r) for r in ratios]
    total = sum(weights)
    assume(total > 0)
    parts = whole.allocate(ratios)

    assert len(parts) == len(ratios)
    assert all(p.currency == whole.currency for p in parts)
    assert Money.sum(parts, whole.currency) == whole  # adds up exactly
    shares = [Fraction(whole.minor_units) * w / total for w in weights]
    for part, share, weight in zip(parts, shares, weights, strict=True):
        assert abs(part.minor_units - share) < 1  # within one minor unit of the exact share
        if weight == 0:
            assert part.is_zero()
    # Largest remainder, ties to the earlier index: a part rounded away from zero never has a
    # smaller remainder than one rounded towards zero, nor an equal one at a later index.
    magnitude = [abs(s) for s in shares]
    remainders = [m - int(m) for m in magnitude]
    bumped = [abs(p.minor_units) > int(m) for p, m in zip(parts, magnitude, strict=True)]
    for i, bumped_i in enumerate(bumped):
        for j, bumped_j in enumerate(bumped):
            if bumped_i and not bumped_j:
                assert remainders[i] > remainders[j] or (
                    remainders[i] == remainders[j] and i < j
                )


@given(money(), st.integers(1, 50))
def test_split_properties(whole: Money, n: int) -> None:
    parts = whole.split(n)
    assert len(parts) == n
    assert Money.sum(parts, whole.currency) == whole
    sizes = [abs(p.minor_units) for p in parts]
    assert sizes == sorted(sizes, reverse=True)  # earlier parts are the larger ones
    assert max(sizes) - min(sizes) <= 1
    assert parts == whole.allocate([1] * n)


def test_split_one_is_identity() -> None:
    m = Money.of("-7.77", "EUR")
    assert m.split(1) == (m,)


@pytest.mark.parametrize(
    "ratios",
    [[], [-1, 2], [Decimal("-0.5"), 1], [0, 0], [Decimal(0), "0.00"], [1.5], [True, 1],
     ["abc"], [Decimal("NaN")], [Decimal("Infinity")], [None]],
)
def test_allocate_rejects_bad_ratios(ratios: list[object]) -> None:
    with pytest.raises(InvalidAmountError) as info:
        Money.of("1", "EUR").allocate(ratios)  # type: ignore[arg-type]
    assert info.value.field == "ratios"


@pytest.mark.parametrize("parts", [0, -1, True, 1.0, "2", None])
def test_split_rejects_bad_counts(parts: object) -> None:
    with pytest.raises(InvalidAmountError) as info:
        Money.of("1", "EUR").split(parts)  # type: ignore[arg-type]
    assert info.value.field == "parts"


# -- str and repr --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "currency", "text"),
    [
        ("50", "EUR", "50.00 EUR"),
        ("50.5", "EUR", "50.50 EUR"),
        ("5", "JPY", "5 JPY"),
        ("0", "JPY", "0 JPY"),
        ("1.005", "KWD", "1.005 KWD"),
        ("0", "EUR", "0.00 EUR"),
        ("-0.01", "EUR", "-0.01 EUR"),
        ("0.001", "BHD", "0.001 BHD"),
        ("1", "CLF", "1.0000 CLF"),
        (EUR_MAX, "EUR", EUR_MAX + " EUR"),
        ("-" + EUR_MAX, "EUR", "-" + EUR_MAX + " EUR"),
        (str(MAX_MINOR_UNITS), "JPY", f"{MAX_MINOR_UNITS} JPY"),  # never in exponent form
        ("1000000", "JPY", "1000000 JPY"),
    ],
)
def test_str(value: str, currency: str, text: str) -> None:
    m = Money.of(value, currency)
    assert str(m) == text
    with decimal.localcontext() as ctx:  # the thread's decimal context does not matter
        ctx.prec = 3
        ctx.traps[decimal.Inexact] = True
        ctx.traps[decimal.Rounded] = True
        assert str(m) == text
        assert m.amount == Money.of(value, currency).amount


def test_amount_is_exact_under_a_low_precision_context() -> None:
    m = Money.of("12345678.91", "EUR")
    with decimal.localcontext() as ctx:
        ctx.prec = 5
        assert m.amount == Decimal("12345678.91")
        assert m.amount.as_tuple() == Decimal("12345678.91").as_tuple()


@given(money())
def test_str_round_trips_through_of(m: Money) -> None:
    number, code = str(m).split()
    assert code == m.currency
    assert number.isascii()
    assert Money.of(number, m.currency) == m


def test_repr() -> None:
    assert repr(Money.of("50", "EUR")) == "Money.of('50.00', 'EUR')"
    assert repr(Money.of("-5", "JPY")) == "Money.of('-5', 'JPY')"
    assert repr(Money.of("1.005", "KWD")) == "Money.of('1.005', 'KWD')"


@given(money())
def test_repr_evaluates_back_to_the_same_money(m: Money) -> None:
    assert eval(repr(m), {"Money": Money}) == m


@pytest.mark.parametrize("code", ["XXX", "XTS", "XAU", "XAG", "XDR"])
def test_codes_that_are_not_money_are_refused(code: str) -> None:
    with pytest.raises(InvalidCurrencyError) as info:
        Money.of("1", code)
    assert info.value.field == "currency"


@pytest.mark.parametrize(
    "call",
    [
        lambda m: m.multiply(Decimal("1E-999999999")),
        lambda m: m.divide(Decimal("1E+999999999")),
        lambda m: m.multiply("1." + "0" * 100),
        lambda m: m.allocate([Decimal("1E-999999999"), 1]),
    ],
)
def test_absurd_factors_are_refused_quickly(call: Callable[[Money], object]) -> None:
    with pytest.raises(InvalidAmountError):
        call(Money.of("10", "EUR"))


def test_sum_overflow_names_amount() -> None:
    big = Money.from_minor_units(2**63 - 1, "EUR")
    with pytest.raises(InvalidAmountError) as info:
        Money.sum([big, Money.of("0.01", "EUR")], "EUR")
    assert info.value.field == "amount"


@given(currencies())
def test_all_strategy_currencies_are_known(currency: str) -> None:
    assert currency in CURRENCIES
    assert currency_exponent(currency) in (0, 2, 3, 4)


@given(positive_money())
def test_positive_money_strategy(m: Money) -> None:
    assert m.is_positive()
