"""Tests for :mod:`prepaid_wallet.formatting`: babel display and strict parsing."""

from __future__ import annotations

import decimal
import locale as process_locale
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from prepaid_wallet.errors import InvalidAmountError, InvalidCurrencyError, InvalidInputError
from prepaid_wallet.formatting import ROUND_TRIP_LOCALES, format_money, parse_money
from prepaid_wallet.money import MAX_MINOR_UNITS, Money
from tests.strategies import money

NBSP = "\u00a0"
NNBSP = "\u202f"  # narrow no-break space: the French group separator


@pytest.mark.parametrize(
    ("amount", "currency", "locale", "text"),
    [
        ("50.00", "EUR", "fr_FR", f"50,00{NBSP}€"),
        ("1234.56", "EUR", "fr_FR", f"1{NNBSP}234,56{NBSP}€"),
        ("-1234.56", "EUR", "fr_FR", f"-1{NNBSP}234,56{NBSP}€"),
        ("1234.56", "USD", "en_US", "$1,234.56"),
        ("-1234.56", "USD", "en_US", "-$1,234.56"),
        ("0", "USD", "en_US", "$0.00"),
        ("1234", "JPY", "ja_JP", "￥1,234"),  # fullwidth yen sign, no decimals
        ("1234", "JPY", "en_US", "¥1,234"),
        ("1234567.89", "EUR", "de_DE", f"1.234.567,89{NBSP}€"),
        ("1.005", "KWD", "en_US", "KWD1.005"),  # three decimals for KWD
        ("1.005", "KWD", "de_DE", f"1,005{NBSP}KWD"),
        ("-1234.50", "CHF", "de_CH", "CHF-1’234.50"),
        ("9.99", "GBP", "en_GB", "£9.99"),
        ("9.99", "USD", "en_GB", "US$9.99"),
    ],
)
def test_format_money(amount: str, currency: str, locale: str, text: str) -> None:
    m = Money.of(amount, currency)
    assert format_money(m, locale) == text
    assert format_money(m, locale=locale) == text
    assert parse_money(text, currency, locale) == m


def test_default_locale_is_en_us() -> None:
    assert format_money(Money.of("1234.56", "USD")) == "$1,234.56"
    assert parse_money("$1,234.56", "USD") == Money.of("1234.56", "USD")


def test_custom_pattern_and_currency_digits() -> None:
    m = Money.of("1234.5", "EUR")
    assert format_money(m, "en_US", format="#,##0.00 ¤¤") == "1,234.50 EUR"
    # currency_digits=False uses the pattern's decimals but never rounds digits away.
    assert format_money(Money.of("5", "JPY"), "en_US", currency_digits=False) == "¥5.00"
    assert format_money(Money.of("1.005", "KWD"), "en_US", currency_digits=False) == "KWD1.005"
    assert format_money(Money.of("1.50", "EUR"), "en_US", format="#,##0 ¤") == "1.50 €"


@pytest.mark.parametrize("pattern", ["", "abc", "¤¤¤", "'"])
def test_pattern_without_digits_is_rejected(pattern: str) -> None:
    with pytest.raises(InvalidInputError) as info:
        format_money(Money.of("1", "EUR"), "en_US", format=pattern)
    assert info.value.field == "format"


@pytest.mark.parametrize(
    "locale", ["xx_YY", "zz", "", "C", "POSIX", "en-US", "!!", "123", None, 42]
)
def test_unknown_locale_is_rejected(locale: object) -> None:
    m = Money.of("1", "EUR")
    with pytest.raises(InvalidInputError) as info:
        format_money(m, locale)  # type: ignore[arg-type]
    assert info.value.field == "locale"
    assert isinstance(info.value, ValueError)
    with pytest.raises(InvalidInputError) as info:
        parse_money("1", "EUR", locale)  # type: ignore[arg-type]
    assert info.value.field == "locale"


def test_unknown_locale_error_chains_babel_error() -> None:
    with pytest.raises(InvalidInputError) as info:
        format_money(Money.of("1", "EUR"), "xx_YY")
    assert info.value.__cause__ is not None


def test_format_rejects_non_money() -> None:
    with pytest.raises(InvalidAmountError) as info:
        format_money(Decimal("1"), "en_US")  # type: ignore[arg-type]
    assert info.value.field == "money"


# -- parsing ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "currency", "locale", "expected"),
    [
        ("$1,234.56", "USD", "en_US", "1234.56"),
        ("1234.56", "USD", "en_US", "1234.56"),
        (" $1,234.56 ", "USD", "en_US", "1234.56"),
        ("USD 1,234.56", "USD", "en_US", "1234.56"),
        ("1,234.56 USD", "USD", "en_US", "1234.56"),
        ("-$0.05", "USD", "en_US", "-0.05"),
        ("$-0.05", "USD", "en_US", "-0.05"),
        ("\u2212$0.05", "USD", "en_US", "-0.05"),
        ("$1,234.5", "USD", "en_US", "1234.50"),
        ("$1,234.560", "USD", "en_US", "1234.56"),
        ("1 234,56 €", "EUR", "fr_FR", "1234.56"),  # ordinary spaces for the NNBSP group
        (f"1{NBSP}234,56{NBSP}€", "EUR", "fr_FR", "1234.56"),
        ("1234,56", "EUR", "fr_FR", "1234.56"),
        ("1.234,56 €", "EUR", "de_DE", "1234.56"),
        ("1.234,56 EUR", "EUR", "de_DE", "1234.56"),
        ("-1.234 ¥", "JPY", "de_DE", "-1234"),
        ("￥1,234", "JPY", "ja_JP", "1234"),
        ("\u200f1,234.567\u00a0د.ك.\u200f", "KWD", "ar_KW", "1234.567"),
        ("€\xa00,01-", "EUR", "fy_NL", "-0.01"),  # trailing minus
        (f"-1{NBSP}234,56{NBSP}kr", "SEK", "sv_SE", "-1234.56"),
        ("\u22121 234,56 kr", "SEK", "sv_SE", "-1234.56"),  # CLDR's minus sign for sv
    ],
)
def test_parse_money_accepts(text: str, currency: str, locale: str, expected: str) -> None:
    assert parse_money(text, currency, locale) == Money.of(expected, currency)


@pytest.mark.parametrize(
    ("text", "currency", "locale"),
    [
        pytest.param("", "USD", "en_US", id="empty"),
        pytest.param("   ", "USD", "en_US", id="blank"),
        pytest.param("$", "USD", "en_US", id="symbol-only"),
        pytest.param("-", "USD", "en_US", id="sign-only"),
        pytest.param("1e3", "USD", "en_US", id="exponent"),
        pytest.param("NaN", "USD", "en_US", id="nan"),
        pytest.param("Infinity", "USD", "en_US", id="infinity"),
        pytest.param("1_000", "USD", "en_US", id="underscore"),
        pytest.param("٣٤", "USD", "en_US", id="arabic-indic-digits"),
        pytest.param("１２", "USD", "en_US", id="fullwidth-digits"),
        pytest.param("0x10", "USD", "en_US", id="hex"),
        pytest.param("+1.00", "USD", "en_US", id="plus"),
        pytest.param("(1.00)", "USD", "en_US", id="accounting-parentheses"),
        pytest.param("--1", "USD", "en_US", id="double-minus"),
        pytest.param("-$-1", "USD", "en_US", id="two-signs"),
        pytest.param("$$1", "USD", "en_US", id="two-symbols"),
        pytest.param("$1$", "USD", "en_US", id="symbol-both-ends"),
        pytest.param("€1", "USD", "en_US", id="other-currency-symbol"),
        pytest.param("1.00 EUR", "USD", "en_US", id="other-currency-code"),
        pytest.param("1.", "USD", "en_US", id="trailing-dot"),
        pytest.param(".5", "USD", "en_US", id="leading-dot"),
        pytest.param("1,23", "USD", "en_US", id="bad-grouping"),
        pytest.param("1,2345.00", "USD", "en_US", id="bad-grouping-2"),
        pytest.param("1.234,56", "USD", "en_US", id="german-in-en"),
        pytest.param("1 000", "USD", "en_US", id="space-group-in-en"),
        pytest.param("1.2.3", "USD", "en_US", id="two-decimal-points"),
        pytest.param("1,234.56", "EUR", "de_DE", id="english-in-de"),
        pytest.param("1 23,56 €", "EUR", "fr_FR", id="bad-grouping-fr"),
        pytest.param("1.234", "USD", "en_US", id="too-many-decimals"),
        pytest.param("1.5", "JPY", "en_US", id="decimals-for-jpy"),
        pytest.param("1.2345", "KWD", "en_US", id="too-many-for-kwd"),
        pytest.param("-0.00", "USD", "en_US", id="negative-zero"),
        pytest.param("92,233,720,368,547,758.08", "USD", "en_US", id="2**63-cents"),
        pytest.param("1" + "0" * 5000, "USD", "en_US", id="5000-digits"),
    ],
)
def test_parse_money_rejects(text: str, currency: str, locale: str) -> None:
    with pytest.raises(InvalidAmountError) as info:
        parse_money(text, currency, locale)
    assert info.value.field == "amount"


def test_parse_money_rejects_non_string_text() -> None:
    with pytest.raises(InvalidAmountError) as info:
        parse_money(Decimal("1"), "USD")  # type: ignore[arg-type]
    assert info.value.field == "amount"


@pytest.mark.parametrize("currency", ["usd", "ABC", "", None])
def test_parse_money_rejects_unknown_currency(currency: object) -> None:
    with pytest.raises(InvalidCurrencyError):
        parse_money("1.00", currency)  # type: ignore[arg-type]


def test_parse_money_boundary() -> None:
    top = Money.from_minor_units(MAX_MINOR_UNITS, "USD")
    assert parse_money("$92,233,720,368,547,758.07", "USD") == top
    assert parse_money("-$92,233,720,368,547,758.07", "USD") == -top


# -- round trip ------------------------------------------------------------------------------


@pytest.mark.parametrize("locale", ROUND_TRIP_LOCALES)
@given(m=money())
def test_round_trip(locale: str, m: Money) -> None:
    text = format_money(m, locale)
    assert parse_money(text, m.currency, locale) == m


@given(m=money(), locale=st.sampled_from(ROUND_TRIP_LOCALES))
def test_round_trip_with_ordinary_spaces(m: Money, locale: str) -> None:
    text = format_money(m, locale).replace(NBSP, " ").replace(NNBSP, " ")
    assert parse_money(text, m.currency, locale) == m


def test_guaranteed_locales_cover_the_brief() -> None:
    assert {"en_US", "en_GB", "fr_FR", "de_DE", "de_CH", "ja_JP", "ar_KW"} <= set(
        ROUND_TRIP_LOCALES
    )


# -- independence from the process -----------------------------------------------------------


def test_process_locale_and_decimal_context_change_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    m = Money.of("1234.56", "EUR")
    before = (str(m), format_money(m), format_money(m, "fr_FR"))
    assert before == ("1234.56 EUR", "€1,234.56", f"1{NNBSP}234,56{NBSP}€")
    for name in ("LANG", "LC_ALL", "LC_MONETARY", "LC_NUMERIC", "LANGUAGE"):
        monkeypatch.setenv(name, "de_DE.UTF-8")
    try:  # also switch the C library's locale when the system has de_DE
        saved = process_locale.setlocale(process_locale.LC_ALL)
        process_locale.setlocale(process_locale.LC_ALL, "de_DE.UTF-8")
    except process_locale.Error:
        saved = None
    try:
        with decimal.localcontext() as ctx:
            ctx.prec = 4
            ctx.traps[decimal.Inexact] = True
            ctx.traps[decimal.Rounded] = True
            after = (str(m), format_money(m), format_money(m, "fr_FR"))
            assert parse_money("€1,234.56", "EUR") == m
    finally:
        if saved is not None:
            process_locale.setlocale(process_locale.LC_ALL, saved)
    assert after == before
