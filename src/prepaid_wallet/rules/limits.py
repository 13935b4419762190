"""Wallet limits: how many operations of one kind, and how much money, per window; and a maximum
balance.

An operator configures limits once per tenant (:class:`Limits`); a wallet may carry an override
that is only stricter (:func:`check_override` refuses a looser one when it is set, and
:meth:`Limits.merged` gives the wallet's effective limits). Deciding an operation is pure: the
caller says what the wallet already did in each rule's window (:class:`Activity`) and
:func:`check` returns the rules the operation would breach (:class:`LimitBreach`), each with what
was left of its allowance. The service turns a breach into a refusal; nothing here reads the
clock, the environment or storage.

* :class:`Period` -- a calendar period: a local day, an ISO week (Monday first) or a month.
* :class:`Window` -- a rolling duration, or a calendar period in an IANA zone.
* :class:`LimitRule` -- at most ``max_count`` operations and/or ``max_amount`` of money of one
  :class:`~prepaid_wallet.rules.operations.Operation` per window.
* :class:`Limits` -- a tenant's (or a wallet override's) rules and maximum balance.

Window boundaries
-----------------

For an operation decided at the instant ``at``, a rule's window is the closed interval
``[window.start(at), at]`` of recorded instants: every operation of the rule's kind recorded at
an instant ``t`` with ``start(at) <= t <= at`` counts, then the operation being decided is added
as one more.

* Calendar windows: ``start(at)`` is the first instant of the local day, ISO week (Monday) or
  month that contains ``at`` in the window's zone; the period itself is half-open
  ``[start, start of the next period)``, and ``[start, at]`` is the part of it up to now.
* Rolling windows: ``start(at)`` is ``at - rolling``. Both ends are included, so an operation
  still counts when it was recorded exactly ``rolling`` ago (a limit is never looser than its
  duration) and operations recorded at the very instant ``at`` (the same clock reading) count.
  The duration is elapsed time: 24 hours are 24 hours of UTC, also across a DST change.

Instants recorded after ``at`` (a clock set back for a replay) are the caller's to leave out.

Amounts: every amount of one :class:`Limits` is in one currency (a wallet's); amounts of other
currencies raise :class:`~prepaid_wallet.errors.CurrencyMismatchError`. Nothing is rounded.
Every invalid value raises :class:`~prepaid_wallet.errors.InvalidInputError` (or a subclass)
naming the field at fault.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, Final, TypeVar

import attrs

from prepaid_wallet._data import money_from_data as _money_from_data
from prepaid_wallet._data import money_to_data as _money_to_data
from prepaid_wallet._data import zone as _zone
from prepaid_wallet.clock import require_aware
from prepaid_wallet.conditions import _mapping, end_of_local_day
from prepaid_wallet.errors import (
    CurrencyMismatchError,
    InvalidAmountError,
    InvalidCurrencyError,
    InvalidInputError,
    InvalidTimeError,
)
from prepaid_wallet.money import MAX_MINOR_UNITS, Money
from prepaid_wallet.rules.operations import Operation

__all__ = [
    "LIMITED_OPERATIONS",
    "Activity",
    "LimitBreach",
    "LimitRule",
    "Limits",
    "Period",
    "Window",
    "allowance",
    "check",
    "check_balance",
    "check_override",
]

#: The operations a limit rule may bound.
LIMITED_OPERATIONS: Final = frozenset(
    {Operation.SPEND, Operation.TOP_UP, Operation.TRANSFER_OUT, Operation.PAYOUT}
)

_NOUNS: Final = {
    Operation.SPEND: ("spend", "spends"),
    Operation.TOP_UP: ("top-up", "top-ups"),
    Operation.TRANSFER_OUT: ("transfer out", "transfers out"),
    Operation.PAYOUT: ("payout", "payouts"),
}
_OVERRIDE_RULE: Final = "an override may only be stricter"
_SECOND: Final = timedelta(seconds=1)
_EARLIEST: Final = datetime.min.replace(tzinfo=UTC)


class Period(StrEnum):
    """A calendar period, in a window's zone: ``DAY`` a local day, ``WEEK`` an ISO week
    (Monday to Sunday), ``MONTH`` a calendar month."""

    DAY = "day"
    WEEK = "week"
    MONTH = "month"


# -- windows -------------------------------------------------------------------------------------


def _rolling(value: timedelta | None) -> timedelta | None:
    if value is None:
        return None
    if not isinstance(value, timedelta) or value <= timedelta(0) or value % _SECOND:
        raise InvalidInputError(
            "rolling", "must be a positive timedelta of whole seconds", value
        )
    return value


def _period(value: Period | str | None) -> Period | None:
    if value is None:
        return None
    rule = f"must be one of {', '.join(p.value for p in Period)}"
    if not isinstance(value, str):
        raise InvalidInputError("period", rule, value)
    try:
        return Period(value)
    except ValueError as exc:
        raise InvalidInputError("period", rule, value) from exc


def _zone_name(value: str | None) -> str | None:
    if value is None:
        return None
    return _zone(value).key


def _plural(count: int, singular: str, plural: str) -> str:
    return f"{count} {singular if count == 1 else plural}"


def _describe_duration(value: timedelta) -> str:
    seconds = value // _SECOND
    for size, singular, plural in (
        (86_400, "day", "days"),
        (3_600, "hour", "hours"),
        (60, "minute", "minutes"),
        (1, "second", "seconds"),
    ):
        # One day reads as 24 hours: "per rolling 24 hours" is what people say.
        if seconds % size == 0 and (size != 86_400 or seconds > size):
            count = seconds // size
            return singular if count == 1 else f"{count} {plural}"
    raise AssertionError("unreachable: every whole number of seconds is divisible by 1")


@attrs.frozen(kw_only=True)
class Window:
    """The stretch of time a limit rule counts over: either ``rolling``, a positive
    ``timedelta`` of whole seconds (elapsed time), or ``period`` with ``zone``, a calendar
    day, ISO week or month in an IANA zone.

    ``Window(rolling=timedelta(hours=24))``; ``Window(period=Period.DAY, zone="Europe/Nicosia")``
    (``period`` also takes its value, ``"day"``). Raises ``InvalidInputError`` naming
    ``"rolling"``, ``"period"`` or ``"zone"`` for a bad value, and ``"window"`` unless exactly
    one of ``rolling`` and ``period`` is given; ``zone`` goes with ``period`` only.
    """

    rolling: timedelta | None = attrs.field(default=None, converter=_rolling)
    period: Period | None = attrs.field(default=None, converter=_period)
    zone: str | None = attrs.field(default=None, converter=_zone_name)

    def __attrs_post_init__(self) -> None:
        if (self.rolling is None) == (self.period is None):
            raise InvalidInputError(
                "window", "must have exactly one of rolling and period", self
            )
        if self.period is not None and self.zone is None:
            raise InvalidInputError("zone", "is required with a period", self.zone)
        if self.rolling is not None and self.zone is not None:
            raise InvalidInputError(
                "zone", "goes with a period only (a rolling window is elapsed time)", self.zone
            )

    @property
    def key(self) -> str:
        """Stable text naming the window: ``"rolling:86400"`` (seconds) or
        ``"day:Europe/Nicosia"``."""
        if self.rolling is not None:
            return f"rolling:{self.rolling // _SECOND}"
        return f"{self.period}:{self.zone}"

    def start(self, at: datetime) -> datetime:
        """The first instant, aware in UTC, of this window for an operation decided at ``at``.

        Rolling: ``at - rolling`` (the earliest representable instant if that is earlier).
        Calendar: the first instant of the local day, ISO week (its Monday) or month that
        contains ``at`` in ``zone``. A day whose local midnight does not exist starts at the
        first instant that exists on it; a midnight that happens twice starts the day at the
        earlier one (see :func:`~prepaid_wallet.conditions.end_of_local_day`). The process time
        zone is never used. The operations that count are those recorded in ``[start(at), at]``
        (see the module documentation).

        Raises ``InvalidTimeError("at", ...)`` for a naive or non-datetime ``at``, or one so
        near the ends of representable time that its period's first instant cannot be found.
        """
        instant = require_aware(at, "at")
        if self.rolling is not None:
            try:
                return instant - self.rolling
            except OverflowError:
                return _EARLIEST
        zone = str(self.zone)  # set with every period (checked on construction)
        try:
            local = instant.astimezone(_zone(zone)).date()
            if self.period is Period.WEEK:
                first = local - timedelta(days=local.isoweekday() - 1)
            elif self.period is Period.MONTH:
                first = local.replace(day=1)
            else:
                first = local
            return end_of_local_day(first - timedelta(days=1), zone)
        except (OverflowError, InvalidInputError) as exc:
            # Only the dates can be at fault here (the zone was checked on construction).
            raise InvalidTimeError(
                "at", "must lie in a period whose first instant can be represented",
                at,
            ) from exc

    def describe(self) -> str:
        """The window in words: ``"per day in Europe/Nicosia"``, ``"per week in …"``
        (ISO weeks), ``"per month in …"``, ``"per rolling 24 hours"``, ``"per rolling 7 days"``,
        ``"per rolling hour"``."""
        if self.rolling is not None:
            return f"per rolling {_describe_duration(self.rolling)}"
        return f"per {self.period} in {self.zone}"

    def to_data(self) -> dict[str, Any]:
        """JSON-able data: ``{"rolling_seconds": 86400}`` or
        ``{"period": "day", "zone": "Europe/Nicosia"}``."""
        if self.rolling is not None:
            return {"rolling_seconds": self.rolling // _SECOND}
        return {"period": str(self.period), "zone": self.zone}

    @classmethod
    def from_data(cls, data: object) -> Window:
        """Rebuild a window from :meth:`to_data` output, validating it like the constructor.
        Raises ``InvalidInputError`` naming ``"window"`` for a non-mapping or an unknown key, or
        the field at fault."""
        fields = _mapping(data, "window", frozenset({"rolling_seconds", "period", "zone"}))
        rolling: timedelta | None = None
        if "rolling_seconds" in fields:
            seconds = fields["rolling_seconds"]
            if isinstance(seconds, bool) or not isinstance(seconds, int) or seconds < 1:
                raise InvalidInputError("rolling_seconds", "must be a positive int", seconds)
            try:
                rolling = timedelta(seconds=seconds)
            except OverflowError as exc:
                raise InvalidInputError("rolling_seconds", "is too large", seconds) from exc
        return cls(rolling=rolling, period=fields.get("period"), zone=fields.get("zone"))


# -- rules ---------------------------------------------------------------------------------------


def _operation(value: Operation | str) -> Operation:
    rule = f"must be one of {', '.join(sorted(o.value for o in LIMITED_OPERATIONS))}"
    if not isinstance(value, str):
        raise InvalidInputError("operation", rule, value)
    try:
        operation = Operation(value)
    except ValueError as exc:
        raise InvalidInputError("operation", rule, value) from exc
    if operation not in LIMITED_OPERATIONS:
        raise InvalidInputError("operation", rule, value)
    return operation


def _window(value: Window) -> Window:
    if not isinstance(value, Window):
        raise InvalidInputError("window", "must be a Window", value)
    return value


def _max_count(value: int | None) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidInputError("max_count", "must be an int of at least 1", value)
    return value


def _positive_money(value: object, field: str) -> Money | None:
    if value is None:
        return None
    if not isinstance(value, Money):
        raise InvalidAmountError(field, "must be a Money (use Money.of)", value)
    if not value.is_positive():
        raise InvalidAmountError(field, "must be positive", value)
    return value


def _max_amount(value: Money | None) -> Money | None:
    return _positive_money(value, "max_amount")


@attrs.frozen(kw_only=True)
class LimitRule:
    """At most ``max_count`` operations and/or at most ``max_amount`` of money of kind
    ``operation`` per ``window``.

    ``operation`` is SPEND, TOP_UP, TRANSFER_OUT or PAYOUT (an :class:`Operation` or its value);
    ``max_count`` an int of at least 1; ``max_amount`` positive money. At least one bound is
    set. Raises ``InvalidInputError`` naming ``"operation"``, ``"window"``, ``"max_count"`` or
    ``"rule"`` (no bound), and ``InvalidAmountError("max_amount", ...)``.
    """

    operation: Operation = attrs.field(converter=_operation)
    window: Window = attrs.field(converter=_window)
    max_count: int | None = attrs.field(default=None, converter=_max_count)
    max_amount: Money | None = attrs.field(default=None, converter=_max_amount)

    def __attrs_post_init__(self) -> None:
        if self.max_count is None and self.max_amount is None:
            raise InvalidInputError(
                "rule", "must set max_count, max_amount or both", self
            )

    @property
    def key(self) -> str:
        """Stable text naming the operation and the window, e.g. ``"spend:day:Europe/Nicosia"``
        or ``"top_up:rolling:604800"``: a wallet's override replaces the tenant rule with the
        same key."""
        return f"{self.operation.value}:{self.window.key}"

    def describe(self) -> str:
        """The rule in words: ``"at most 3 spends per day in Europe/Nicosia"``,
        ``"at most 100.00 EUR of top-ups per rolling 7 days"``, or with both bounds
        ``"at most 3 spends and 100.00 EUR of spends per day in Europe/Nicosia"``."""
        singular, plural = _NOUNS[self.operation]
        bounds = []
        if self.max_count is not None:
            bounds.append(_plural(self.max_count, singular, plural))
        if self.max_amount is not None:
            bounds.append(f"{self.max_amount} of {plural}")
        return f"at most {' and '.join(bounds)} {self.window.describe()}"

    def to_data(self) -> dict[str, Any]:
        """JSON-able data: ``{"operation": "spend", "window": {...}, "max_count": 3,
        "max_amount": {"minor": 10000, "currency": "EUR"}}``; an unset bound is left out."""
        data: dict[str, Any] = {"operation": self.operation.value, "window": self.window.to_data()}
        if self.max_count is not None:
            data["max_count"] = self.max_count
        if self.max_amount is not None:
            data["max_amount"] = _money_to_data(self.max_amount)
        return data

    @classmethod
    def from_data(cls, data: object) -> LimitRule:
        """Rebuild a rule from :meth:`to_data` output, validating it like the constructor.
        Raises ``InvalidInputError`` naming ``"rule"`` for a non-mapping, an unknown or missing
        key, the field at fault otherwise (``"window.zone"`` for a bad window field)."""
        fields = _mapping(data, "rule", _RULE_KEYS)
        for key in ("operation", "window"):
            if key not in fields:
                raise InvalidInputError("rule", f"missing key {key!r}", data)
        try:
            window = Window.from_data(fields["window"])
        except InvalidInputError as exc:
            field = "window" if exc.field == "window" else f"window.{exc.field}"
            raise _renamed(exc, field) from exc
        max_amount = None
        if "max_amount" in fields:
            max_amount = _money_from_data(fields["max_amount"], "max_amount")
        return cls(
            operation=fields["operation"],
            window=window,
            max_count=fields.get("max_count"),
            max_amount=max_amount,
        )


_RULE_KEYS: Final = frozenset({"operation", "window", "max_count", "max_amount"})




# -- limits --------------------------------------------------------------------------------------


def _rules(value: Iterable[LimitRule]) -> tuple[LimitRule, ...]:
    if isinstance(value, str | bytes | Mapping) or not isinstance(value, Iterable):
        raise InvalidInputError("rules", "must be a sequence of LimitRule", value)
    items = tuple(value)
    keys: set[str] = set()
    for item in items:
        if not isinstance(item, LimitRule):
            raise InvalidInputError("rules", "must hold LimitRule values only", item)
        if item.key in keys:
            raise InvalidInputError(
                "rules", f"has two rules for {item.key!r} (one per operation and window)", value
            )
        keys.add(item.key)
    return items


def _max_balance(value: Money | None) -> Money | None:
    return _positive_money(value, "max_balance")


@attrs.frozen(kw_only=True)
class Limits:
    """A tenant's limits, or a wallet's override of them: ``rules`` (at most one per operation
    and window, see :attr:`LimitRule.key`) and ``max_balance``, the most a wallet may hold
    (positive; ``None`` for no maximum). ``Limits()`` limits nothing.

    Every amount is in one currency. Raises ``InvalidInputError("rules", ...)`` for a
    non-rule or two rules with the same key, ``InvalidAmountError("max_balance", ...)``, and
    ``CurrencyMismatchError`` (field ``"limits"``) for amounts in two currencies.
    """

    rules: tuple[LimitRule, ...] = attrs.field(default=(), converter=_rules)
    max_balance: Money | None = attrs.field(default=None, converter=_max_balance)

    def __attrs_post_init__(self) -> None:
        currency = None
        for amount in self._amounts():
            if currency is None:
                currency = amount.currency
            elif amount.currency != currency:
                raise CurrencyMismatchError(currency, amount.currency, "limits")

    def _amounts(self) -> list[Money]:
        amounts = [r.max_amount for r in self.rules if r.max_amount is not None]
        if self.max_balance is not None:
            amounts.append(self.max_balance)
        return amounts

    @property
    def currency(self) -> str | None:
        """The currency of every amount here; ``None`` when no bound is an amount."""
        amounts = self._amounts()
        return amounts[0].currency if amounts else None

    def rules_for(self, operation: Operation) -> tuple[LimitRule, ...]:
        """The rules of ``operation``, in rule order (empty for an operation never limited)."""
        return tuple(r for r in self.rules if r.operation == operation)

    def merged(self, override: Limits) -> Limits:
        """The effective limits of a wallet with ``override``, always the stricter of the two:
        each of these rules met by an override rule of the same key keeps the lower of each
        bound (a bound only one of them sets is kept), then the override's other rules in their
        order; the lower ``max_balance`` of the two that are set.

        So an override made when the tenant's limits were looser never loosens them after the
        tenant lowers them. Raises ``InvalidInputError("override", ...)`` for a non-``Limits``
        and ``CurrencyMismatchError`` when the amounts are in two currencies.
        """
        override = _limits(override, "override")
        replacing = {r.key: r for r in override.rules}
        base_keys = {r.key for r in self.rules}
        rules = [_stricter(r, replacing[r.key]) if r.key in replacing else r
                 for r in self.rules]
        rules.extend(r for r in override.rules if r.key not in base_keys)
        mine, theirs = self.max_balance, override.max_balance
        if mine is None or theirs is None or mine.currency != theirs.currency:
            # One of them (or two currencies, which the constructor refuses as ever).
            return Limits(rules=rules, max_balance=theirs if theirs is not None else mine)
        return Limits(rules=rules, max_balance=min(mine, theirs))

    def looser_than(self, base: Limits) -> tuple[str, ...]:
        """Every way these limits, as an override of ``base``, are looser than ``base``, one
        phrase each; empty when they are only stricter or equal.

        Looser is: a rule with the key of a base rule that allows a higher count or amount
        (``"spends per day in Europe/Nicosia: at most 5 instead of 3"``) or has no bound where
        the base rule has one (``"… : no amount bound instead of 100.00 EUR"``); a maximum
        balance above the base's (``"balance: at most 600.00 EUR instead of 500.00 EUR"``).
        Rules with a new key only add bounds and an unset ``max_balance`` keeps the base's, so
        neither is looser. Phrases follow the base's rule order, the balance last.

        Raises ``InvalidInputError("base", ...)`` for a non-``Limits`` and
        ``CurrencyMismatchError`` (field ``"limits"``) when the two are in different currencies.
        """
        base = _limits(base, "base")
        theirs, ours = base.currency, self.currency
        if theirs is not None and ours is not None and theirs != ours:
            raise CurrencyMismatchError(theirs, ours, "limits")
        mine = {r.key: r for r in self.rules}
        phrases: list[str] = []
        for old in base.rules:
            new = mine.get(old.key)
            if new is None:
                continue
            what = f"{_NOUNS[old.operation][1]} {old.window.describe()}"
            if old.max_count is not None:
                if new.max_count is None:
                    phrases.append(f"{what}: no count bound instead of {old.max_count}")
                elif new.max_count > old.max_count:
                    phrases.append(f"{what}: at most {new.max_count} instead of {old.max_count}")
            if old.max_amount is not None:
                if new.max_amount is None:
                    phrases.append(f"{what}: no amount bound instead of {old.max_amount}")
                elif new.max_amount > old.max_amount:
                    phrases.append(
                        f"{what}: at most {new.max_amount} instead of {old.max_amount}"
                    )
        if (
            base.max_balance is not None
            and self.max_balance is not None
            and self.max_balance > base.max_balance
        ):
            phrases.append(f"balance: at most {self.max_balance} instead of {base.max_balance}")
        return tuple(phrases)

    def to_data(self) -> dict[str, Any]:
        """JSON-able data: ``{"rules": [<LimitRule.to_data()>, ...], "max_balance":
        {"minor": 50000, "currency": "EUR"}}``; empty fields are left out, so ``Limits()`` is
        ``{}``. :meth:`from_data` rebuilds it exactly."""
        data: dict[str, Any] = {}
        if self.rules:
            data["rules"] = [rule.to_data() for rule in self.rules]
        if self.max_balance is not None:
            data["max_balance"] = _money_to_data(self.max_balance)
        return data

    @classmethod
    def from_data(cls, data: object) -> Limits:
        """Rebuild limits from :meth:`to_data` output, validating them like the constructor.

        Raises ``InvalidInputError`` (or a subclass) naming ``"limits"`` for a non-mapping or an
        unknown key, ``"rules"`` for a non-list, ``"rules[i].<field>"`` for a bad rule, and
        ``"max_balance"``.
        """
        fields = _mapping(data, "limits", frozenset({"rules", "max_balance"}))
        rules: list[LimitRule] = []
        raw = fields.get("rules", [])
        if not isinstance(raw, list):
            raise InvalidInputError("rules", "must be a list of rules", raw)
        for index, item in enumerate(raw):
            try:
                rules.append(LimitRule.from_data(item))
            except InvalidInputError as exc:
                raise _renamed(exc, f"rules[{index}].{exc.field}") from exc
        max_balance = None
        if "max_balance" in fields:
            max_balance = _money_from_data(fields["max_balance"], "max_balance")
        return cls(rules=rules, max_balance=max_balance)


def _renamed(exc: InvalidInputError, field: str) -> InvalidInputError:
    """``exc`` again, of the same class where its constructor allows, naming ``field``."""
    kind = type(exc) if type(exc) in _RENAMEABLE else InvalidInputError
    return kind(field, exc.rule, exc.value)


_RENAMEABLE: Final = frozenset(
    {InvalidInputError, InvalidAmountError, InvalidCurrencyError, InvalidTimeError}
)


def _limits(value: object, field: str) -> Limits:
    if not isinstance(value, Limits):
        raise InvalidInputError(field, "must be a Limits", value)
    return value


#: A bound: a count or an amount.
_B = TypeVar("_B", int, Money)


def _lower(a: _B | None, b: _B | None) -> _B | None:
    """The lower of two bounds; a bound only one of them sets."""
    if a is None:
        return b
    if b is None:
        return a
    return min(a, b)


def _stricter(base: LimitRule, override: LimitRule) -> LimitRule:
    """The rule of ``base``'s key that keeps the lower of each of the two rules' bounds."""
    return attrs.evolve(override, max_count=_lower(base.max_count, override.max_count),
                        max_amount=_lower(base.max_amount, override.max_amount))


def check_override(base: Limits, override: Limits) -> None:
    """Refuse an override that is looser than ``base`` in any way (see
    :meth:`Limits.looser_than`): raises ``InvalidInputError("limits", "<phrases>; an override
    may only be stricter", override)``, the phrases joined with ``"; "``. Also raises
    ``CurrencyMismatchError`` when the two are in different currencies, and
    ``InvalidInputError`` naming ``"base"`` or ``"override"`` for a non-``Limits``."""
    override = _limits(override, "override")
    phrases = override.looser_than(base)
    if phrases:
        raise InvalidInputError("limits", f"{'; '.join(phrases)}; {_OVERRIDE_RULE}", override)


# -- deciding ------------------------------------------------------------------------------------


def _count(value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidInputError("count", "must be a non-negative int", value)
    return value


def _total(value: Money) -> Money:
    if not isinstance(value, Money):
        raise InvalidAmountError("total", "must be a Money (use Money.of)", value)
    if value.is_negative():
        raise InvalidAmountError("total", "must not be negative", value)
    return value


@attrs.frozen
class Activity:
    """What a wallet already did of one operation in one rule's window: ``count`` operations
    (a non-negative int) adding up to ``total`` (non-negative money in the wallet's currency).
    Raises ``InvalidInputError("count", ...)`` and ``InvalidAmountError("total", ...)``."""

    count: int = attrs.field(converter=_count)
    total: Money = attrs.field(converter=_total)


def _optional_count_left(value: int | None) -> int | None:
    return None if value is None else _count(value)


def _amount_left(value: Money | None) -> Money | None:
    if value is None:
        return None
    return _total(value)


@attrs.frozen(kw_only=True)
class LimitBreach:
    """A limit an operation would break, and what was left of its allowance before it.

    ``rule`` is the :class:`LimitRule` (``None`` for the maximum balance); ``count_left`` the
    operations still allowed in the window (``None`` when the rule has no count bound, and for
    the balance); ``amount_left`` the money still allowed in the window, or for the balance how
    far below the maximum the balance was (``None`` when the rule has no amount bound). Neither
    is ever negative.
    """

    rule: LimitRule | None = attrs.field()
    count_left: int | None = attrs.field(default=None, converter=_optional_count_left)
    amount_left: Money | None = attrs.field(default=None, converter=_amount_left)
    max_balance: Money | None = attrs.field(default=None)

    def __attrs_post_init__(self) -> None:
        if self.rule is None:
            if not isinstance(self.max_balance, Money) or self.amount_left is None:
                raise InvalidInputError(
                    "max_balance", "a balance breach needs max_balance and amount_left", self
                )
            if self.count_left is not None:
                raise InvalidInputError("count_left", "must be None for a balance breach", self)
        elif not isinstance(self.rule, LimitRule):
            raise InvalidInputError("rule", "must be a LimitRule or None", self.rule)
        elif self.max_balance is not None:
            raise InvalidInputError("max_balance", "must be None for a rule breach", self)

    def describe(self) -> str:
        """The breach in words: ``"at most 3 spends per day in Europe/Nicosia: 1 left"``,
        ``"at most 100.00 EUR of top-ups per rolling 7 days: 20.00 EUR left"``, with both
        bounds ``"…: 1 spend and 20.00 EUR left"``, or ``"balance at most 500.00 EUR:
        40.00 EUR left"``. Amounts read as ``str(money)``, whatever the process locale."""
        if self.rule is None:
            return f"balance at most {self.max_balance}: {self.amount_left} left"
        singular, plural = _NOUNS[self.rule.operation]
        if self.count_left is not None and self.amount_left is not None:
            left = f"{_plural(self.count_left, singular, plural)} and {self.amount_left}"
        elif self.count_left is not None:
            left = str(self.count_left)
        else:
            left = str(self.amount_left)
        return f"{self.rule.describe()}: {left} left"


def _activity(value: object, currency: str) -> Activity:
    if not isinstance(value, Activity):
        raise InvalidInputError("activity", "must return an Activity", value)
    if value.total.currency != currency:
        raise CurrencyMismatchError(currency, value.total.currency, "activity")
    return value


def allowance(rule: LimitRule, activity: Activity) -> tuple[int | None, Money | None]:
    """What is left of ``rule``'s allowance after ``activity``: ``(count_left, amount_left)``,
    each ``None`` where the rule has no such bound and never negative (an allowance already
    overrun is zero). Raises ``InvalidInputError`` naming ``"rule"`` or ``"activity"``, and
    ``CurrencyMismatchError`` (field ``"activity"``) when the total is in another currency than
    the rule's amount."""
    if not isinstance(rule, LimitRule):
        raise InvalidInputError("rule", "must be a LimitRule", rule)
    if not isinstance(activity, Activity):
        raise InvalidInputError("activity", "must be an Activity", activity)
    count_left = None if rule.max_count is None else max(rule.max_count - activity.count, 0)
    amount_left = None
    if rule.max_amount is not None:
        maximum = rule.max_amount
        if activity.total.currency != maximum.currency:
            raise CurrencyMismatchError(maximum.currency, activity.total.currency, "activity")
        amount_left = max(maximum - activity.total, Money.zero(maximum.currency))
    return count_left, amount_left


def check(
    limits: Limits,
    operation: Operation,
    amount: Money,
    activity: Callable[[LimitRule], Activity],
) -> tuple[LimitBreach, ...]:
    """The rules of ``operation`` in ``limits`` that one more operation of ``amount`` would
    breach, in rule order, each with what was left of its allowance (see :func:`allowance`).

    ``activity(rule)`` says what the wallet already did of ``operation`` in the rule's window,
    that is recorded in ``[rule.window.start(at), at]`` for the decision instant ``at``; it is
    called once per rule of ``operation``, in order, and never for other rules. A count bound
    is breached when ``count + 1 > max_count``, an amount bound when
    ``total + amount > max_amount``: exactly reaching a bound is allowed. Any other operation
    (e.g. ``TRANSFER_IN``) is never limited and gives ``()``.

    Raises ``InvalidInputError`` naming ``"limits"``, ``"operation"`` or ``"activity"`` (a
    result that is not an :class:`Activity`), ``InvalidAmountError("amount", ...)`` unless
    ``amount`` is positive money, and ``CurrencyMismatchError`` when ``amount`` (field
    ``"amount"``) or an activity total (field ``"activity"``) is in another currency than the
    limits.
    """
    limits = _limits(limits, "limits")
    if not isinstance(operation, str):
        raise InvalidInputError("operation", "must be an Operation", operation)
    try:
        kind = Operation(operation)
    except ValueError as exc:
        raise InvalidInputError("operation", "must be an Operation", operation) from exc
    if not isinstance(amount, Money):
        raise InvalidAmountError("amount", "must be a Money (use Money.of)", amount)
    if not amount.is_positive():
        raise InvalidAmountError("amount", "must be positive", amount)
    if limits.currency is not None and amount.currency != limits.currency:
        raise CurrencyMismatchError(limits.currency, amount.currency, "amount")
    breaches: list[LimitBreach] = []
    for rule in limits.rules_for(kind):
        done = _activity(activity(rule), amount.currency)
        count_left, amount_left = allowance(rule, done)
        over_count = rule.max_count is not None and done.count + 1 > rule.max_count
        over_amount = (
            rule.max_amount is not None
            and done.total.minor_units + amount.minor_units > rule.max_amount.minor_units
        )
        if over_count or over_amount:
            breaches.append(
                LimitBreach(rule=rule, count_left=count_left, amount_left=amount_left)
            )
    return tuple(breaches)


def check_balance(
    limits: Limits, *, balance_before: Money, balance_after: Money
) -> LimitBreach | None:
    """The maximum-balance breach of an operation that takes the balance from
    ``balance_before`` to ``balance_after``, or ``None``.

    Breached when ``balance_after > max_balance`` and the operation raises the balance
    (``balance_after > balance_before``): an operation that does not raise it never breaches
    the maximum, so a wallet left above a lowered maximum can still spend. ``amount_left`` is
    ``max_balance - balance_before``, or zero when the balance was already at or above it.

    Raises ``InvalidInputError("limits", ...)``, ``InvalidAmountError`` naming
    ``"balance_before"`` or ``"balance_after"`` for a non-Money, and ``CurrencyMismatchError``
    (field ``"balance_after"``) when a balance is in another currency than ``max_balance``.
    """
    limits = _limits(limits, "limits")
    for field, value in (("balance_before", balance_before), ("balance_after", balance_after)):
        if not isinstance(value, Money):
            raise InvalidAmountError(field, "must be a Money (use Money.of)", value)
    if balance_before.currency != balance_after.currency:
        raise CurrencyMismatchError(
            balance_before.currency, balance_after.currency, "balance_after"
        )
    maximum = limits.max_balance
    if maximum is None:
        return None
    if balance_after.currency != maximum.currency:
        raise CurrencyMismatchError(maximum.currency, balance_after.currency, "balance_after")
    if balance_after <= maximum or balance_after <= balance_before:
        return None
    left = min(max(maximum.minor_units - balance_before.minor_units, 0), MAX_MINOR_UNITS)
    return LimitBreach(
        rule=None, amount_left=Money(left, maximum.currency), max_balance=maximum
    )
