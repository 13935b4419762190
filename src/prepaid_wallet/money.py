"""Money: an exact amount in one ISO 4217 currency.

:class:`Money` holds an integer number of *minor units* (cents for EUR, yen for JPY, fils for
KWD) and a currency code. The currency's exponent comes from babel's CLDR data (EUR 2, JPY 0,
KWD 3). :meth:`Money.of` is the one gateway for turning outside values into money; it rejects
rather than rounds:

* floats and bools (a float has already lost the amount the user meant);
* NaN, sNaN, infinities and negative zero;
* more decimal places than the currency has (``Money.of("1.234", "EUR")``);
* more than ``2**63 - 1`` minor units either way (the range every backend stores);
* unknown or lower-case currency codes.

Arithmetic never rounds silently. ``+`` and ``-`` need one currency
(:class:`~prepaid_wallet.errors.CurrencyMismatchError` otherwise); ``*`` and ``/`` by an ``int``
or ``Decimal`` give an exact result or raise :class:`~prepaid_wallet.errors.InexactMoneyError`;
:meth:`Money.multiply` and :meth:`Money.divide` take an explicit rounding mode for the cases
where precision must be lost. :meth:`Money.allocate` splits an amount by ratios so that the
parts always add up to the whole.

``str(Money.of("50", "EUR"))`` is ``"50.00 EUR"`` whatever the process locale; use
:func:`prepaid_wallet.formatting.format_money` for locale-aware display.
"""

from __future__ import annotations

import decimal
import math
import re
from collections.abc import Callable, Iterable, Sequence
from decimal import Decimal
from functools import total_ordering
from typing import Any, Final, TypeVar

import attrs
from babel import numbers as _babel_numbers

from prepaid_wallet.errors import (
    CurrencyMismatchError,
    InexactMoneyError,
    InvalidAmountError,
    InvalidCurrencyError,
)

__all__ = [
    "MAX_MINOR_UNITS",
    "NON_MONEY_CODES",
    "ROUNDING_MODES",
    "Currency",
    "Money",
    "amount_text",
    "currency_exponent",
    "plain_decimal",
]

#: The largest absolute amount, in minor units, that any backend stores (a signed 64-bit integer).
MAX_MINOR_UNITS: Final = 2**63 - 1

#: The rounding modes :meth:`Money.multiply` and :meth:`Money.divide` accept (``decimal`` names).
ROUNDING_MODES: Final = frozenset(
    {
        decimal.ROUND_CEILING,
        decimal.ROUND_DOWN,
        decimal.ROUND_FLOOR,
        decimal.ROUND_HALF_DOWN,
        decimal.ROUND_HALF_EVEN,
        decimal.ROUND_HALF_UP,
        decimal.ROUND_UP,
    }
)

_CODE = re.compile(r"[A-Z]{3}")
_DECIMAL_TEXT = re.compile(r"-?[0-9]+(?:\.[0-9]+)?")
_EXPONENTS: dict[str, int] = {}
#: ISO 4217 codes that are not money a wallet can hold: "no currency", the testing code, precious
#: metals and bond-market units (ISO gives them no minor unit).
NON_MONEY_CODES: Final = frozenset(
    {"XXX", "XTS", "XAU", "XAG", "XPD", "XPT", "XBA", "XBB", "XBC", "XBD", "XDR", "XSU", "XUA"}
)
# For the approximate value shown in an InexactMoneyError: independent of the thread's context,
# whose traps (e.g. Inexact) would otherwise replace the typed error.
_MESSAGE_CONTEXT: Final = decimal.Context(prec=28, traps=[])


def currency_exponent(code: object, field: str = "currency") -> int:
    """Return the number of decimal places of ISO 4217 ``code`` (EUR 2, JPY 0, KWD 3).

    Raises :class:`~prepaid_wallet.errors.InvalidCurrencyError` (naming ``field``) unless
    ``code`` is a three-letter upper-case code that babel knows and that is money (not one of
    :data:`NON_MONEY_CODES`: XXX, XTS, precious metals, bond-market units).
    """
    exponent = _EXPONENTS.get(code) if isinstance(code, str) else None
    if exponent is not None:
        return exponent
    if (
        not isinstance(code, str)
        or not _CODE.fullmatch(code)
        or code in NON_MONEY_CODES
        or not _babel_numbers.is_currency(code)
    ):
        raise InvalidCurrencyError(
            field, "must be a known upper-case ISO 4217 currency code", code
        )
    exponent = int(_babel_numbers.get_currency_precision(code))
    _EXPONENTS[code] = exponent
    return exponent


@attrs.frozen
class Currency:
    """An ISO 4217 currency: its code and its exponent (number of decimal places)."""

    code: str
    exponent: int

    @classmethod
    def of(cls, code: str) -> Currency:
        """The currency for ``code``; raises ``InvalidCurrencyError`` for an unknown code."""
        return cls(code, currency_exponent(code))

    def __str__(self) -> str:
        return self.code


def _check_range(minor: int, currency: str, field: str) -> int:
    if -MAX_MINOR_UNITS <= minor <= MAX_MINOR_UNITS:
        return minor
    raise InvalidAmountError(
        field, f"must be at most {MAX_MINOR_UNITS} minor units of {currency} either way", minor
    )


def _check_rounding(rounding: object) -> str:
    # Read as the plain text it holds: an object's own __eq__ and __hash__ may claim anything.
    mode = str.__str__(rounding) if isinstance(rounding, str) else None
    if mode not in ROUNDING_MODES:
        raise InvalidAmountError(
            "rounding", "must be one of the decimal module's ROUND_* modes", rounding
        )
    return mode


def plain_decimal(value: Decimal) -> Decimal:
    """``value`` as a plain ``Decimal``: itself if it is one, else (an instance of a subclass)
    the same number, read with ``Decimal``'s own ``as_tuple`` -- a subclass may override
    anything else (``is_nan``, ``is_finite``, ``__str__``, ``as_tuple``, comparisons), so
    nothing the library decides may rest on its methods. A NaN stays a NaN, an infinity an
    infinity: the caller checks what it needs."""
    if type(value) is Decimal:
        return value
    sign, digits, exponent = Decimal.as_tuple(value)
    if isinstance(exponent, int):
        return Decimal((sign, digits, exponent))
    return Decimal(Decimal.__str__(value))  # a NaN (with its payload), an sNaN or an infinity


def _to_decimal(value: object, field: str) -> Decimal:
    """The one place an outside number becomes a ``Decimal`` (for factors, ratios, amounts).
    A ``Decimal`` subclass is read as the plain ``Decimal`` it holds (:func:`plain_decimal`)."""
    if isinstance(value, (bool, float)):
        raise InvalidAmountError(
            field, f"must be a Decimal, an int or a decimal string, not {type(value).__name__}",
            value,
        )
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, Decimal):
        value = plain_decimal(value)
        if value.is_nan():
            raise InvalidAmountError(field, "must be a number (NaN is not)", value)
        if value.is_infinite():
            raise InvalidAmountError(field, "must be finite", value)
        return value
    if isinstance(value, str):
        if not value.isascii() or not _DECIMAL_TEXT.fullmatch(value):
            raise InvalidAmountError(
                field, "must be a plain decimal string such as '12.50' or '-3'", value
            )
        return Decimal(value)
    raise InvalidAmountError(
        field, f"must be a Decimal, an int or a decimal string, not {type(value).__name__}", value
    )


#: Factors, divisors and ratios are kept to this many digits and this exponent either way, so
#: exact arithmetic on them stays cheap (a factor of 1E-999999999 is not a business number).
_MAX_FACTOR_DIGITS: Final = 60


def _as_ratio(value: Decimal, field: str) -> tuple[int, int]:
    """``value`` as an exact fraction ``(numerator, denominator)`` with a positive denominator."""
    _, digits, exponent = value.as_tuple()
    assert isinstance(exponent, int)  # finite: checked by _to_decimal
    if len(digits) > _MAX_FACTOR_DIGITS or abs(exponent) > _MAX_FACTOR_DIGITS:
        raise InvalidAmountError(
            field,
            f"must have at most {_MAX_FACTOR_DIGITS} digits and an exponent within"
            f" +/-{_MAX_FACTOR_DIGITS}",
            value,
        )
    num, den = value.as_integer_ratio()
    return num, den


def _round_ratio(num: int, den: int, rounding: str | None, field: str) -> int:
    """``num / den`` (``den > 0``) as an int, rounded with a ``decimal.ROUND_*`` mode; exact
    or ``InexactMoneyError`` when ``rounding`` is None."""
    floor, rest = divmod(num, den)
    if rest == 0:
        return floor
    if rounding is None:
        raise InexactMoneyError(
            field, "the result needs rounding: use multiply()/divide() with a rounding mode",
            _MESSAGE_CONTEXT.divide(Decimal(num), Decimal(den)),
        )
    up = floor + 1  # the result lies strictly between floor and up
    twice = 2 * rest
    if rounding == decimal.ROUND_FLOOR:
        return floor
    if rounding == decimal.ROUND_CEILING:
        return up
    if rounding == decimal.ROUND_DOWN:  # towards zero
        return floor if floor >= 0 else up
    if rounding == decimal.ROUND_UP:  # away from zero
        return up if floor >= 0 else floor
    if twice != den:
        return up if twice > den else floor
    # exactly half way
    if rounding == decimal.ROUND_HALF_UP:
        return up if floor >= 0 else floor
    if rounding == decimal.ROUND_HALF_DOWN:
        return floor if floor >= 0 else up
    return floor if floor % 2 == 0 else up  # ROUND_HALF_EVEN


def _decimal_to_minor(value: Decimal, currency: str, exponent: int, field: str) -> int:
    """Exact conversion of a finite ``Decimal`` to minor units, or a typed error."""
    if value.is_zero() and value.is_signed():
        raise InvalidAmountError(field, "must not be negative zero", value)
    sign, digits, exp = value.as_tuple()
    assert isinstance(exp, int)  # finite: checked by _to_decimal
    # Count digits without building an int from them: int() refuses more than 4300 digits
    # (a bare ValueError) and 10**-shift never finishes for an exponent like -999999999.
    # Trailing zeros are dropped ("1.500" is 15E-1); Decimal keeps no leading zeros.
    significant = len(digits)
    while significant and digits[significant - 1] == 0:
        significant -= 1
    if significant == 0:
        return 0
    shift = exp + (len(digits) - significant) + exponent  # power of ten for the digit string
    # The number of integer digits in minor units; more than 19 cannot fit in 63 bits.
    if significant + shift > 19:
        raise InvalidAmountError(
            field, f"must be at most {MAX_MINOR_UNITS} minor units of {currency} either way", value
        )
    if shift < 0:  # a non-zero last digit below the minor unit
        raise InvalidAmountError(
            field,
            f"must have at most {exponent} decimal places for {currency}"
            " (amounts are never rounded)",
            value,
        )
    minor = int("".join(map(str, digits[:significant]))) * 10**shift
    return _check_range(-minor if sign else minor, currency, field)


@total_ordering
@attrs.frozen(eq=True, order=False, repr=False)
class Money:
    """An exact amount of one currency, held as integer minor units.

    Build it with :meth:`of` (from a ``Decimal``, ``int`` or decimal string) or
    :meth:`from_minor_units`. Instances are immutable and hashable; ``==`` is false between
    currencies, while ``<``/``>`` between currencies raise ``CurrencyMismatchError``.
    """

    minor_units: int
    currency: str

    def __attrs_post_init__(self) -> None:
        if type(self.minor_units) is not int:
            raise InvalidAmountError(
                "minor_units", "must be an int", self.minor_units
            )
        currency_exponent(self.currency)
        _check_range(self.minor_units, self.currency, "minor_units")

    # -- construction ------------------------------------------------------------------------

    @classmethod
    def of(cls, value: Decimal | int | str, currency: str, *, field: str = "amount") -> Money:
        """Parse ``value`` as an amount of ``currency``, exactly.

        ``value`` is a ``Decimal``, an ``int`` or a strict ASCII decimal string (``"12.50"``,
        ``"-3"``; no exponent, separators, spaces or ``+``). Raises ``InvalidAmountError``
        (naming ``field``) for floats, bools, NaN, infinities, negative zero, more decimal
        places than the currency has, or more than ``2**63 - 1`` minor units; and
        ``InvalidCurrencyError`` for an unknown or lower-case code.
        """
        exponent = currency_exponent(currency)
        minor = _decimal_to_minor(_to_decimal(value, field), currency, exponent, field)
        return cls(minor, currency)

    @classmethod
    def from_minor_units(cls, minor_units: int, currency: str) -> Money:
        """``Money.from_minor_units(1250, "EUR")`` is 12.50 EUR."""
        if isinstance(minor_units, bool) or not isinstance(minor_units, int):
            raise InvalidAmountError("minor_units", "must be an int", minor_units)
        return cls(minor_units, currency)

    @classmethod
    def zero(cls, currency: str) -> Money:
        """Zero in ``currency``."""
        if cls is Money and currency in _EXPONENTS:  # a currency already checked
            return _valid(0, currency)
        return cls(0, currency)

    @classmethod
    def sum(cls, amounts: Iterable[Money], currency: str) -> Money:
        """Add up ``amounts`` (all in ``currency``); zero for none."""
        total = 0
        for amount in amounts:
            if amount.currency != currency:
                raise CurrencyMismatchError(currency, amount.currency)
            total += amount.minor_units
        if cls is not Money:  # pragma: no cover - a subclass gets its own __init__
            return cls(_check_range(total, currency, "amount"), currency)
        currency_exponent(currency)
        return _valid(_check_range(total, currency, "amount"), currency)

    # -- views -------------------------------------------------------------------------------

    @property
    def exponent(self) -> int:
        """The currency's number of decimal places."""
        return currency_exponent(self.currency)

    @property
    def amount(self) -> Decimal:
        """The amount as a ``Decimal`` with exactly the currency's decimal places."""
        # Built from a tuple, which is exact whatever the thread's decimal context (scaleb
        # would round to the context's precision and could raise under its traps).
        sign, digits, _ = Decimal(self.minor_units).as_tuple()
        return Decimal((sign, digits, -self.exponent))

    def is_zero(self) -> bool:
        """True for zero."""
        return self.minor_units == 0

    def is_positive(self) -> bool:
        """True above zero."""
        return self.minor_units > 0

    def is_negative(self) -> bool:
        """True below zero."""
        return self.minor_units < 0

    def __str__(self) -> str:
        return f"{amount_text(self.minor_units, self.currency)} {self.currency}"

    def __repr__(self) -> str:
        return f"Money.of('{self.amount}', '{self.currency}')"

    # -- comparison --------------------------------------------------------------------------

    def _same(self, other: Money, field: str = "currency") -> None:
        if self.currency != other.currency:
            raise CurrencyMismatchError(self.currency, other.currency, field)

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, Money):
            return NotImplemented
        self._same(other)
        return self.minor_units < other.minor_units

    # -- arithmetic --------------------------------------------------------------------------

    # Addition and subtraction run on every posting: the checks of _same, _check_range and
    # _valid are written out here (the same checks, the same errors).

    def __add__(self, other: Money) -> Money:
        if not isinstance(other, Money):
            return NotImplemented
        currency = self.currency
        if currency != other.currency:
            raise CurrencyMismatchError(currency, other.currency, "currency")
        minor = self.minor_units + other.minor_units
        if not -MAX_MINOR_UNITS <= minor <= MAX_MINOR_UNITS:
            _check_range(minor, currency, "amount")
        money: Money = _new_money(Money)
        _set_field(money, "minor_units", minor)
        _set_field(money, "currency", currency)
        return money

    def __sub__(self, other: Money) -> Money:
        if not isinstance(other, Money):
            return NotImplemented
        currency = self.currency
        if currency != other.currency:
            raise CurrencyMismatchError(currency, other.currency, "currency")
        minor = self.minor_units - other.minor_units
        if not -MAX_MINOR_UNITS <= minor <= MAX_MINOR_UNITS:
            _check_range(minor, currency, "amount")
        money: Money = _new_money(Money)
        _set_field(money, "minor_units", minor)
        _set_field(money, "currency", currency)
        return money

    def __neg__(self) -> Money:
        return _valid(-self.minor_units, self.currency)  # the range is symmetric

    def __pos__(self) -> Money:
        return self

    def __abs__(self) -> Money:
        return _valid(abs(self.minor_units), self.currency)

    def _scaled(self, num: int, den: int, rounding: str | None, field: str) -> Money:
        """Money of ``num / den`` minor units (``den > 0``), rounded with ``rounding``."""
        quotient = _round_ratio(num, den, rounding, field)
        return Money(_check_range(quotient, self.currency, "amount"), self.currency)

    def multiply(self, factor: Decimal | int | str, rounding: str | None = None) -> Money:
        """Multiply by ``factor``, rounding to the minor unit with ``rounding`` (a
        ``decimal.ROUND_*`` mode). Without a mode the result must be exact, else
        ``InexactMoneyError``."""
        mode = None if rounding is None else _check_rounding(rounding)
        num, den = _as_ratio(_to_decimal(factor, "factor"), "factor")
        return self._scaled(self.minor_units * num, den, mode, "factor")

    def divide(self, divisor: Decimal | int | str, rounding: str | None = None) -> Money:
        """Divide by ``divisor`` (not zero), rounding to the minor unit with ``rounding``.
        Without a mode the result must be exact, else ``InexactMoneyError``."""
        mode = None if rounding is None else _check_rounding(rounding)
        num, den = _as_ratio(_to_decimal(divisor, "divisor"), "divisor")
        if num == 0:
            raise InvalidAmountError("divisor", "must not be zero", divisor)
        if num < 0:
            num, den = -num, -den
        return self._scaled(self.minor_units * den, num, mode, "divisor")

    def __mul__(self, factor: int | Decimal) -> Money:
        if isinstance(factor, Money) or not isinstance(factor, int | Decimal):
            return NotImplemented
        return self.multiply(factor)

    __rmul__ = __mul__

    def __truediv__(self, divisor: int | Decimal) -> Money:
        if isinstance(divisor, Money) or not isinstance(divisor, int | Decimal):
            return NotImplemented
        return self.divide(divisor)

    def allocate(self, ratios: Sequence[Decimal | int | str]) -> tuple[Money, ...]:
        """Split into parts proportional to ``ratios`` that add up to exactly this amount.

        Largest-remainder method in minor units: each part gets the floor of its exact share,
        then the leftover minor units go one each to the parts with the largest remainders, ties
        to the earlier part. Ratios are non-negative and not all zero. A negative amount is
        split as its absolute value and negated.
        """
        weights = [_to_decimal(r, "ratios") for r in ratios]
        if not weights:
            raise InvalidAmountError("ratios", "must not be empty", ratios)
        if any(w < 0 for w in weights):
            raise InvalidAmountError("ratios", "must not be negative", ratios)
        # Make the weights integers over one common denominator so the arithmetic is exact.
        fractions = [_as_ratio(w, "ratios") for w in weights]
        common = math.lcm(*(den for _, den in fractions))
        ints = [num * (common // den) for num, den in fractions]
        total_weight = sum(ints)
        if total_weight == 0:
            raise InvalidAmountError("ratios", "must not all be zero", ratios)
        whole = abs(self.minor_units)
        shares: list[int] = []
        remainders: list[tuple[int, int]] = []
        for index, weight in enumerate(ints):
            share, rest = divmod(whole * weight, total_weight)
            shares.append(share)
            remainders.append((-rest, index))
        leftover = whole - sum(shares)
        for _, index in sorted(remainders)[:leftover]:
            shares[index] += 1
        sign = -1 if self.minor_units < 0 else 1
        return tuple(Money(sign * share, self.currency) for share in shares)

    def split(self, parts: int) -> tuple[Money, ...]:
        """Split into ``parts`` near-equal amounts that add up exactly (earlier parts larger)."""
        if isinstance(parts, bool) or not isinstance(parts, int) or parts < 1:
            raise InvalidAmountError("parts", "must be a positive int", parts)
        return self.allocate([1] * parts)


def amount_text(minor_units: int, currency: str) -> str:
    """``str(Money(minor_units, currency).amount)`` without building a ``Decimal``: the
    digits with exactly the currency's decimal places (``"12.50"``, ``"-0.05"``, ``"100"``)."""
    exponent = _EXPONENTS.get(currency)
    if exponent is None:
        exponent = currency_exponent(currency)
    if not exponent:
        return str(minor_units)
    if not minor_units:  # zero: in every decision (what is missing, due, suggested)
        return "0." + "0" * exponent
    digits = str(-minor_units if minor_units < 0 else minor_units).rjust(exponent + 1, "0")
    sign = "-" if minor_units < 0 else ""
    return f"{sign}{digits[:-exponent]}.{digits[-exponent:]}"


_new_money = object.__new__
_set_field = object.__setattr__
# Money's slots, set through their descriptors (half the work of object.__setattr__).
_set_minor_units = Money.__dict__["minor_units"].__set__
_set_currency = Money.__dict__["currency"].__set__


def _valid(minor_units: int, currency: str) -> Money:
    """A ``Money`` from parts already known to be valid (an int in range, a currency already
    checked): the hot paths of arithmetic skip re-validating what they derived from valid
    amounts. Library-internal; everything built from outside goes through ``Money(...)``."""
    money: Money = _new_money(Money)
    _set_minor_units(money, minor_units)
    _set_currency(money, currency)
    return money


_T = TypeVar("_T")


def _trusted(cls: type[_T]) -> Callable[..., _T]:
    """A constructor of the frozen, slotted attrs class ``cls`` that does what its ``__init__``
    does -- set every field, given in declaration order or by name, or its default -- setting
    each slot through its descriptor: attrs' frozen ``__init__`` goes through
    ``object.__setattr__``, about twice the work. Only for classes whose ``__init__`` does
    nothing else (no converters, validators, default factories, keyword-only fields or
    ``__attrs_post_init__``: ``TypeError`` otherwise), so it is exactly ``cls(...)``; the
    transitions every write runs build their records with it. Library-internal."""
    fields = attrs.fields(cls)  # type: ignore[arg-type]
    if (
        hasattr(cls, "__attrs_post_init__") or hasattr(cls, "__attrs_pre_init__")
        or any(f.converter or f.validator or not f.init or f.kw_only or f.alias != f.name
               or isinstance(f.default, attrs.Factory)  # type: ignore[arg-type]
               for f in fields)
    ):
        raise TypeError(f"{cls.__qualname__}.__init__ does more than set its fields")
    scope: dict[str, Any] = {"__new": object.__new__, "__cls": cls}
    params, sets = [], []
    for i, field in enumerate(fields):
        scope[f"__set{i}"] = cls.__dict__[field.name].__set__
        sets.append(f"    __set{i}(__self, {field.name})\n")
        if field.default is attrs.NOTHING:
            params.append(field.name)
        else:
            scope[f"__default{i}"] = field.default
            params.append(f"{field.name}=__default{i}")
    source = (f"def make({', '.join(params)}):\n    __self = __new(__cls)\n"
              f"{''.join(sets)}    return __self\n")
    exec(compile(source, f"<prepaid_wallet constructor {cls.__qualname__}>", "exec"), scope)
    make: Callable[..., _T] = scope["make"]
    return make
