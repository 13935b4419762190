"""Automatic top-ups: when to charge the owner's payment method, how much, and what to do with
each answer the payment gateway gives (layer 5: pure decisions; the service drives them).

**The gateway.** The host implements :class:`PaymentGateway`: ``charge`` a payment method an
amount under an idempotency key, and ``lookup`` the current outcome of an earlier charge. An
outcome is :class:`ChargeStatus` ``SUCCEEDED``, ``DECLINED_HARD`` (do not try this method again),
``DECLINED_SOFT`` (try again later) or ``UNKNOWN`` (a timeout: the money may or may not have
moved).

**The rule.** A :class:`TopUpRule` says when a wallet is topped up and by how much:

* :func:`threshold_top_up` -- the open balance fell to or below ``threshold``: charge the fixed
  ``amount``, or what brings the balance up to ``target``;
* :func:`scheduled_top_up` -- an occurrence of the ``schedule`` (an RFC 5545 RRULE in the IANA
  zone ``schedule_zone``; :func:`next_occurrence` finds them);
* :func:`spend_top_up` -- at spend time, when ``at_spend`` is on and a credit-only spend is short:
  charge the shortfall (at least ``minimum``), then spend, all or nothing.

No automatic top-up ever charges less than ``minimum``.

**The attempts.** A :class:`TopUpIntent` is one automatic top-up of one wallet: its amount, and
the :class:`Attempt` s made to charge it. :func:`next_step` reads the intent and the rule and
answers with one :data:`Step`; the service performs it and feeds the result back with
:func:`start_attempt`, :func:`record_outcome`, :func:`mark_credited` or :func:`give_up`, storing
the new intent each time (:meth:`TopUpIntent.to_data` / :meth:`TopUpIntent.from_data`). The
rules the state machine enforces:

* the primary method first; the backup only once the primary was definitely declined (a hard
  decline, or ``max_soft_attempts`` soft declines);
* a method is never charged again after a hard decline;
* after a soft decline, wait ``soft_decline_backoff``, then charge the same method again under a
  new key;
* an attempt whose outcome is unknown (or never came back) is settled under its own key, with
  ``lookup`` (or by re-sending the same charge, which the gateway contract makes safe); no other
  charge is made while it is unsettled -- in particular never the backup;
* the credit is posted only for a succeeded charge, exactly once: :func:`next_step` answers
  :class:`Credit` until :func:`mark_credited` records that it was posted, and the service posts it
  under :func:`credit_key`, so a crash between the two replays as a no-op. A success reported
  twice, or any report after the intent finished, changes nothing.

**What the service does** (this module cannot see wallets or storage):

* at most one automatic top-up in flight per wallet: no new intent while one is ``PENDING`` or
  ``SUCCEEDED`` but not yet credited;
* a top-up's own credit never triggers another top-up: the threshold is checked after spends and
  fees, never after posting the credit of an automatic top-up;
* a spend-time top-up charges, credits, then spends in one go; when the charge does not succeed,
  the spend is refused and nothing is written but the intent's record.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, Final, Protocol, TypeAlias, TypeVar, runtime_checkable

import attrs

from prepaid_wallet._data import ZONE_RULE
from prepaid_wallet._data import instant_from_text as _instant_from_text
from prepaid_wallet._data import money_from_data as _money_from_data
from prepaid_wallet._data import zone as _zone
from prepaid_wallet.clock import require_aware
from prepaid_wallet.errors import (
    CurrencyMismatchError,
    InvalidAmountError,
    InvalidInputError,
    InvalidTimeError,
)
from prepaid_wallet.money import Money

__all__ = [
    "Attempt",
    "Charge",
    "ChargeOutcome",
    "ChargeStatus",
    "Credit",
    "Done",
    "GiveUp",
    "GiveUpReason",
    "IntentStatus",
    "PaymentGateway",
    "PaymentMethods",
    "Settle",
    "Step",
    "TopUpIntent",
    "TopUpReason",
    "TopUpRule",
    "Wait",
    "attempt_key",
    "credit_key",
    "give_up",
    "mark_credited",
    "next_occurrence",
    "next_step",
    "record_outcome",
    "scheduled_top_up",
    "spend_top_up",
    "start_attempt",
    "threshold_top_up",
]

_DATA_VERSION: Final = 1


_E = TypeVar("_E", bound=StrEnum)


def _enum(kind: type[_E], value: object, field: str, *, prefix: str = "must be one of") -> _E:
    """``value`` as a member of ``kind``; ``InvalidInputError(field, ...)`` otherwise."""
    if isinstance(value, str):
        try:
            return kind(value)
        except ValueError:
            pass
    raise InvalidInputError(field, f"{prefix} {', '.join(m.value for m in kind)}", value)


# -- the gateway ---------------------------------------------------------------------------------


class ChargeStatus(StrEnum):
    """What became of a charge.

    ``SUCCEEDED`` the money moved; ``DECLINED_HARD`` refused for good (a closed account, a
    stolen card): the method is not charged again for this top-up; ``DECLINED_SOFT`` refused for
    now (insufficient funds, rate limit): the same method may be charged again after a back-off;
    ``UNKNOWN`` no answer (a timeout): the money may have moved, so the charge must be settled
    under its key before anything else is charged.
    """

    SUCCEEDED = "succeeded"
    DECLINED_HARD = "declined_hard"
    DECLINED_SOFT = "declined_soft"
    UNKNOWN = "unknown"


def _status(value: object) -> ChargeStatus:
    return _enum(ChargeStatus, value, "status")


def _optional_text(value: object, field: str) -> str | None:
    if value is not None and not isinstance(value, str):
        raise InvalidInputError(field, "must be a string or None", value)
    return value


def _reference(value: object) -> str | None:
    return _optional_text(value, "reference")


def _message(value: object) -> str | None:
    return _optional_text(value, "message")


@attrs.frozen
class ChargeOutcome:
    """The gateway's answer about one charge: ``status``, the provider's ``reference`` for the
    charge (if any) and a human-readable ``message`` (if any)."""

    status: ChargeStatus = attrs.field(converter=_status)
    reference: str | None = attrs.field(default=None, converter=_reference)
    message: str | None = attrs.field(default=None, converter=_message)

    @property
    def is_definite(self) -> bool:
        """True for every status but ``UNKNOWN``."""
        return self.status is not ChargeStatus.UNKNOWN

    def to_data(self) -> dict[str, Any]:
        """``{"status": "succeeded", "reference": "ch_1", "message": None}``."""
        return {"status": self.status.value, "reference": self.reference, "message": self.message}

    @classmethod
    def from_data(cls, data: object) -> ChargeOutcome:
        """Rebuild an outcome from :meth:`to_data` output; ``InvalidInputError`` naming the
        field for malformed data."""
        fields = _mapping(data, "outcome", frozenset({"status", "reference", "message"}))
        return cls(fields["status"], fields["reference"], fields["message"])


@runtime_checkable
class PaymentGateway(Protocol):
    """The host's payment provider, as automatic top-ups use it.

    **Contract.** ``charge`` under an idempotency key the gateway has already seen must never
    charge again: it returns the outcome of the first charge under that key (or ``UNKNOWN``
    while that is still unknown), so re-sending a charge whose answer was lost is always safe.
    A key is only ever reused with the same method and amount.
    """

    def charge(self, *, method: str, amount: Money, idempotency_key: str) -> ChargeOutcome:
        """Charge ``amount`` (positive) to the payment method ``method`` under
        ``idempotency_key``, and return what became of it. A timeout is returned as
        ``UNKNOWN``, not raised."""
        ...

    def lookup(self, *, idempotency_key: str) -> ChargeOutcome:
        """The current outcome of the charge made under ``idempotency_key``, to settle an
        ``UNKNOWN`` one: ``UNKNOWN`` while the provider does not know yet (or never received
        the charge: re-send it under the same key)."""
        ...


# -- the rule ------------------------------------------------------------------------------------


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


# -- the attempts --------------------------------------------------------------------------------


class TopUpReason(StrEnum):
    """Why an automatic top-up was started: the ``threshold``, an occurrence of the
    ``schedule``, or a credit-only ``spend`` that was short."""

    THRESHOLD = "threshold"
    SCHEDULE = "schedule"
    SPEND = "spend"


class IntentStatus(StrEnum):
    """``PENDING`` still charging; ``SUCCEEDED`` one attempt succeeded (see
    :attr:`TopUpIntent.credited`); ``FAILED`` given up, nothing was charged."""

    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class GiveUpReason(StrEnum):
    """Why an intent was given up: the last method was hard-declined, every method used up its
    soft declines, or the wallet's limits no longer allow the top-up."""

    HARD_DECLINED = "hard_declined"
    SOFT_DECLINES_EXHAUSTED = "soft_declines_exhausted"
    #: Charging it would breach the wallet's top-up limits or maximum balance (checked when
    #: the intent starts and again, under the wallet's lock, before every charge).
    LIMIT_EXCEEDED = "limit_exceeded"


def attempt_key(intent_id: str, method: str, number: int) -> str:
    """The idempotency key of attempt ``number`` (1, 2, ...) on ``method`` for the intent
    ``intent_id``: ``f"{intent_id}:{method}:{number}"``. Deterministic, so a crashed service
    re-derives the key it used; unique because intent ids contain no ``:``."""
    return f"{intent_id}:{method}:{number}"


def credit_key(intent: TopUpIntent) -> str:
    """The idempotency key the service posts an intent's credit under: ``f"top-up:{id}"``.
    Posting twice under it writes once."""
    return f"top-up:{intent.id}"


def _optional_instant(value: object, field: str) -> datetime | None:
    return None if value is None else require_aware(value, field)


def _optional_outcome(value: object) -> ChargeOutcome | None:
    if value is not None and not isinstance(value, ChargeOutcome):
        raise InvalidInputError("outcome", "must be a ChargeOutcome or None", value)
    return value


def _started_at(value: object) -> datetime:
    return require_aware(value, "started_at")


def _settled_at(value: object) -> datetime | None:
    return _optional_instant(value, "settled_at")


def _attempt_method(value: object) -> str:
    return _method_name(value, "method")


@attrs.frozen
class Attempt:
    """One charge of a :class:`TopUpIntent`: the ``method`` charged under ``idempotency_key``
    (see :func:`attempt_key`), when it was ``started_at``, the last ``outcome`` heard (None:
    sent, no answer yet) and when it was ``settled_at`` (the instant a definite outcome was
    recorded; None while the outcome is missing or ``UNKNOWN``). Instants are UTC."""

    method: str = attrs.field(converter=_attempt_method)
    idempotency_key: str
    started_at: datetime = attrs.field(converter=_started_at)
    outcome: ChargeOutcome | None = attrs.field(default=None, converter=_optional_outcome)
    settled_at: datetime | None = attrs.field(default=None, converter=_settled_at)

    def __attrs_post_init__(self) -> None:
        if not isinstance(self.idempotency_key, str) or not self.idempotency_key:
            raise InvalidInputError("idempotency_key", "must be a non-empty string",
                                    self.idempotency_key)
        definite = self.outcome is not None and self.outcome.is_definite
        if definite != (self.settled_at is not None):
            raise InvalidTimeError(
                "settled_at", "must be set exactly when the outcome is definite", self.settled_at
            )
        if self.settled_at is not None and self.settled_at < self.started_at:
            raise InvalidTimeError("settled_at", "must not be before started_at", self.settled_at)

    @property
    def settled(self) -> bool:
        """True once a definite outcome (not ``UNKNOWN``) was recorded."""
        return self.settled_at is not None

    @property
    def status(self) -> ChargeStatus | None:
        """The last status heard, None while no answer came."""
        return None if self.outcome is None else self.outcome.status

    def to_data(self) -> dict[str, Any]:
        """The attempt as JSON-able data (instants ISO 8601 in UTC)."""
        return {
            "method": self.method,
            "idempotency_key": self.idempotency_key,
            "started_at": self.started_at.isoformat(),
            "outcome": None if self.outcome is None else self.outcome.to_data(),
            "settled_at": None if self.settled_at is None else self.settled_at.isoformat(),
        }

    @classmethod
    def from_data(cls, data: object) -> Attempt:
        """Rebuild an attempt from :meth:`to_data` output, validating it."""
        fields = _mapping(data, "attempt", _ATTEMPT_KEYS)
        outcome = fields["outcome"]
        return cls(
            method=fields["method"],
            idempotency_key=fields["idempotency_key"],
            started_at=_instant_from_text(fields["started_at"], "started_at"),
            outcome=None if outcome is None else ChargeOutcome.from_data(outcome),
            settled_at=(
                None
                if fields["settled_at"] is None
                else _instant_from_text(fields["settled_at"], "settled_at")
            ),
        )


_ATTEMPT_KEYS: Final = frozenset({"method", "idempotency_key", "started_at", "outcome",
                                  "settled_at"})


def _intent_id(value: object) -> str:
    if not isinstance(value, str) or not value.strip() or ":" in value or len(value) > 200:
        raise InvalidInputError(
            "id", "must be non-blank text of at most 200 characters without ':'", value
        )
    return value


def _wallet_id(value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidInputError("wallet_id", "must be non-blank text", value)
    return value


def _intent_amount(value: object) -> Money:
    if not isinstance(value, Money):
        raise InvalidAmountError("amount", "must be a Money (use Money.of)", value)
    if not value.is_positive():
        raise InvalidAmountError("amount", "must be positive", value)
    return value


def _reason(value: object) -> TopUpReason:
    return _enum(TopUpReason, value, "reason")


def _created_at(value: object) -> datetime:
    return require_aware(value, "created_at")


def _attempts(value: object) -> tuple[Attempt, ...]:
    if isinstance(value, str | bytes) or not isinstance(value, tuple | list):
        raise InvalidInputError("attempts", "must be a sequence of Attempt", value)
    items = tuple(value)
    if not all(isinstance(item, Attempt) for item in items):
        raise InvalidInputError("attempts", "must hold Attempt values only", value)
    return items


def _intent_status(value: object) -> IntentStatus:
    return _enum(IntentStatus, value, "status")


def _failure(value: object) -> GiveUpReason | None:
    if value is None:
        return None
    return _enum(GiveUpReason, value, "failure", prefix="must be None or one of")


def _finished_at(value: object) -> datetime | None:
    return _optional_instant(value, "finished_at")


@attrs.frozen(kw_only=True)
class TopUpIntent:
    """One automatic top-up of one wallet, and the attempts made to charge it.

    ``id`` (no ``:``; it prefixes every attempt's key), ``wallet_id``, ``amount`` (positive),
    ``reason`` (:class:`TopUpReason`), ``created_at``; ``attempts`` in the order they were
    started; ``status``; ``credited`` (the service posted the credit: :func:`mark_credited`);
    ``failure`` (why it was given up) and ``finished_at`` (when it succeeded or was given up).
    Start one with ``TopUpIntent(id=..., wallet_id=..., amount=..., reason=..., created_at=now)``.

    The constructor checks that the parts agree (each key is the one :func:`attempt_key`
    derives, at most the last attempt is unsettled, a success ends the attempts and makes the
    intent ``SUCCEEDED``, ...), so a stored intent that was tampered with fails to load with
    ``InvalidInputError`` naming the field.
    """

    id: str = attrs.field(converter=_intent_id)
    wallet_id: str = attrs.field(converter=_wallet_id)
    amount: Money = attrs.field(converter=_intent_amount)
    reason: TopUpReason = attrs.field(converter=_reason)
    created_at: datetime = attrs.field(converter=_created_at)
    attempts: tuple[Attempt, ...] = attrs.field(default=(), converter=_attempts)
    status: IntentStatus = attrs.field(default=IntentStatus.PENDING, converter=_intent_status)
    credited: bool = False
    failure: GiveUpReason | None = attrs.field(default=None, converter=_failure)
    finished_at: datetime | None = attrs.field(default=None, converter=_finished_at)

    def __attrs_post_init__(self) -> None:
        self._check_attempts()
        if not isinstance(self.credited, bool):
            raise InvalidInputError("credited", "must be a bool", self.credited)
        succeeded = self.succeeded_attempt is not None
        if succeeded != (self.status is IntentStatus.SUCCEEDED):
            raise InvalidInputError(
                "status", "must be succeeded exactly when an attempt succeeded", self.status
            )
        if self.credited and self.status is not IntentStatus.SUCCEEDED:
            raise InvalidInputError("credited", "only a succeeded intent is credited", True)
        if (self.failure is not None) != (self.status is IntentStatus.FAILED):
            raise InvalidInputError(
                "failure", "must be set exactly when the intent failed", self.failure
            )
        if self.status is IntentStatus.FAILED and self.unsettled_attempt is not None:
            raise InvalidInputError(
                "status", "an intent with an unsettled attempt cannot have failed", self.status
            )
        finished = self.status is not IntentStatus.PENDING
        if finished != (self.finished_at is not None):
            raise InvalidTimeError(
                "finished_at", "must be set exactly when the intent is finished", self.finished_at
            )
        if self.finished_at is not None and self.finished_at < self.created_at:
            raise InvalidTimeError("finished_at", "must not be before created_at",
                                   self.finished_at)

    def _check_attempts(self) -> None:
        counts: dict[str, int] = {}
        last = len(self.attempts) - 1
        for index, attempt in enumerate(self.attempts):
            counts[attempt.method] = counts.get(attempt.method, 0) + 1
            expected = attempt_key(self.id, attempt.method, counts[attempt.method])
            if attempt.idempotency_key != expected:
                raise InvalidInputError(
                    f"attempts[{index}].idempotency_key", f"must be {expected!r}",
                    attempt.idempotency_key,
                )
            if attempt.started_at < self.created_at:
                raise InvalidTimeError(f"attempts[{index}].started_at",
                                       "must not be before created_at", attempt.started_at)
            if index < last and not attempt.settled:
                raise InvalidInputError(f"attempts[{index}].outcome",
                                        "only the last attempt may be unsettled", attempt.outcome)
            if index < last and attempt.status is ChargeStatus.SUCCEEDED:
                raise InvalidInputError(f"attempts[{index}].outcome",
                                        "no attempt follows a success", attempt.outcome)

    # -- views -----------------------------------------------------------------------------------

    @property
    def unsettled_attempt(self) -> Attempt | None:
        """The attempt whose outcome is missing or ``UNKNOWN`` (only ever the last), or None."""
        if self.attempts and not self.attempts[-1].settled:
            return self.attempts[-1]
        return None

    @property
    def succeeded_attempt(self) -> Attempt | None:
        """The attempt that succeeded (only ever the last), or None."""
        if self.attempts and self.attempts[-1].status is ChargeStatus.SUCCEEDED:
            return self.attempts[-1]
        return None

    def attempt(self, idempotency_key: str) -> Attempt:
        """The attempt made under ``idempotency_key``; ``InvalidInputError`` naming
        ``idempotency_key`` if this intent has none."""
        return self.attempts[self._index(idempotency_key)]

    def _index(self, idempotency_key: str) -> int:
        for index, attempt in enumerate(self.attempts):
            if attempt.idempotency_key == idempotency_key:
                return index
        raise InvalidInputError(
            "idempotency_key", f"must name an attempt of top-up intent {self.id!r}",
            idempotency_key,
        )

    # -- data ------------------------------------------------------------------------------------

    def to_data(self) -> dict[str, Any]:
        """The intent as JSON-able data; :meth:`from_data` rebuilds it exactly.

        Money is ``{"minor": 2000, "currency": "EUR"}``, instants ISO 8601 strings in UTC,
        enums their values, attempts a list of :meth:`Attempt.to_data` dicts; ``"version"`` is
        the layout's version (1).
        """
        return {
            "version": _DATA_VERSION,
            "id": self.id,
            "wallet_id": self.wallet_id,
            "amount": {"minor": self.amount.minor_units, "currency": self.amount.currency},
            "reason": self.reason.value,
            "created_at": self.created_at.isoformat(),
            "attempts": [attempt.to_data() for attempt in self.attempts],
            "status": self.status.value,
            "credited": self.credited,
            "failure": None if self.failure is None else self.failure.value,
            "finished_at": None if self.finished_at is None else self.finished_at.isoformat(),
        }

    @classmethod
    def from_data(cls, data: object) -> TopUpIntent:
        """Rebuild an intent from :meth:`to_data` output, validating it like the constructor.

        Raises ``InvalidInputError`` (or a subclass) naming the field: ``"intent"`` for data
        that is not a mapping with exactly the expected keys or of another version,
        ``"attempts[i].<field>"`` for a bad attempt.
        """
        fields = _mapping(data, "intent", _INTENT_KEYS)
        if type(fields["version"]) is not int or fields["version"] != _DATA_VERSION:
            raise InvalidInputError("intent", f"must be version {_DATA_VERSION}",
                                    fields["version"])
        raw = fields["attempts"]
        if not isinstance(raw, list):
            raise InvalidInputError("attempts", "must be a list of attempts", raw)
        attempts = []
        for index, item in enumerate(raw):
            try:
                attempts.append(Attempt.from_data(item))
            except InvalidInputError as exc:
                raise InvalidInputError(f"attempts[{index}].{exc.field}", exc.rule,
                                        exc.value) from exc
        finished = fields["finished_at"]
        return cls(
            id=fields["id"],
            wallet_id=fields["wallet_id"],
            amount=_money_from_data(fields["amount"], "amount"),
            reason=fields["reason"],
            created_at=_instant_from_text(fields["created_at"], "created_at"),
            attempts=tuple(attempts),
            status=fields["status"],
            credited=fields["credited"],
            failure=fields["failure"],
            finished_at=None if finished is None else _instant_from_text(finished, "finished_at"),
        )


_INTENT_KEYS: Final = frozenset(
    {"version", "id", "wallet_id", "amount", "reason", "created_at", "attempts", "status",
     "credited", "failure", "finished_at"}
)


# -- steps ---------------------------------------------------------------------------------------


@attrs.frozen
class Charge:
    """Start a new attempt: :func:`start_attempt` (store it), then ``gateway.charge(method=...,
    amount=..., idempotency_key=...)`` and :func:`record_outcome` with the answer."""

    method: str
    idempotency_key: str
    amount: Money


@attrs.frozen
class Settle:
    """An attempt's outcome is unknown or never came back: ask ``gateway.lookup`` under
    ``idempotency_key`` (or re-send the charge of ``method`` under the same key, which never
    charges twice) and :func:`record_outcome` with the answer. Nothing else is charged
    meanwhile."""

    idempotency_key: str
    method: str


@attrs.frozen
class Wait:
    """A soft decline's back-off: nothing to do before ``until`` (UTC)."""

    until: datetime


@attrs.frozen
class Credit:
    """``attempt`` succeeded: post ``amount`` to the wallet under the idempotency key
    ``idempotency_key`` (:func:`credit_key`), then :func:`mark_credited`."""

    attempt: Attempt
    amount: Money
    idempotency_key: str


@attrs.frozen
class GiveUp:
    """No method is left to charge: :func:`give_up` with this step."""

    reason: GiveUpReason


@attrs.frozen
class Done:
    """Nothing left to do: the intent was credited, or given up."""


Step: TypeAlias = Charge | Settle | Wait | Credit | GiveUp | Done
"""What :func:`next_step` asks the service to do next."""


def _check_intent(intent: object) -> TopUpIntent:
    if not isinstance(intent, TopUpIntent):
        raise InvalidInputError("intent", "must be a TopUpIntent", intent)
    return intent


def next_step(intent: TopUpIntent, rule: TopUpRule, now: datetime) -> Step:
    """What to do next with ``intent`` under ``rule`` at ``now`` (an aware instant).

    * a failed intent, or a succeeded one already credited: :class:`Done`;
    * a succeeded intent not yet credited: :class:`Credit`;
    * an attempt without a definite outcome: :class:`Settle` under its key (whatever the rule
      says: the rule may have changed since it was started);
    * otherwise the first of ``rule.methods`` still usable -- never tried: :class:`Charge`
      attempt 1; last attempt soft-declined, fewer than ``max_soft_attempts`` on it:
      :class:`Wait` until ``settled_at + soft_decline_backoff``, then :class:`Charge` the next
      attempt number; a method hard-declined or out of soft attempts is skipped;
    * no usable method left: :class:`GiveUp` with the reason of the last method.

    Reads the rule as it is now. Raises ``CurrencyMismatchError`` naming ``amount`` when the
    intent's currency is not the rule's, ``InvalidTimeError`` for a naive ``now``.
    """
    intent = _check_intent(intent)
    if not isinstance(rule, TopUpRule):
        raise InvalidInputError("rule", "must be a TopUpRule", rule)
    now = require_aware(now, "now")
    if intent.status is IntentStatus.FAILED:
        return Done()
    succeeded = intent.succeeded_attempt
    if succeeded is not None:
        if intent.credited:
            return Done()
        return Credit(succeeded, intent.amount, credit_key(intent))
    if intent.amount.currency != rule.currency:
        raise CurrencyMismatchError(rule.currency, intent.amount.currency, "amount")
    unsettled = intent.unsettled_attempt
    if unsettled is not None:
        return Settle(unsettled.idempotency_key, unsettled.method)
    reason = GiveUpReason.HARD_DECLINED
    for method in rule.methods.ordered:
        tried = [attempt for attempt in intent.attempts if attempt.method == method]
        if not tried:
            return Charge(method, attempt_key(intent.id, method, 1), intent.amount)
        last = tried[-1]
        if last.status is ChargeStatus.DECLINED_HARD:
            reason = GiveUpReason.HARD_DECLINED
            continue
        if len(tried) >= rule.max_soft_attempts:
            reason = GiveUpReason.SOFT_DECLINES_EXHAUSTED
            continue
        assert last.settled_at is not None  # every attempt is settled here
        until = last.settled_at + rule.soft_decline_backoff
        if now < until:
            return Wait(until)
        return Charge(method, attempt_key(intent.id, method, len(tried) + 1), intent.amount)
    return GiveUp(reason)


def _require_settled(intent: TopUpIntent, step: object) -> None:
    """``InvalidInputError`` naming ``step`` unless ``intent`` is pending with every attempt
    settled (the state in which a next step may be taken)."""
    if intent.status is not IntentStatus.PENDING:
        raise InvalidInputError("step", f"the intent is {intent.status.value}, not pending", step)
    if intent.unsettled_attempt is not None:
        raise InvalidInputError("step", "the last attempt must be settled first", step)


def start_attempt(intent: TopUpIntent, step: Charge, now: datetime) -> TopUpIntent:
    """``intent`` with the attempt ``step`` describes started at ``now``: store it *before*
    calling the gateway, so a crash leaves an attempt to settle, never a charge nobody knows of.

    Raises ``InvalidInputError`` naming ``step`` unless the intent is pending with every attempt
    settled and ``step`` is the next attempt on its method for this intent and amount (as
    :func:`next_step` returns it); ``InvalidTimeError`` for a naive ``now`` or one before
    ``created_at``.
    """
    intent = _check_intent(intent)
    if not isinstance(step, Charge):
        raise InvalidInputError("step", "must be a Charge from next_step", step)
    _require_settled(intent, step)
    if step.amount != intent.amount:
        raise InvalidInputError("step", "must charge the intent's amount", step)
    number = 1 + sum(1 for attempt in intent.attempts if attempt.method == step.method)
    expected = attempt_key(intent.id, step.method, number)
    if step.idempotency_key != expected:
        raise InvalidInputError("step", f"must use the key {expected!r}", step)
    attempt = Attempt(step.method, step.idempotency_key, now)
    return attrs.evolve(intent, attempts=(*intent.attempts, attempt))


def record_outcome(
    intent: TopUpIntent, idempotency_key: str, outcome: ChargeOutcome, now: datetime
) -> TopUpIntent:
    """``intent`` with ``outcome`` (heard at ``now``) applied to the attempt made under
    ``idempotency_key``.

    * An ``UNKNOWN`` outcome leaves the attempt unsettled (it is still to be settled).
    * A definite outcome settles the attempt at ``now``; ``SUCCEEDED`` also makes the intent
      ``SUCCEEDED`` (finished at ``now``).
    * Changes nothing, and returns ``intent`` itself, for an attempt already settled (a success
      reported twice, a repeated decline) and for any report once the intent is finished (a late
      report after a success or after giving up). A report that *contradicts* a settled
      outcome is ignored too; the service may compare ``attempt(key).outcome`` to spot it.

    Raises ``InvalidInputError`` naming ``idempotency_key`` for a key of no attempt of this
    intent, ``outcome`` for something that is not a :class:`ChargeOutcome`, and
    ``InvalidTimeError`` for a naive ``now`` or one before the attempt started.
    """
    intent = _check_intent(intent)
    index = intent._index(idempotency_key)
    if not isinstance(outcome, ChargeOutcome):
        raise InvalidInputError("outcome", "must be a ChargeOutcome", outcome)
    now = require_aware(now, "now")
    attempt = intent.attempts[index]
    if intent.status is not IntentStatus.PENDING or attempt.settled or attempt.outcome == outcome:
        return intent
    if not outcome.is_definite:
        updated = attrs.evolve(attempt, outcome=outcome)
        return attrs.evolve(intent, attempts=_replace(intent.attempts, index, updated))
    if now < attempt.started_at:
        raise InvalidTimeError("now", "must not be before the attempt started", now)
    updated = attrs.evolve(attempt, outcome=outcome, settled_at=now)
    attempts = _replace(intent.attempts, index, updated)
    if outcome.status is ChargeStatus.SUCCEEDED:
        return attrs.evolve(
            intent, attempts=attempts, status=IntentStatus.SUCCEEDED, finished_at=now
        )
    return attrs.evolve(intent, attempts=attempts)


def _replace(attempts: tuple[Attempt, ...], index: int, attempt: Attempt) -> tuple[Attempt, ...]:
    return (*attempts[:index], attempt, *attempts[index + 1 :])


def mark_credited(intent: TopUpIntent) -> TopUpIntent:
    """``intent`` recorded as credited: the service posted its credit (under
    :func:`credit_key`). After this :func:`next_step` answers :class:`Done`. Marking an intent
    already credited returns it unchanged. Raises ``InvalidInputError`` naming ``intent`` unless
    the intent succeeded."""
    intent = _check_intent(intent)
    if intent.status is not IntentStatus.SUCCEEDED:
        raise InvalidInputError(
            "intent", f"only a succeeded intent is credited (this one is {intent.status.value})",
            intent.id,
        )
    if intent.credited:
        return intent
    return attrs.evolve(intent, credited=True)


def give_up(intent: TopUpIntent, step: GiveUp, now: datetime) -> TopUpIntent:
    """``intent`` given up at ``now`` for ``step.reason`` (a :class:`GiveUp` from
    :func:`next_step`): status ``FAILED``; nothing was charged. Raises ``InvalidInputError``
    naming ``step`` unless the intent is pending with every attempt settled (an unsettled
    attempt may yet succeed), and ``InvalidTimeError`` for a naive ``now``."""
    intent = _check_intent(intent)
    if not isinstance(step, GiveUp):
        raise InvalidInputError("step", "must be a GiveUp from next_step", step)
    _require_settled(intent, step)
    return attrs.evolve(
        intent, status=IntentStatus.FAILED, failure=step.reason,
        finished_at=require_aware(now, "now"),
    )


# -- data helpers (private) ----------------------------------------------------------------------


def _mapping(data: object, field: str, keys: frozenset[str]) -> Mapping[str, Any]:
    if not isinstance(data, Mapping):
        raise InvalidInputError(field, "must be a mapping (a JSON object)", data)
    if set(data) != keys:
        raise InvalidInputError(field, f"must have exactly the keys {sorted(keys)}", data)
    return data
