"""Locale-aware display and parsing of :class:`~prepaid_wallet.money.Money`, with babel.

This is the one module that formats or parses amounts for people. Everything else uses the
locale-free ``str(money)`` (``"50.00 EUR"``) and :meth:`Money.of <prepaid_wallet.money.Money.of>`.

* :func:`format_money` renders an amount with the CLDR currency pattern of an explicit locale:
  ``format_money(Money.of("50.00", "EUR"), "fr_FR")`` is ``"50,00\\u00a0€"``. Note that CLDR
  data puts *no-break spaces* into many results: U+00A0 between amount and symbol, U+202F
  (narrow no-break space) as the French group separator, and bidi marks (U+200E/U+200F) in
  Arabic and Hebrew locales. Compare with ``"\\u00a0"``, not ``" "``.
* :func:`parse_money` reads such text back, strictly, and builds the amount through
  :meth:`Money.of`, so the currency's precision and the range rules still apply.

Neither function ever reads the process locale (``LANG``, ``LC_ALL``, ``LC_MONETARY``...): the
locale is always an argument, ``"en_US"`` by default, and an empty one is rejected rather than
letting babel fall back to the environment. Neither depends on the thread's ``decimal``
context either.

Locale identifiers are babel/CLDR ones, with ``_`` (``"de_DE"``, ``"zh_Hant_TW"``) or with the
BCP 47 hyphen (``"de-DE"``, ``"zh-Hant-TW"``), which names the same locale. ``"C"`` and
``"POSIX"``, in any case and with or without an encoding or modifier (``"C.UTF-8"``,
``"posix"``), are refused with ``InvalidInputError("locale", ...)`` whatever babel version is
installed: they name the process's default locale, which this module never formats for (some
babel versions map them to ``en_US_POSIX``, others know neither). Name the locale instead, e.g.
``"en_US"``. An empty, non-string or unknown identifier is refused the same way.

Round trip: ``parse_money(format_money(m, loc), m.currency, loc) == m`` holds for every amount
and currency with the default pattern in the locales listed in :data:`ROUND_TRIP_LOCALES`
(the test suite checks each of them).
"""

from __future__ import annotations

import decimal
import re
from decimal import Decimal
from typing import Final

from babel import Locale, UnknownLocaleError
from babel import numbers as _babel_numbers

from prepaid_wallet.errors import InvalidAmountError, InvalidInputError
from prepaid_wallet.money import Money, currency_exponent

__all__ = ["ROUND_TRIP_LOCALES", "format_money", "parse_money"]

#: Locales in which ``parse_money(format_money(m, loc), m.currency, loc) == m`` is guaranteed
#: (and tested) for every currency and amount, with the default pattern.
ROUND_TRIP_LOCALES: Final = (
    "en_US",
    "en_GB",
    "en_IN",
    "fr_FR",
    "fr_CH",
    "de_DE",
    "de_AT",
    "de_CH",
    "es_ES",
    "it_IT",
    "nl_NL",
    "pt_BR",
    "sv_SE",
    "nb_NO",
    "fi_FI",
    "da_DK",
    "pl_PL",
    "ru_RU",
    "tr_TR",
    "ja_JP",
    "zh_CN",
    "ko_KR",
    "hi_IN",
    "ar_KW",
    "ar_EG",
    "he_IL",
)

# Babel does its arithmetic in the current decimal context; give it one with room for every
# amount (at most 19 digits) so a host that lowered the precision or trapped Inexact cannot
# change what is displayed or parsed.
_CONTEXT: Final = decimal.Context(prec=60, rounding=decimal.ROUND_HALF_EVEN, traps=[])

# Spaces CLDR patterns and users put around and inside amounts.
_SPACES: Final = " \t\u00a0\u202f\u2009\u2007"
# Bidirectional marks in Arabic, Persian and Hebrew patterns: formatting only, never meaning.
_BIDI_MARKS: Final = re.compile("[\u200e\u200f\u061c]")
# Babel always writes ASCII '-'; CLDR's own minus signs are accepted too.
_MINUS_SIGNS: Final = ("-", "\u2212")
# The C library's names for its default locale: "C", "POSIX", "C.UTF-8", "POSIX@euro"...
_PROCESS_LOCALE: Final = re.compile(r"(?i)(?:c|posix)(?:[.@].*)?", re.DOTALL)


def _locale(locale: object) -> Locale:
    """``locale`` as a babel ``Locale``; ``InvalidInputError("locale", ...)`` if it is not one.

    Accepts babel's ``de_DE`` and the BCP 47 ``de-DE``; refuses ``C``/``POSIX`` (see the module
    docstring) before babel sees them, so the answer does not depend on babel's version.
    """
    if not isinstance(locale, str) or not locale:
        # An empty value would make babel read the process locale: refuse it.
        raise InvalidInputError(
            "locale", "must be a non-empty locale identifier such as 'en_US'", locale
        )
    if _PROCESS_LOCALE.fullmatch(locale):
        raise InvalidInputError(
            "locale",
            "must name a locale such as 'en_US': 'C' and 'POSIX' name the process's default "
            "locale, which is never used",
            locale,
        )
    try:
        return Locale.parse(locale, sep="-" if "-" in locale and "_" not in locale else "_")
    except (UnknownLocaleError, ValueError, TypeError) as exc:
        raise InvalidInputError(
            "locale", "must be a locale identifier babel knows, such as 'en_US'", locale
        ) from exc


def format_money(
    money: Money,
    locale: str = "en_US",
    *,
    format: str | None = None,
    currency_digits: bool = True,
) -> str:
    """Format ``money`` for display in ``locale`` (a babel/CLDR identifier such as ``"fr_FR"``,
    or its BCP 47 spelling ``"fr-FR"``).

    Uses ``babel.numbers.format_currency`` with the locale's standard currency pattern, or
    ``format`` (a CLDR number pattern with ``¤`` for the symbol, ``¤¤`` for the ISO code).
    ``currency_digits=True`` shows the currency's own number of decimals (EUR 2, JPY 0,
    KWD 3); with ``False`` the pattern's decimals are used, but digits are **never rounded
    away**: an amount with more decimals than the pattern shows all of them.

    >>> format_money(Money.of("1234.56", "USD"))
    '$1,234.56'
    >>> format_money(Money.of("50.00", "EUR"), "fr_FR")  # U+00A0 before the symbol
    '50,00\\xa0€'

    The result may contain no-break spaces (U+00A0, U+202F) and bidi marks, as CLDR says.
    The process locale is never consulted. Raises ``InvalidInputError`` with ``field`` set to
    ``"locale"`` for an empty or unknown locale and for ``"C"``/``"POSIX"`` in any spelling
    (``"C.UTF-8"``...: they name the process locale; pass e.g. ``"en_US"``), ``"format"`` for
    a pattern without a digit placeholder or that babel cannot parse, and
    ``InvalidAmountError("money")`` when ``money`` is not a :class:`Money`.
    """
    if not isinstance(money, Money):
        raise InvalidAmountError("money", "must be a Money", money)
    babel_locale = _locale(locale)
    if format is not None and (not isinstance(format, str) or not re.search("[0#]", format)):
        raise InvalidInputError(
            "format", "must be a CLDR number pattern with a 0 or # placeholder", format
        )
    try:
        with decimal.localcontext(_CONTEXT):
            return _babel_numbers.format_currency(
                money.amount,
                money.currency,
                format=format,
                locale=babel_locale,
                currency_digits=currency_digits,
                decimal_quantization=False,
            )
    except ValueError as exc:  # a malformed pattern (babel raises ValueError subclasses)
        raise InvalidInputError("format", "must be a valid CLDR number pattern", format) from exc


def parse_money(text: str, currency: str, locale: str = "en_US") -> Money:
    """Parse ``text`` as an amount of ``currency`` written the way ``locale`` writes it.

    ``locale`` is a babel/CLDR identifier (``"de_DE"``) or its BCP 47 spelling (``"de-DE"``).

    Accepts what :func:`format_money` produces with the default pattern, and the same with
    ordinary spaces: an optional minus sign (``-`` or U+2212) and an optional currency symbol
    (the locale's symbol for ``currency`` or its ISO code) before or after the number,
    surrounding spaces including no-break spaces, and bidi marks. The number itself must use
    ASCII digits and the locale's own decimal and group separators, and the groups must be
    where the locale puts them (``babel.numbers.parse_decimal(..., strict=True)``): in en_US
    ``"$1,234.56"`` and ``"1234.56"`` parse, ``"1.234,56"`` and ``"12,34"`` do not. If the
    group separator is a kind of space, any space may stand in for it.

    The value then goes through :meth:`Money.of`, so it is never rounded: more decimals than
    the currency has, negative zero, or more than ``2**63 - 1`` minor units are refused.

    >>> parse_money("1.234,50\\xa0€", "EUR", "de_DE")
    Money.of('1234.50', 'EUR')

    Raises ``InvalidAmountError("amount", ...)`` for malformed text or an amount the currency
    cannot hold, ``InvalidCurrencyError`` for an unknown currency code and
    ``InvalidInputError("locale", ...)`` for an empty or unknown locale and for ``"C"`` or
    ``"POSIX"`` (in any spelling, such as ``"C.UTF-8"``: they name the process locale; pass
    e.g. ``"en_US"``). The process locale is never consulted.
    """
    currency_exponent(currency)
    babel_locale = _locale(locale)
    if not isinstance(text, str):
        raise InvalidAmountError("amount", "must be a string", text)
    number, negative = _strip_decoration(text, currency, babel_locale)
    value = _parse_number(number, text, babel_locale)
    if negative:
        value = value.copy_negate()  # context-free, unlike unary minus
    return Money.of(value, currency, field="amount")


def _malformed(text: str) -> InvalidAmountError:
    return InvalidAmountError(
        "amount", "must be an amount written as the locale formats it, e.g. '$1,234.56'", text
    )


def _strip_decoration(text: str, currency: str, locale: Locale) -> tuple[str, bool]:
    """Remove the sign, the currency symbol, spaces and bidi marks around the number.

    Returns the bare number text and whether a minus sign was found.
    """
    symbols = {currency}
    symbol = _BIDI_MARKS.sub("", _babel_numbers.get_currency_symbol(currency, locale)).strip(
        _SPACES
    )
    if symbol:
        symbols.add(symbol)
    by_length = sorted(symbols, key=len, reverse=True)  # "US$" before "$"
    minus_signs = set(_MINUS_SIGNS)
    locale_minus = _BIDI_MARKS.sub("", _babel_numbers.get_minus_sign_symbol(locale))
    if locale_minus:
        minus_signs.add(locale_minus)

    rest = _BIDI_MARKS.sub("", text).strip(_SPACES)
    negative = False
    has_symbol = False
    # At most one sign and one symbol. Before the number they come in either order: "-$1",
    # "€ -1", "CHF-1".
    for _ in range(2):
        sign = next((m for m in minus_signs if rest.startswith(m)), None)
        if sign is not None and not negative:
            negative = True
            rest = rest[len(sign) :].lstrip(_SPACES)
            continue
        prefix = next((s for s in by_length if rest.startswith(s)), None)
        if prefix is not None and not has_symbol:
            has_symbol = True
            rest = rest[len(prefix) :].lstrip(_SPACES)
            continue
        break
    # The same after the number, for locales that write "1,00 €" or "€ 0,01-" (fy).
    for _ in range(2):
        sign = next((m for m in minus_signs if rest.endswith(m)), None)
        if sign is not None and not negative:
            negative = True
            rest = rest[: -len(sign)].rstrip(_SPACES)
            continue
        suffix = next((s for s in by_length if rest.endswith(s)), None)
        if suffix is not None and not has_symbol:
            has_symbol = True
            rest = rest[: -len(suffix)].rstrip(_SPACES)
            continue
        break
    return rest, negative


def _parse_number(number: str, text: str, locale: Locale) -> Decimal:
    """Strictly parse the bare number (ASCII digits and the locale's separators)."""
    decimal_symbol = _babel_numbers.get_decimal_symbol(locale)
    group_symbol = _babel_numbers.get_group_symbol(locale)
    if group_symbol and group_symbol in _SPACES:
        # Any kind of space may stand for a space-like group separator ("1 234,56").
        number = re.sub(f"[{re.escape(_SPACES)}]", group_symbol, number)
    allowed = set("0123456789") | {decimal_symbol, group_symbol}
    # Decimal() would also take exponents, "NaN", underscores and non-ASCII digits: refuse
    # anything but digits and separators, and demand a digit at both ends.
    if (
        not number
        or not set(number) <= allowed
        or not number[0].isdigit()
        or not number[-1].isdigit()
    ):
        raise _malformed(text)
    try:
        with decimal.localcontext(_CONTEXT):
            return _babel_numbers.parse_decimal(number, locale=locale, strict=True)
    except _babel_numbers.NumberFormatError as exc:
        raise _malformed(text) from exc
