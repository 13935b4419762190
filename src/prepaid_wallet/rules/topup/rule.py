"""The rule of automatic top-ups: when a wallet is topped up and by how much
(:class:`TopUpRule`, charging its :class:`PaymentMethods`), and the amount it gives at the
threshold, at spend time and at an occurrence of its schedule (:func:`next_occurrence`)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Final

import attrs

from prepaid_wallet._data import ZONE_RULE
from prepaid_wallet._data import zone as _zone
from prepaid_wallet.clock import require_aware
from prepaid_wallet.errors import CurrencyMismatchError, InvalidAmountError, InvalidInputError
from prepaid_wallet.money import Money

__all__ = [
    "PaymentMethods",
    "TopUpRule",
    "next_occurrence",
    "scheduled_top_up",
    "spend_top_up",
    "threshold_top_up",
]


def _method_name(value: object, field: str) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > 200:
        raise InvalidInputError(
            field, "must be a non-blank payment method reference of at most 200 characters", value
        )
    return value


def _primary(value: object) -> str:
    return _method_name(value, "primary")


def _backup(value: object) -> str | None:
    return None if value is None else _method_name(value, "backup")


@attrs.frozen
class PaymentMethods:
    """The payment methods an automatic top-up charges: ``primary`` first, then ``backup``
    (optional, different from ``primary``) once the primary was definitely declined. The names
    are the host's references (a card token, a mandate id)."""

    primary: str = attrs.field(converter=_primary)
    backup: str | None = attrs.field(default=None, converter=_backup)

    def __attrs_post_init__(self) -> None:
        if self.backup == self.primary:
            raise InvalidInputError("backup", "must differ from primary", self.backup)

    @property
    def ordered(self) -> tuple[str, ...]:
        """The methods in the order they are charged."""
        return (self.primary,) if self.backup is None else (self.primary, self.backup)


_FREQ: Final = re.compile(r"(?:^|[;:\s])FREQ=([A-Z]+)", re.IGNORECASE)
_COARSE_FREQUENCIES: Final = frozenset({"DAILY", "WEEKLY", "MONTHLY", "YEARLY"})
_SCHEDULE_RULE: Final = (
    "must be one RFC 5545 RRULE (e.g. 'FREQ=MONTHLY;BYMONTHDAY=1'), repeating at most daily,"
    " without DTSTART (given by the caller) and with any UNTIL as a local time without 'Z'"
)
_VALIDATION_START: Final = datetime(2000, 1, 1)


def _schedule(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise InvalidInputError("schedule", _SCHEDULE_RULE, value)
    text = value.strip()
    frequency = _FREQ.search(text)
    if (
        frequency is None
        or frequency.group(1).upper() not in _COARSE_FREQUENCIES
        or "DTSTART" in text.upper()
    ):
        raise InvalidInputError("schedule", _SCHEDULE_RULE, value)
    from dateutil.rrule import rrule, rrulestr  # only schedules need it

    try:
        parsed = rrulestr(text, dtstart=_VALIDATION_START)
    except (ValueError, TypeError, KeyError, IndexError, AttributeError) as exc:
        raise InvalidInputError("schedule", _SCHEDULE_RULE, value) from exc
    if not isinstance(parsed, rrule):
        raise InvalidInputError("schedule", _SCHEDULE_RULE, value)
    return text


def _optional_money(value: object, field: str) -> Money | None:
    if value is not None and not isinstance(value, Money):
        raise InvalidAmountError(field, "must be a Money (use Money.of) or None", value)
    return value


@attrs.frozen(kw_only=True)
class TopUpRule:
    """How a wallet is topped up automatically. All amounts share one currency.

    * ``methods`` -- the :class:`PaymentMethods` charged;
    * ``threshold`` -- top up when the open balance is at or below it (None: never);
    * ``amount`` -- charge this fixed amount (at least ``minimum``), or
      ``target`` -- charge what brings the open balance up to it (above ``threshold``);
      exactly one of the two when ``threshold`` or ``schedule`` is set, never both;
    * ``minimum`` -- positive: the least any automatic top-up charges;
    * ``schedule`` -- an RRULE (``FREQ=DAILY`` or coarser, no ``DTSTART``) read in the IANA zone
      ``schedule_zone`` (required with a schedule, refused without one);
    * ``at_spend`` -- top up the shortfall at spend time;
    * ``soft_decline_backoff`` -- positive: how long to wait after a soft decline before charging
      the same method again (elapsed time; default one hour);
    * ``max_soft_attempts`` -- how many soft declines a method gets before the next method is
      tried (at least 1; default 3).

    A rule must top up on something: a threshold, a schedule or at spend time. Every violation
    raises ``InvalidInputError`` (``InvalidAmountError`` for amounts, ``CurrencyMismatchError``
    for mixed currencies) naming the field.
    """

    methods: PaymentMethods
    minimum: Money
    threshold: Money | None = None
    amount: Money | None = None
    target: Money | None = None
    schedule: str | None = attrs.field(default=None, converter=_schedule)
    schedule_zone: str | None = None
    at_spend: bool = False
    soft_decline_backoff: timedelta = timedelta(hours=1)
    max_soft_attempts: int = 3

    def __attrs_post_init__(self) -> None:
        if not isinstance(self.methods, PaymentMethods):
            raise InvalidInputError("methods", "must be PaymentMethods", self.methods)
        if not isinstance(self.minimum, Money):
            raise InvalidAmountError("minimum", "must be a Money (use Money.of)", self.minimum)
        if not self.minimum.is_positive():
            raise InvalidAmountError("minimum", "must be positive", self.minimum)
        currency = self.minimum.currency
        for field in ("threshold", "amount", "target"):
            value = _optional_money(getattr(self, field), field)
            if value is not None and value.currency != currency:
                raise CurrencyMismatchError(currency, value.currency, field)
        self._check_amounts()
        self._check_schedule()
        if not isinstance(self.at_spend, bool):
            raise InvalidInputError("at_spend", "must be a bool", self.at_spend)
        if self.threshold is None and self.schedule is None and not self.at_spend:
            raise InvalidInputError(
                "threshold", "a rule must top up on something: set threshold, schedule or at_spend"
            )
        backoff = self.soft_decline_backoff
        if not isinstance(backoff, timedelta) or backoff <= timedelta(0):
            raise InvalidInputError("soft_decline_backoff", "must be a positive timedelta", backoff)
        attempts = self.max_soft_attempts
        if isinstance(attempts, bool) or not isinstance(attempts, int) or attempts < 1:
            raise InvalidInputError("max_soft_attempts", "must be an int of at least 1", attempts)

    def _check_amounts(self) -> None:
        if self.amount is not None and self.target is not None:
            raise InvalidInputError("target", "must not be set together with amount")
        if self.amount is not None and self.amount < self.minimum:
            raise InvalidAmountError("amount", f"must be at least minimum ({self.minimum})",
                                     self.amount)
        needs_size = self.threshold is not None or self.schedule is not None
        if needs_size and self.amount is None and self.target is None:
            raise InvalidInputError(
                "amount", "a threshold or schedule needs either amount or target", None
            )
        if (
            self.target is not None
            and self.threshold is not None
            and self.target <= self.threshold
        ):
            raise InvalidAmountError("target", f"must be above threshold ({self.threshold})",
                                     self.target)

    def _check_schedule(self) -> None:
        if self.schedule is None:
            if self.schedule_zone is not None:
                raise InvalidInputError("schedule_zone", "must be None without a schedule",
                                        self.schedule_zone)
            return
        if self.schedule_zone is None:
            raise InvalidInputError("schedule_zone", "is required with a schedule; " + ZONE_RULE)
        _zone(self.schedule_zone, "schedule_zone")

    @property
    def currency(self) -> str:
        """The rule's currency (that of ``minimum``)."""
        return self.minimum.currency


def _same_currency(rule: TopUpRule, value: object, field: str) -> Money:
    if not isinstance(rule, TopUpRule):
        raise InvalidInputError("rule", "must be a TopUpRule", rule)
    if not isinstance(value, Money):
        raise InvalidAmountError(field, "must be a Money (use Money.of)", value)
    if value.currency != rule.currency:
        raise CurrencyMismatchError(rule.currency, value.currency, field)
    return value


def _at_least_minimum(rule: TopUpRule, amount: Money) -> Money:
    return amount if amount >= rule.minimum else rule.minimum


def threshold_top_up(rule: TopUpRule, open_balance: Money) -> Money | None:
    """The amount to charge because the open balance is ``open_balance``, or None.

    Due when the rule has a ``threshold`` and ``open_balance <= threshold`` (a balance equal to
    the threshold counts). The amount is the fixed ``amount``, or ``target - open_balance``;
    never below ``minimum``. Exact: nothing is rounded. Raises ``CurrencyMismatchError`` naming
    ``open_balance`` for another currency.
    """
    balance = _same_currency(rule, open_balance, "open_balance")
    if rule.threshold is None or balance > rule.threshold:
        return None
    return _size(rule, balance)


def _size(rule: TopUpRule, balance: Money) -> Money:
    if rule.amount is not None:
        return _at_least_minimum(rule, rule.amount)
    assert rule.target is not None  # the rule's validation guarantees one of the two
    return _at_least_minimum(rule, rule.target - balance)


def spend_top_up(rule: TopUpRule, shortfall: Money) -> Money | None:
    """The amount to charge at spend time for a credit-only spend short by ``shortfall``
    (positive): ``max(shortfall, minimum)``; None when ``at_spend`` is off. Raises
    ``InvalidAmountError`` for a shortfall that is not positive and ``CurrencyMismatchError``
    for another currency (both naming ``shortfall``)."""
    short = _same_currency(rule, shortfall, "shortfall")
    if not short.is_positive():
        raise InvalidAmountError("shortfall", "must be positive", shortfall)
    if not rule.at_spend:
        return None
    return _at_least_minimum(rule, short)


def scheduled_top_up(rule: TopUpRule, open_balance: Money) -> Money | None:
    """The amount to charge at an occurrence of the rule's schedule, or None.

    The fixed ``amount`` whatever the balance, or ``target - open_balance`` (at least
    ``minimum``), None when the balance is already at or above ``target``. None for a rule
    without a schedule. Raises ``CurrencyMismatchError`` naming ``open_balance``.
    """
    balance = _same_currency(rule, open_balance, "open_balance")
    if rule.schedule is None:
        return None
    if rule.target is not None and balance >= rule.target:
        return None
    return _size(rule, balance)


def next_occurrence(rule: TopUpRule, after: datetime, *, anchor: datetime) -> datetime | None:
    """The first occurrence of the rule's schedule strictly after ``after``, in UTC; None when
    the rule has no schedule or the schedule has ended (``COUNT``/``UNTIL``).

    The RRULE is read in local wall time of ``schedule_zone`` and starts at ``anchor`` (an aware
    instant, e.g. when the rule was set up: it fixes the phase of ``INTERVAL`` and the defaults
    such as the weekday of a weekly rule). A local time that does not exist (a DST gap) is read
    with the offset in force before the gap, so it lands just after the jump; a local time that
    happens twice is the first of the two. Raises ``InvalidTimeError`` for naive instants.
    """
    after_utc = require_aware(after, "after")
    anchor_utc = require_aware(anchor, "anchor")
    if not isinstance(rule, TopUpRule):
        raise InvalidInputError("rule", "must be a TopUpRule", rule)
    if rule.schedule is None or rule.schedule_zone is None:
        return None
    zone = _zone(rule.schedule_zone, "schedule_zone")
    from dateutil.rrule import rrulestr

    recurrence = rrulestr(rule.schedule, dtstart=anchor_utc.astimezone(zone).replace(tzinfo=None))
    # Start a day early: around a DST change the local wall clock and UTC disagree by hours.
    cursor: datetime = after_utc.astimezone(zone).replace(tzinfo=None) - timedelta(days=1)
    while True:
        candidate = recurrence.after(cursor)
        if candidate is None:
            return None
        instant = candidate.replace(tzinfo=zone, fold=0).astimezone(UTC)
        if instant > after_utc:
            return instant
        cursor = candidate
