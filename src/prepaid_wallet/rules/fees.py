"""Wallet fees: fixed and percentage fees on operations, and periodic fees.

* :class:`FeeRule` -- a fee charged on some kinds of operation (top-up, spend, transfer out,
  payout, credit, debit): a fixed part and/or a percentage of the operation's amount, clamped
  between an optional minimum and maximum, optionally only for owners in some groups (a
  classification the host attaches to an owner, e.g. ``"students"``).
* :func:`fees_for` -- the :class:`FeeCharge` of every rule that applies to one operation, in the
  order the rules are given; :func:`total_fee` adds them up.
* :class:`PeriodicFee` -- a fixed amount charged on the occurrences of an RFC 5545 recurrence
  rule (e.g. a monthly maintenance fee at local midnight on the 1st), with a stable key per
  occurrence so that each wallet is charged at most once per occurrence.

Rounding: a percentage is applied exactly (``Decimal``/integer arithmetic, never floats) and the
result is rounded *up* to the currency's minor unit (``ROUND_CEILING``). Rounding up makes the fee
subadditive: splitting an operation into several smaller ones never lowers the total fee, also
with a fixed part, a minimum and a maximum.

Time: periodic fees speak of local wall time in an IANA zone, never the process time zone. Local
times that do not exist (clocks jump forward) become the first instant after the jump; local times
that happen twice (clocks go back) become the first of the two. Instants returned are aware UTC.

Every invalid value raises :class:`~prepaid_wallet.errors.InvalidInputError` (or a subclass)
naming the field at fault. Nothing here reads the environment, the process locale or the clock.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Final
from zoneinfo import ZoneInfo

import attrs

from prepaid_wallet._data import money_from_data as _money_from_data
from prepaid_wallet._data import money_to_data as _money_to_data
from prepaid_wallet._data import zone as _zone
from prepaid_wallet.clock import require_aware
from prepaid_wallet.errors import (
    CurrencyMismatchError,
    InvalidAmountError,
    InvalidInputError,
    InvalidTimeError,
)
from prepaid_wallet.money import MAX_MINOR_UNITS, Money, currency_exponent, plain_decimal
from prepaid_wallet.rules.operations import Operation
from prepaid_wallet.text import check_text

if TYPE_CHECKING:
    from dateutil.rrule import rrule

__all__ = [
    "FEE_OPERATIONS",
    "FeeCharge",
    "FeeRule",
    "PeriodicFee",
    "fees_for",
    "total_fee",
]

#: The operations a fee rule may name. A transfer fee is paid by the sender (``TRANSFER_OUT``);
#: ``TRANSFER_IN`` is not chargeable.
FEE_OPERATIONS: Final = frozenset(
    {
        Operation.TOP_UP,
        Operation.SPEND,
        Operation.TRANSFER_OUT,
        Operation.PAYOUT,
        Operation.CREDIT,
        Operation.DEBIT,
    }
)

#: A percentage may have at most this many decimal places (1.2345678 % is fine).
_PERCENT_PLACES: Final = 8
_HUNDRED: Final = Decimal(100)
_DECIMAL_TEXT: Final = re.compile(r"[0-9]+(?:\.[0-9]+)?")
#: Characters allowed in a periodic fee's name, so occurrence keys stay within
#: ``[A-Za-z0-9._@+:-]`` ("@" is reserved as the separator between name and instant).
_KEY_NAME: Final = re.compile(r"[A-Za-z0-9._+:-]{1,100}")
_RULE_TEXT: Final = re.compile(r"(?:RRULE:)?[A-Z0-9=;,+-]+", re.IGNORECASE)
#: Local occurrences are looked up in a window this much wider than the asked range on each
#: side, then filtered on their UTC instants (offset changes are far smaller than this).
_MARGIN: Final = timedelta(days=3)
_ONE_MICROSECOND: Final = timedelta(microseconds=1)
_OPERATION_VALUES: Final = frozenset(op.value for op in Operation)


# -- checks (private) ----------------------------------------------------------------------------


def _name(value: object) -> str:
    return check_text(value, "name")


def _operation(value: object, field: str = "operation") -> Operation:
    if isinstance(value, Operation):
        return value
    if isinstance(value, str) and value in _OPERATION_VALUES:
        return Operation(value)
    choices = ", ".join(sorted(_OPERATION_VALUES))
    raise InvalidInputError(field, f"must be an Operation ({choices})", value)


def _operations(value: object) -> frozenset[Operation]:
    if isinstance(value, str | bytes) or not isinstance(value, Iterable):
        raise InvalidInputError(
            "operations", "must be a collection of Operation values (not a single string)", value
        )
    items = frozenset(_operation(item, "operations") for item in value)
    if not items:
        raise InvalidInputError("operations", "must not be empty", value)
    for item in items:
        if item not in FEE_OPERATIONS:
            choices = ", ".join(sorted(op.value for op in FEE_OPERATIONS))
            raise InvalidInputError(
                "operations",
                f"must only name chargeable operations ({choices}); the sender pays a"
                " transfer fee, so use transfer_out",
                value,
            )
    return items


def _groups(value: object, field: str = "owner_groups") -> frozenset[str]:
    if isinstance(value, str | bytes) or not isinstance(value, Iterable):
        raise InvalidInputError(
            field, "must be a collection of non-empty strings (not a single string)", value
        )
    items = list(value)
    for item in items:
        if not isinstance(item, str) or not item:
            raise InvalidInputError(field, "must hold non-empty strings", value)
    return frozenset(items)


def _optional_money(value: object, field: str, *, positive: bool = False) -> Money | None:
    if value is None:
        return None
    if not isinstance(value, Money):
        raise InvalidAmountError(field, "must be a Money (use Money.of) or None", value)
    if positive and not value.is_positive():
        raise InvalidAmountError(field, "must be positive", value)
    if value.is_negative():
        raise InvalidAmountError(field, "must not be negative", value)
    return value


def _fixed(value: object) -> Money | None:
    return _optional_money(value, "fixed", positive=True)


def _minimum(value: object) -> Money | None:
    return _optional_money(value, "minimum")


def _maximum(value: object) -> Money | None:
    return _optional_money(value, "maximum")


def _percent(value: object) -> Decimal | None:
    rule = f"must be a Decimal (or int) above 0 and at most 100, with at most {_PERCENT_PLACES}"
    rule += " decimal places"
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | Decimal):
        raise InvalidInputError("percent", rule + f", not {type(value).__name__}", value)
    number = plain_decimal(value) if isinstance(value, Decimal) else Decimal(value)
    if not number.is_finite():
        raise InvalidInputError("percent", rule, value)
    exponent = number.as_tuple().exponent
    assert isinstance(exponent, int)  # for the type checker: finite was checked above
    if not Decimal(0) < number <= _HUNDRED or -exponent > _PERCENT_PLACES:
        raise InvalidInputError("percent", rule, value)
    return number


def _positive_amount(value: object, field: str = "amount") -> Money:
    if not isinstance(value, Money):
        raise InvalidAmountError(field, "must be a Money (use Money.of)", value)
    if not value.is_positive():
        raise InvalidAmountError(field, "must be positive", value)
    return value






def _mapping(
    data: object, field: str, required: frozenset[str], optional: frozenset[str]
) -> Mapping[str, Any]:
    if not isinstance(data, Mapping):
        raise InvalidInputError(field, "must be a mapping (a JSON object)", data)
    for key in data:
        if key not in required and key not in optional:
            raise InvalidInputError(field, f"has an unknown key {key!r}", data)
    for key in sorted(required):
        if key not in data:
            raise InvalidInputError(key, "is missing", data)
    return data


def _list(data: Mapping[str, Any], key: str) -> list[Any]:
    value = data.get(key, [])
    if not isinstance(value, list):
        raise InvalidInputError(key, "must be a list of strings", value)
    return value


# -- fee rules -----------------------------------------------------------------------------------


@attrs.frozen
class FeeRule:
    """A fee on some kinds of operation: ``fixed`` and/or ``percent`` of the amount, clamped to
    ``[minimum, maximum]``.

    * ``name`` -- non-blank text, e.g. ``"card top-up fee"``; charges carry it.
    * ``operations`` -- the kinds of operation charged, any non-empty iterable of
      :class:`~prepaid_wallet.rules.operations.Operation` (or their values) from
      :data:`FEE_OPERATIONS`, kept as a frozenset. ``TRANSFER_IN`` is refused: the sender pays.
    * ``fixed`` -- a positive ``Money`` added to every charge, or ``None``.
    * ``percent`` -- a percentage of the amount (``Decimal("1.5")`` is 1.5 %), above 0 and at
      most 100, at most 8 decimal places; a ``Decimal`` or an ``int`` (kept as ``Decimal``).
      Floats, bools, strings, NaN and infinities are refused. Or ``None``.
    * ``minimum``, ``maximum`` -- optional bounds, ``0 <= minimum <= maximum``. A maximum of zero
      switches the rule off (its charges are zero, and :func:`fees_for` leaves zero charges out).
    * ``owner_groups`` -- the rule charges only owners in at least one of these groups; empty
      (the default) charges every owner.

    At least one of ``fixed`` and ``percent`` is set. Every ``Money`` field is in one currency,
    the rule's :attr:`currency`; a percentage-only rule without bounds has none and works in any
    currency.

    Raises ``InvalidInputError`` (``InvalidAmountError`` for money fields) naming ``"name"``,
    ``"operations"``, ``"fixed"``, ``"percent"``, ``"minimum"``, ``"maximum"`` or
    ``"owner_groups"``, and ``CurrencyMismatchError`` naming the field whose currency differs.
    """

    name: str = attrs.field(converter=_name)
    operations: frozenset[Operation] = attrs.field(converter=_operations)
    fixed: Money | None = attrs.field(default=None, converter=_fixed)
    percent: Decimal | None = attrs.field(default=None, converter=_percent)
    minimum: Money | None = attrs.field(default=None, converter=_minimum)
    maximum: Money | None = attrs.field(default=None, converter=_maximum)
    owner_groups: frozenset[str] = attrs.field(default=frozenset(), converter=_groups)

    def __attrs_post_init__(self) -> None:
        if self.fixed is None and self.percent is None:
            raise InvalidInputError("fixed", "a fee rule needs a fixed part, a percent or both")
        currency: str | None = None
        for field in ("fixed", "minimum", "maximum"):
            value: Money | None = getattr(self, field)
            if value is None:
                continue
            if currency is None:
                currency = value.currency
            elif value.currency != currency:
                raise CurrencyMismatchError(currency, value.currency, field)
        if (
            self.minimum is not None
            and self.maximum is not None
            and self.minimum.minor_units > self.maximum.minor_units
        ):
            raise InvalidAmountError("maximum", "must not be below minimum", self.maximum)

    @property
    def currency(self) -> str | None:
        """The currency of the rule's money fields; ``None`` for a percentage-only rule without
        bounds (it works in any currency)."""
        for value in (self.fixed, self.minimum, self.maximum):
            if value is not None:
                return value.currency
        return None

    def applies(self, operation: Operation, owner_groups: Iterable[str]) -> bool:
        """Whether the rule charges ``operation`` for an owner in ``owner_groups``.

        True when ``operation`` is one of :attr:`operations` and, if the rule names groups, the
        owner belongs to at least one of them. Raises ``InvalidInputError`` naming
        ``"operation"`` or ``"owner_groups"`` (a collection of strings, not a single string).
        """
        kind = _operation(operation)
        groups = _groups(owner_groups)
        if kind not in self.operations:
            return False
        return not self.owner_groups or not self.owner_groups.isdisjoint(groups)

    def fee(self, amount: Money) -> Money:
        """The fee on an operation of ``amount``, in ``amount``'s currency.

        ``fixed + ceil(amount * percent / 100)``, the percentage computed exactly on minor units
        and rounded up (``ROUND_CEILING``) to the minor unit, then raised to ``minimum`` and
        lowered to ``maximum``. An exact percentage stays exact (1 % of 2.00 EUR is 0.02 EUR).

        Raises ``InvalidAmountError("amount", ...)`` unless ``amount`` is a positive ``Money``
        (or when the fee would exceed the range of ``Money``), and ``CurrencyMismatchError``
        (field ``"amount"``) when the rule has a currency and ``amount`` is in another.
        """
        amount = _positive_amount(amount)
        currency = self.currency
        if currency is not None and amount.currency != currency:
            raise CurrencyMismatchError(currency, amount.currency, "amount")
        minor = 0 if self.fixed is None else self.fixed.minor_units
        if self.percent is not None:
            num, den = self.percent.as_integer_ratio()
            minor += -((-amount.minor_units * num) // (den * 100))  # ceiling division
        if self.minimum is not None:
            minor = max(minor, self.minimum.minor_units)
        if self.maximum is not None:
            minor = min(minor, self.maximum.minor_units)
        if minor > MAX_MINOR_UNITS:
            raise InvalidAmountError(
                "amount", f"gives a fee above {MAX_MINOR_UNITS} minor units", amount
            )
        return Money(minor, amount.currency)

    def describe(self) -> str:
        """The rule in words, e.g. ``"card top-up fee: 0.30 EUR + 1.5 %, at least 0.50 EUR, at
        most 5.00 EUR, for owners in students"``.

        Amounts read like ``str(Money)`` (whatever the process locale); several groups are
        sorted and joined with ``" or "``. The operations are not part of the words.
        """
        parts = []
        if self.fixed is not None:
            parts.append(str(self.fixed))
        if self.percent is not None:
            parts.append(f"{self.percent:f} %")
        words = f"{self.name}: {' + '.join(parts)}"
        if self.minimum is not None:
            words += f", at least {self.minimum}"
        if self.maximum is not None:
            words += f", at most {self.maximum}"
        if self.owner_groups:
            words += f", for owners in {' or '.join(sorted(self.owner_groups))}"
        return words

    def to_data(self) -> dict[str, Any]:
        """The rule as JSON-able data; :meth:`from_data` rebuilds an equal rule.

        ``{"name": ..., "operations": [sorted values], "fixed": {"minor": 30, "currency": "EUR"},
        "percent": "1.5", "minimum": ..., "maximum": ..., "owner_groups": [sorted]}``; fields
        that are ``None`` or empty are left out. The percent is a plain decimal string.
        """
        data: dict[str, Any] = {
            "name": self.name,
            "operations": sorted(op.value for op in self.operations),
        }
        if self.fixed is not None:
            data["fixed"] = _money_to_data(self.fixed)
        if self.percent is not None:
            data["percent"] = f"{self.percent:f}"
        if self.minimum is not None:
            data["minimum"] = _money_to_data(self.minimum)
        if self.maximum is not None:
            data["maximum"] = _money_to_data(self.maximum)
        if self.owner_groups:
            data["owner_groups"] = sorted(self.owner_groups)
        return data

    @classmethod
    def from_data(cls, data: object) -> FeeRule:
        """Rebuild a rule from :meth:`to_data` output, validating it like the constructor.

        Raises ``InvalidInputError`` naming ``"fee_rule"`` when ``data`` is not a mapping or has
        an unknown key, and the field's name for a missing or bad value.
        """
        fields = _mapping(data, "fee_rule", _RULE_REQUIRED, _RULE_OPTIONAL)
        values: dict[str, Any] = {
            "name": fields["name"],
            "operations": _list(fields, "operations"),
            "owner_groups": _list(fields, "owner_groups"),
        }
        for key in ("fixed", "minimum", "maximum"):
            if key in fields:
                values[key] = _money_from_data(fields[key], key)
        if "percent" in fields:
            text = fields["percent"]
            if not isinstance(text, str) or not text.isascii() or not _DECIMAL_TEXT.fullmatch(text):
                raise InvalidInputError("percent", "must be a decimal string such as '1.5'", text)
            values["percent"] = Decimal(text)
        return cls(**values)


_RULE_REQUIRED: Final = frozenset({"name", "operations"})
_RULE_OPTIONAL: Final = frozenset({"fixed", "percent", "minimum", "maximum", "owner_groups"})


def _charge_rule(value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidInputError("rule", "must be the non-blank name of a fee rule", value)
    return value


def _charge_amount(value: object) -> Money:
    return _positive_amount(value)


@attrs.frozen
class FeeCharge:
    """One fee to charge: the ``rule`` (a :class:`FeeRule` name) and its positive ``amount``.

    Raises ``InvalidInputError("rule", ...)`` for a blank name and
    ``InvalidAmountError("amount", ...)`` unless ``amount`` is a positive ``Money``.
    """

    rule: str = attrs.field(converter=_charge_rule)
    amount: Money = attrs.field(converter=_charge_amount)


def fees_for(
    rules: Sequence[FeeRule],
    operation: Operation,
    amount: Money,
    owner_groups: Iterable[str],
) -> tuple[FeeCharge, ...]:
    """The fees of one operation of ``amount``: a :class:`FeeCharge` for every rule in ``rules``
    that :meth:`~FeeRule.applies`, in the order the rules are given.

    Each rule is computed on the operation's ``amount`` alone, never on the amount plus the fees
    of earlier rules, so the order only decides the order of the charges (and of the postings
    the service makes from them). Charges of zero (a rule whose maximum is zero) are left out.
    Rules are not merged: two applying rules give two charges.

    Raises ``InvalidInputError`` naming ``"rules"`` (a sequence of ``FeeRule``),
    ``"operation"``, ``"owner_groups"`` or ``"amount"``; and ``CurrencyMismatchError``
    (field ``"amount"``) when an applying rule is in another currency than ``amount`` -- pass
    the rules for the wallet's currency.
    """
    if isinstance(rules, str | bytes) or not isinstance(rules, Sequence):
        raise InvalidInputError("rules", "must be a sequence of FeeRule", rules)
    for rule in rules:
        if not isinstance(rule, FeeRule):
            raise InvalidInputError("rules", "must hold only FeeRule values", rules)
    kind = _operation(operation)
    groups = _groups(owner_groups)
    amount = _positive_amount(amount)
    charges = []
    for rule in rules:
        if rule.applies(kind, groups):
            fee = rule.fee(amount)
            if not fee.is_zero():
                charges.append(FeeCharge(rule.name, fee))
    return tuple(charges)


def total_fee(charges: Iterable[FeeCharge], currency: str) -> Money:
    """The sum of ``charges`` in ``currency`` (zero for none).

    Raises ``InvalidCurrencyError`` for an unknown ``currency``, ``InvalidInputError("charges",
    ...)`` for something that is not a ``FeeCharge``, and ``CurrencyMismatchError`` for a charge
    in another currency.
    """
    currency_exponent(currency)
    items = list(charges)
    for charge in items:
        if not isinstance(charge, FeeCharge):
            raise InvalidInputError("charges", "must hold only FeeCharge values", charge)
    return Money.sum((charge.amount for charge in items), currency)


# -- periodic fees -------------------------------------------------------------------------------


def _key_name(value: object) -> str:
    if not isinstance(value, str) or not _KEY_NAME.fullmatch(value):
        raise InvalidInputError(
            "name",
            "must be 1 to 100 characters from A-Z a-z 0-9 . _ + : - (it is part of occurrence"
            " keys)",
            value,
        )
    return value


def _periodic_amount(value: object) -> Money:
    return _positive_amount(value)


def _start(value: object) -> datetime:
    instant = require_aware(value, "start")
    if instant.microsecond:
        raise InvalidTimeError("start", "must be a whole second (recurrences drop microseconds)")
    return instant


def _zone_name(value: object) -> str:
    _zone(value)
    assert isinstance(value, str)  # for the type checker: _zone accepts only names
    return value


def _rule_text(value: object) -> str:
    if not isinstance(value, str) or not _RULE_TEXT.fullmatch(value):
        raise InvalidInputError(
            "rule",
            "must be one RFC 5545 RRULE such as 'FREQ=MONTHLY;BYMONTHDAY=1' (no DTSTART, RDATE"
            " or EXDATE; the start is a separate field)",
            value,
        )
    return value


def _parts(text: str) -> dict[str, str]:
    """The rule's ``NAME=value`` parts, upper-cased (``InvalidInputError("rule")`` if malformed
    or repeated)."""
    body = text.upper().removeprefix("RRULE:")
    parts: dict[str, str] = {}
    for part in body.split(";"):
        name, sep, value = part.partition("=")
        if not sep or not name or not value or "=" in value or name in parts:
            raise InvalidInputError("rule", "must be NAME=value parts separated by ';'", text)
        parts[name] = value
    return parts


def _local_wall(instant: datetime, zone: ZoneInfo) -> datetime:
    return instant.astimezone(zone).replace(tzinfo=None)


def _instant_of(wall: datetime, zone: ZoneInfo) -> datetime:
    """The UTC instant of the naive local wall time ``wall`` in ``zone``.

    A wall time that happens twice gives the earlier instant; one that does not exist (inside a
    gap where clocks jump forward) gives the first instant after the gap, i.e. the moment of the
    jump. ``fold=0`` and ``fold=1`` give the offsets either side of a change; a candidate is real
    when it converts back to ``wall``. Inside a gap the moment of the jump lies between the two
    candidates and is found by bisection over microseconds.
    """
    candidates = sorted(
        wall.replace(tzinfo=zone, fold=fold).astimezone(UTC) for fold in (0, 1)
    )
    for candidate in candidates:
        if _local_wall(candidate, zone) == wall:
            return candidate
    low, high = candidates  # local(low) < wall < local(high): a jump lies in between
    steps = range((high - low) // _ONE_MICROSECOND + 1)
    return low + _ONE_MICROSECOND * bisect.bisect_left(
        steps, True, key=lambda us: _local_wall(low + us * _ONE_MICROSECOND, zone) > wall
    )


@attrs.frozen
class PeriodicFee:
    """A fixed ``amount`` charged on every occurrence of a recurrence ``rule``.

    * ``name`` -- 1 to 100 characters from ``A-Z a-z 0-9 . _ + : -``, unique among a tenant's
      periodic fees (it is part of :meth:`occurrence_key`), e.g. ``"monthly-maintenance"``.
    * ``amount`` -- a positive ``Money``.
    * ``rule`` -- one RFC 5545 RRULE, e.g. ``"FREQ=MONTHLY;BYMONTHDAY=1"`` (an ``RRULE:``
      prefix is allowed), parsed with ``dateutil.rrule.rrulestr``. Infinite rules are fine:
      occurrences are only ever asked for a bounded range. ``WKST`` defaults to ``MO`` (as RFC
      5545 says) rather than the process-wide ``calendar.firstweekday()``. ``UNTIL`` ending in
      ``Z`` is an instant in UTC (the RFC form for a start with a time zone); without ``Z`` it is
      a local wall time in ``zone``. ``COUNT`` and ``UNTIL`` together are refused.
    * ``start`` -- the aware DTSTART (kept in UTC, whole seconds). Its local wall time in
      ``zone`` gives the times of day the rule does not set itself (``start`` at local midnight
      makes a monthly rule charge at local midnight). As in dateutil, ``start`` is an occurrence
      only when it matches the rule, and nothing occurs before it.
    * ``zone`` -- an IANA zone name: the rule runs on local wall time there.
    * ``owner_groups`` -- charged only to owners in at least one of these groups; empty (the
      default) charges every owner.

    Raises ``InvalidInputError`` naming ``"name"``, ``"rule"``, ``"zone"`` or
    ``"owner_groups"``, ``InvalidAmountError("amount", ...)`` and
    ``InvalidTimeError("start", ...)``.
    """

    name: str = attrs.field(converter=_key_name)
    amount: Money = attrs.field(converter=_periodic_amount)
    rule: str = attrs.field(converter=_rule_text)
    start: datetime = attrs.field(converter=_start)
    zone: str = attrs.field(converter=_zone_name)
    owner_groups: frozenset[str] = attrs.field(default=frozenset(), converter=_groups)
    _recurrence: rrule = attrs.field(init=False, eq=False, repr=False)
    _until: datetime | None = attrs.field(init=False, eq=False, repr=False)

    def __attrs_post_init__(self) -> None:
        parts = _parts(self.rule)
        if "DTSTART" in parts:
            raise InvalidInputError("rule", "must not hold DTSTART (use start)", self.rule)
        if "COUNT" in parts and "UNTIL" in parts:
            raise InvalidInputError("rule", "must not hold both COUNT and UNTIL", self.rule)
        until: datetime | None = None
        if parts.get("UNTIL", "").endswith("Z"):
            text = parts.pop("UNTIL")
            try:
                until = datetime.strptime(text, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
            except ValueError as exc:
                raise InvalidInputError(
                    "rule", "must have UNTIL as YYYYMMDDTHHMMSSZ", self.rule
                ) from exc
        parts.setdefault("WKST", "MO")
        body = ";".join(f"{name}={value}" for name, value in parts.items())
        dtstart = _local_wall(self.start, _zone(self.zone))
        from dateutil.rrule import rrule, rrulestr  # only periodic fees need it

        try:
            recurrence = rrulestr(body, dtstart=dtstart)
        except (ValueError, TypeError, KeyError, IndexError, OverflowError) as exc:
            raise InvalidInputError(
                "rule", f"must be a valid RFC 5545 RRULE ({exc})", self.rule
            ) from exc
        if not isinstance(recurrence, rrule):  # pragma: no cover - one line is one rrule
            raise InvalidInputError("rule", "must be a single RRULE", self.rule)
        object.__setattr__(self, "_recurrence", recurrence)
        object.__setattr__(self, "_until", until)

    def applies(self, owner_groups: Iterable[str]) -> bool:
        """Whether the fee is charged to an owner in ``owner_groups``: always when the fee names
        no groups, else when the owner is in at least one of them. Raises
        ``InvalidInputError("owner_groups", ...)`` for a single string or non-strings."""
        groups = _groups(owner_groups)
        return not self.owner_groups or not self.owner_groups.isdisjoint(groups)

    def occurrences(self, since: datetime, until: datetime) -> tuple[datetime, ...]:
        """The instants at which the fee falls due in the half-open range ``(since, until]``,
        as aware UTC datetimes, sorted, without repeats.

        ``since`` excluded and ``until`` included, so consecutive calls with
        ``(last_run, now]`` see every occurrence exactly once. Each occurrence is a local wall
        time of :attr:`rule` in :attr:`zone` converted to UTC: a wall time that happens twice
        gives the first of the two instants; one that does not exist gives the first instant
        after the gap (the moment clocks jump). Two wall times inside one gap (possible for an
        hourly rule) give one occurrence. The process time zone is never used. The cost grows
        with the number of occurrences between :attr:`start` and ``until``.

        Raises ``InvalidTimeError`` naming ``"since"`` or ``"until"`` for a naive value, or
        ``"until"`` when it is before ``since`` or too close to the limits of ``datetime``.
        """
        low = require_aware(since, "since")
        high = require_aware(until, "until")
        if high < low:
            raise InvalidTimeError("until", "must not be before since", until)
        zone = _zone(self.zone)
        if self._until is not None:
            high = min(high, self._until)
        if high <= low or high < self.start:
            return ()
        try:
            first = _local_wall(max(low, self.start), zone) - _MARGIN
            last = _local_wall(high, zone) + _MARGIN
            walls = self._recurrence.between(first, last, inc=True)
            instants = {_instant_of(wall, zone) for wall in walls}
        except OverflowError as exc:
            raise InvalidTimeError(
                "until", "must leave room for the zone's offsets within datetime's range", until
            ) from exc
        return tuple(sorted(at for at in instants if low < at <= high))

    def occurrence_key(self, at: datetime) -> str:
        """A stable text naming the occurrence at ``at`` of this fee:
        ``f"{name}@{at_in_utc.isoformat()}"``, e.g.
        ``"monthly-maintenance@2026-01-31T22:00:00+00:00"``.

        It only holds the characters ``A-Z a-z 0-9 . _ @ + : -`` and does not depend on the zone
        ``at`` is given in, so the service can use it (with the wallet id) in an idempotency key
        to charge each wallet at most once per occurrence. Raises ``InvalidTimeError("at", ...)``
        for a naive ``at`` or one that is not an occurrence of this fee.
        """
        instant = require_aware(at, "at")
        if instant.microsecond or self.occurrences(instant - _ONE_MICROSECOND, instant) != (
            instant,
        ):
            raise InvalidTimeError("at", "must be an occurrence of this periodic fee", at)
        return f"{self.name}@{instant.isoformat()}"

    def to_data(self) -> dict[str, Any]:
        """The fee as JSON-able data; :meth:`from_data` rebuilds an equal fee.

        ``{"name": ..., "amount": {"minor": 500, "currency": "EUR"}, "rule": "FREQ=MONTHLY",
        "start": "2026-01-01T00:00:00+00:00", "zone": "Europe/Nicosia", "owner_groups":
        [sorted]}``; ``owner_groups`` is left out when empty. ``start`` is in UTC.
        """
        data: dict[str, Any] = {
            "name": self.name,
            "amount": _money_to_data(self.amount),
            "rule": self.rule,
            "start": self.start.isoformat(),
            "zone": self.zone,
        }
        if self.owner_groups:
            data["owner_groups"] = sorted(self.owner_groups)
        return data

    @classmethod
    def from_data(cls, data: object) -> PeriodicFee:
        """Rebuild a fee from :meth:`to_data` output, validating it like the constructor.

        Raises ``InvalidInputError`` naming ``"periodic_fee"`` when ``data`` is not a mapping or
        has an unknown key, and the field's name for a missing or bad value.
        """
        fields = _mapping(data, "periodic_fee", _PERIODIC_REQUIRED, frozenset({"owner_groups"}))
        start = fields["start"]
        rule = "must be an ISO 8601 instant with an offset, such as '2026-01-01T00:00:00+00:00'"
        if not isinstance(start, str):
            raise InvalidTimeError("start", rule, start)
        try:
            parsed = datetime.fromisoformat(start)
        except ValueError as exc:
            raise InvalidTimeError("start", rule, start) from exc
        return cls(
            name=fields["name"],
            amount=_money_from_data(fields["amount"], "amount"),
            rule=fields["rule"],
            start=parsed,
            zone=fields["zone"],
            owner_groups=_list(fields, "owner_groups"),
        )


_PERIODIC_REQUIRED: Final = frozenset({"name", "amount", "rule", "start", "zone"})
