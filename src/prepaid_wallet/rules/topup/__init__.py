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

**The modules.** Import every name from ``prepaid_wallet.rules.topup``; each is defined in
:mod:`.gateway` (the gateway and its answers), :mod:`.rule` (the rule and the amounts it gives),
:mod:`.intent` (the intent, its attempts and their keys) or :mod:`.steps` (the state machine).
"""

from __future__ import annotations

from prepaid_wallet.rules.topup.gateway import (
    ChargeOutcome,
    ChargeStatus,
    PaymentGateway,
    RefundingGateway,
)
from prepaid_wallet.rules.topup.intent import (
    Attempt,
    GiveUpReason,
    IntentStatus,
    TopUpIntent,
    TopUpReason,
    attempt_key,
    credit_key,
)
from prepaid_wallet.rules.topup.rule import (
    PaymentMethods,
    TopUpRule,
    next_occurrence,
    scheduled_top_up,
    spend_top_up,
    threshold_top_up,
)
from prepaid_wallet.rules.topup.steps import (
    Charge,
    Credit,
    Done,
    GiveUp,
    Settle,
    Step,
    Wait,
    give_up,
    mark_credited,
    next_step,
    record_outcome,
    start_attempt,
)

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
    "RefundingGateway",
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
