"""Tests for :mod:`prepaid_wallet.formatting`: babel display and strict parsing.

What the text looks like in a locale (separators, symbols, spacing, where the sign goes) is
CLDR data that babel ships and updates; the library's contract is "formatted by babel for this
locale". So expected texts are built from babel's own data (``get_group_symbol``,
``get_decimal_symbol``, ``get_currency_symbol``...) and the tests assert what the library itself
owns: the digits, the currency's decimals, the sign, the symbol, never rounding, the round trip.
Exact strings are kept only where the library writes them (``str(money)``, a caller's pattern).
"""

from __future__ import annotations

import decimal
import locale as process_locale
from decimal import Decimal

import pytest
from babel import numbers as babel_numbers
from hypothesis import given
from hypothesis import strategies as st

from prepaid_wallet.errors import InvalidAmountError, InvalidCurrencyError, InvalidInputError
from prepaid_wallet.formatting import ROUND_TRIP_LOCALES, format_money, parse_money
from prepaid_wallet.money import MAX_MINOR_UNITS, Money
from tests.strategies import money

NBSP = "\u00a0"
NNBSP = "\u202f"  # narrow no-break space
SPACES = " \u00a0\u202f"
BIDI_MARKS = str.maketrans("", "", "\u200e\u200f\u061c")


def cldr(template: str, currency: str, locale: str) -> str:
    """``template`` with babel's data for ``locale`` filled in: ``{g}`` the group separator,
    ``{d}`` the decimal separator, ``{sym}`` the symbol of ``currency``, ``{minus}`` the minus
    sign, ``{eur}`` the symbol of the euro."""
    return template.format(
        g=babel_numbers.get_group_symbol(locale),
        d=babel_numbers.get_decimal_symbol(locale),
        sym=babel_numbers.get_currency_symbol(currency, locale),
        minus=babel_numbers.get_minus_sign_symbol(locale),
        eur=babel_numbers.get_currency_symbol("EUR", locale),
    )


def babel_text(m: Money, locale: str) -> str:
    """What babel itself writes for ``m`` with the locale's standard currency pattern."""
    return babel_numbers.format_currency(
        m.amount, m.currency, locale=locale, decimal_quantization=False
    )


@pytest.mark.parametrize(
    ("amount", "currency", "locale", "number"),
    [
        ("50.00", "EUR", "fr_FR", "50{d}00"),
        ("1234.56", "EUR", "fr_FR", "1{g}234{d}56"),
        ("-1234.56", "EUR", "fr_FR", "1{g}234{d}56"),
        ("1234.56", "USD", "en_US", "1{g}234{d}56"),
        ("-1234.56", "USD", "en_US", "1{g}234{d}56"),
        ("0", "USD", "en_US", "0{d}00"),
        ("1234", "JPY", "ja_JP", "1{g}234"),  # no decimals for JPY
        ("1234", "JPY", "en_US", "1{g}234"),
        ("1234567.89", "EUR", "de_DE", "1{g}234{g}567{d}89"),
        ("1.005", "KWD", "en_US", "1{d}005"),  # three decimals for KWD
        ("1.005", "KWD", "de_DE", "1{d}005"),
        ("-1234.50", "CHF", "de_CH", "1{g}234{d}50"),
        ("9.99", "GBP", "en_GB", "9{d}99"),
        ("9.99", "USD", "en_GB", "9{d}99"),
    ],
)
def test_format_money(amount: str, currency: str, locale: str, number: str) -> None:
    m = Money.of(amount, currency)
    text = format_money(m, locale)
    assert text == format_money(m, locale=locale) == babel_text(m, locale)
    # The parts the library owns: the digits with the currency's decimals, in the locale's
    # separators, once; the locale's symbol for the currency; a minus sign exactly when negative;
    # nothing else but spaces.
    digits = cldr(number, currency, locale)
    symbol = babel_numbers.get_currency_symbol(currency, locale)
    plain = text.translate(BIDI_MARKS)
    assert plain.count(digits) == 1, (plain, digits)
    rest = plain.replace(digits, " ", 1)
    assert symbol in rest, (plain, symbol)
    rest = rest.replace(symbol, " ", 1).strip(SPACES)
    minus = babel_numbers.get_minus_sign_symbol(locale).translate(BIDI_MARKS)
    assert rest == (minus if m.is_negative() else ""), plain
    assert parse_money(text, currency, locale) == m


def test_default_locale_is_en_us() -> None:
    m = Money.of("1234.56", "USD")
    assert format_money(m) == format_money(m, "en_US") != format_money(m, "de_DE")
    assert parse_money(format_money(m), "USD") == m
    assert parse_money(cldr("{sym}1{g}234{d}56", "USD", "en_US"), "USD") == m


def test_custom_pattern_and_currency_digits() -> None:
    # A pattern the caller writes is used as written, with the locale's separators and symbols.
    m = Money.of("1234.5", "EUR")
    assert format_money(m, "en_US", format="#,##0.00 ¤¤") == cldr("1{g}234{d}50 EUR", "EUR",
                                                                  "en_US")
    assert format_money(m, "de_DE", format="#,##0.00 ¤¤") == cldr("1{g}234{d}50 EUR", "EUR",
                                                                  "de_DE")
    # currency_digits=False uses the pattern's decimals but never rounds digits away.
    assert format_money(
        Money.of("5", "JPY"), "en_US", format="¤#,##0.00", currency_digits=False
    ) == cldr("{sym}5{d}00", "JPY", "en_US")
    assert format_money(Money.of("5", "JPY"), "en_US", format="¤#,##0.00") == cldr(
        "{sym}5", "JPY", "en_US"
    )
    assert format_money(
        Money.of("1.005", "KWD"), "en_US", format="#,##0.00 ¤", currency_digits=False
    ) == cldr("1{d}005 {sym}", "KWD", "en_US")
    assert format_money(Money.of("1.50", "EUR"), "en_US", format="#,##0 ¤") == cldr(
        "1{d}50 {sym}", "EUR", "en_US"
    )
    # Without a pattern, currency_digits=False shows the standard pattern's decimals.
    assert format_money(Money.of("5", "JPY"), "en_US", currency_digits=False) == (
        babel_numbers.format_currency(Decimal(5), "JPY", locale="en_US", currency_digits=False)
    )


@pytest.mark.parametrize("pattern", ["", "abc", "¤¤¤", "'"])
def test_pattern_without_digits_is_rejected(pattern: str) -> None:
    with pytest.raises(InvalidInputError) as info:
        format_money(Money.of("1", "EUR"), "en_US", format=pattern)
    assert info.value.field == "format"


@pytest.mark.parametrize(
    "locale", ["xx_YY", "zz", "", "!!", "123", "de-", "-DE", "de_DE-x", None, 42]
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


@pytest.mark.parametrize(
    "locale", ["C", "POSIX", "c", "posix", "C.UTF-8", "C.utf8", "POSIX.UTF-8", "C@euro"]
)
def test_process_locale_names_are_refused(locale: str) -> None:
    # Some babel versions map C/POSIX to en_US_POSIX, others know neither: the library refuses
    # them itself, with the same error whatever babel is installed.
    for call in (
        lambda: format_money(Money.of("1", "EUR"), locale),
        lambda: parse_money("1", "EUR", locale),
    ):
        with pytest.raises(InvalidInputError) as info:
            call()
        assert info.value.field == "locale"
        assert info.value.value == locale
        assert "process" in info.value.rule
        assert "'en_US'" in info.value.rule
        assert info.value.__cause__ is None  # refused before babel is asked


@pytest.mark.parametrize(
    ("bcp47", "babel_id"),
    [
        ("de-DE", "de_DE"),
        ("en-US", "en_US"),
        ("de-CH", "de_CH"),
        ("fr-FR", "fr_FR"),
        ("pt-BR", "pt_BR"),
        ("zh-Hant-TW", "zh_Hant_TW"),
        ("de-de", "de_DE"),
        ("de", "de"),
    ],
)
def test_bcp47_hyphen_names_the_same_locale(bcp47: str, babel_id: str) -> None:
    m = Money.of("-1234567.89", "EUR")
    text = format_money(m, bcp47)
    assert text == format_money(m, babel_id) == babel_text(m, babel_id)
    assert parse_money(text, "EUR", bcp47) == m
    # Not a fallback to the default locale: de-DE formats as German does.
    assert format_money(m, "de-DE") != format_money(m, "en_US")


def test_unknown_locale_error_chains_babel_error() -> None:
    with pytest.raises(InvalidInputError) as info:
        format_money(Money.of("1", "EUR"), "xx_YY")
    assert info.value.__cause__ is not None


def test_format_rejects_non_money() -> None:
    with pytest.raises(InvalidAmountError) as info:
        format_money(Decimal("1"), "en_US")  # type: ignore[arg-type]
    assert info.value.field == "money"


# -- parsing ---------------------------------------------------------------------------------
# Texts are templates filled from babel's data for the locale (see ``cldr``): ``{g}`` and ``{d}``
# are its separators, ``{sym}`` the currency's symbol there, ``{minus}`` its minus sign.


@pytest.mark.parametrize(
    ("text", "currency", "locale", "expected"),
    [
        ("{sym}1{g}234{d}56", "USD", "en_US", "1234.56"),
        ("1234{d}56", "USD", "en_US", "1234.56"),
        (" {sym}1{g}234{d}56 ", "USD", "en_US", "1234.56"),
        ("USD 1{g}234{d}56", "USD", "en_US", "1234.56"),  # the ISO code for the symbol
        ("1{g}234{d}56 USD", "USD", "en_US", "1234.56"),
        ("-{sym}0{d}05", "USD", "en_US", "-0.05"),
        ("{sym}-0{d}05", "USD", "en_US", "-0.05"),
        ("\u2212{sym}0{d}05", "USD", "en_US", "-0.05"),  # U+2212 is a minus sign everywhere
        ("{sym}1{g}234{d}5", "USD", "en_US", "1234.50"),
        ("{sym}1{g}234{d}560", "USD", "en_US", "1234.56"),
        ("1234{d}56", "EUR", "fr_FR", "1234.56"),
        ("1{g}234{d}56 {sym}", "EUR", "de_DE", "1234.56"),
        ("1{g}234{d}56 EUR", "EUR", "de_DE", "1234.56"),
        ("-1{g}234 {sym}", "JPY", "de_DE", "-1234"),
        ("{sym}1{g}234", "JPY", "ja_JP", "1234"),
        ("\u200f1{g}234{d}567\u00a0{sym}\u200f", "KWD", "ar_KW", "1234.567"),  # bidi marks
        ("{sym}\u00a00{d}01-", "EUR", "fy_NL", "-0.01"),  # a trailing minus
        ("-1{g}234{d}56\u00a0{sym}", "SEK", "sv_SE", "-1234.56"),
        ("{minus}1{g}234{d}56 {sym}", "SEK", "sv_SE", "-1234.56"),  # the locale's minus sign
    ],
)
def test_parse_money_accepts(text: str, currency: str, locale: str, expected: str) -> None:
    assert parse_money(cldr(text, currency, locale), currency, locale) == Money.of(
        expected, currency
    )


SPACE_GROUPED = [loc for loc in ROUND_TRIP_LOCALES if babel_numbers.get_group_symbol(loc) in SPACES]


def test_some_guaranteed_locale_groups_with_a_space() -> None:
    assert SPACE_GROUPED  # the next test has locales to run in


@pytest.mark.parametrize("locale", SPACE_GROUPED)
@pytest.mark.parametrize("space", [" ", NBSP, NNBSP])
def test_any_space_stands_for_a_space_like_group_separator(locale: str, space: str) -> None:
    text = cldr(f"-1{space}234{space}567{{d}}89{space}{{sym}}", "EUR", locale)
    assert parse_money(text, "EUR", locale) == Money.of("-1234567.89", "EUR")


@pytest.mark.parametrize(
    ("text", "currency", "locale"),
    [
        pytest.param("", "USD", "en_US", id="empty"),
        pytest.param("   ", "USD", "en_US", id="blank"),
        pytest.param("{sym}", "USD", "en_US", id="symbol-only"),
        pytest.param("-", "USD", "en_US", id="sign-only"),
        pytest.param("1e3", "USD", "en_US", id="exponent"),
        pytest.param("NaN", "USD", "en_US", id="nan"),
        pytest.param("Infinity", "USD", "en_US", id="infinity"),
        pytest.param("1_000", "USD", "en_US", id="underscore"),
        pytest.param("٣٤", "USD", "en_US", id="arabic-indic-digits"),
        pytest.param("１２", "USD", "en_US", id="fullwidth-digits"),
        pytest.param("0x10", "USD", "en_US", id="hex"),
        pytest.param("+1{d}00", "USD", "en_US", id="plus"),
        pytest.param("(1{d}00)", "USD", "en_US", id="accounting-parentheses"),
        pytest.param("--1", "USD", "en_US", id="double-minus"),
        pytest.param("-{sym}-1", "USD", "en_US", id="two-signs"),
        pytest.param("{sym}{sym}1", "USD", "en_US", id="two-symbols"),
        pytest.param("{sym}1{sym}", "USD", "en_US", id="symbol-both-ends"),
        pytest.param("{eur}1", "USD", "en_US", id="other-currency-symbol"),
        pytest.param("1{d}00 EUR", "USD", "en_US", id="other-currency-code"),
        pytest.param("1{d}", "USD", "en_US", id="trailing-decimal-separator"),
        pytest.param("{d}5", "USD", "en_US", id="leading-decimal-separator"),
        pytest.param("1{g}23", "USD", "en_US", id="bad-grouping"),
        pytest.param("1{g}2345{d}00", "USD", "en_US", id="bad-grouping-2"),
        pytest.param("1{d}234{g}56", "USD", "en_US", id="separators-swapped-en"),
        pytest.param("1{d}234{g}56", "EUR", "de_DE", id="separators-swapped-de"),
        pytest.param("1 000", "USD", "en_US", id="space-group-in-en"),
        pytest.param("1{d}2{d}3", "USD", "en_US", id="two-decimal-separators"),
        pytest.param("1{g}23{d}56 {sym}", "EUR", "fr_FR", id="bad-grouping-fr"),
        pytest.param("1{d}234", "USD", "en_US", id="too-many-decimals"),
        pytest.param("1{d}5", "JPY", "en_US", id="decimals-for-jpy"),
        pytest.param("1{d}2345", "KWD", "en_US", id="too-many-for-kwd"),
        pytest.param("-0{d}00", "USD", "en_US", id="negative-zero"),
        pytest.param(
            "92{g}233{g}720{g}368{g}547{g}758{d}08", "USD", "en_US", id="2**63-cents"
        ),
        pytest.param("1" + "0" * 5000, "USD", "en_US", id="5000-digits"),
    ],
)
def test_parse_money_rejects(text: str, currency: str, locale: str) -> None:
    with pytest.raises(InvalidAmountError) as info:
        parse_money(cldr(text, currency, locale), currency, locale)
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
    text = cldr("{sym}92{g}233{g}720{g}368{g}547{g}758{d}07", "USD", "en_US")
    assert parse_money(text, "USD") == top
    assert parse_money("-" + text, "USD") == -top


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
    assert before == ("1234.56 EUR", babel_text(m, "en_US"), babel_text(m, "fr_FR"))
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
            assert parse_money(before[1], "EUR") == m
    finally:
        if saved is not None:
            process_locale.setlocale(process_locale.LC_ALL, saved)
    assert after == before
