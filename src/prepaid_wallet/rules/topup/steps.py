"""The state machine of an automatic top-up: :func:`next_step` reads an intent and the rule and
answers with one :data:`Step` (:class:`Charge`, :class:`Settle`, :class:`Wait`,
:class:`Credit`, :class:`GiveUp` or :class:`Done`); :func:`start_attempt`,
:func:`record_outcome`, :func:`mark_credited` and :func:`give_up` return the intent that
follows."""

from __future__ import annotations

from datetime import datetime
from typing import TypeAlias

import attrs

from prepaid_wallet.clock import require_aware
from prepaid_wallet.errors import CurrencyMismatchError, InvalidInputError, InvalidTimeError
from prepaid_wallet.money import Money
from prepaid_wallet.rules.topup.gateway import ChargeOutcome, ChargeStatus
from prepaid_wallet.rules.topup.intent import (
    Attempt,
    GiveUpReason,
    IntentStatus,
    TopUpIntent,
    attempt_key,
    credit_key,
)
from prepaid_wallet.rules.topup.rule import TopUpRule

__all__ = [
    "Charge",
    "Credit",
    "Done",
    "GiveUp",
    "Settle",
    "Step",
    "Wait",
    "give_up",
    "mark_credited",
    "next_step",
    "record_outcome",
    "start_attempt",
]


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
      attempt number; a method hard-declined (or whose charge was canceled) or out of soft
      attempts is skipped;
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
        if last.status in (ChargeStatus.DECLINED_HARD, ChargeStatus.CANCELED):
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
