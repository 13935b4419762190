"""One automatic top-up of one wallet and the attempts made to charge it (:class:`TopUpIntent`,
:class:`Attempt`): why it was started, how it ended, and the idempotency keys of its charges and
of its credit."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, Final

import attrs

from prepaid_wallet._data import instant_from_text as _instant_from_text
from prepaid_wallet._data import money_from_data as _money_from_data
from prepaid_wallet.clock import require_aware
from prepaid_wallet.errors import InvalidAmountError, InvalidInputError, InvalidTimeError
from prepaid_wallet.money import Money
from prepaid_wallet.rules.topup._fields import _enum, _mapping
from prepaid_wallet.rules.topup.gateway import ChargeOutcome, ChargeStatus
from prepaid_wallet.rules.topup.rule import _method_name

__all__ = [
    "Attempt",
    "GiveUpReason",
    "IntentStatus",
    "TopUpIntent",
    "TopUpReason",
    "attempt_key",
    "credit_key",
]

_DATA_VERSION: Final = 1


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
