"""Customer top-ups: a top-up the customer pays through the host's payment provider (a payment
page, a redirect, a wallet app), credited when the provider says the money was taken.

A :class:`CustomerTopUp` is started pending; it moves no money. Its ``id`` is what the host
hands to its provider (as the payment's idempotency key or reference), and the provider's
answer comes back through ``WalletService.report_charge(id, outcome)``. The pure transitions
here say what each answer does (:func:`report`, :func:`expire`); the service stores the result
and posts the credit. The tenant's settings are
:class:`~prepaid_wallet.rules.customer_top_ups.CustomerTopUpRules`
(``TenantRules.customer_top_ups``).

**What an answer does** (``outcome.status``, a :class:`~.gateway.ChargeStatus`):

* ``UNKNOWN`` -- nothing changes but the last answer heard, while the top-up is pending;
* ``SUCCEEDED`` -- the money was taken: the top-up becomes ``SUCCEEDED`` (the service credits
  it, once). A success is believed whenever it comes: after the top-up expired, failed or was
  canceled too (a provider may decline a first attempt and take a second one for the same
  payment, and webhooks arrive in any order); ``superseded`` then keeps the status it replaced
  and the credit entry says so. A success reported again changes nothing;
* ``DECLINED_HARD`` or ``DECLINED_SOFT`` -- ``FAILED``; ``CANCELED`` -- ``CANCELED``; only a
  pending top-up ends this way. A failure or a cancellation reported *after* a success
  contradicts it and changes nothing: the success stands (money that then goes back to the
  customer is a refund or a chargeback, booked by their own calls); after an expiry, or after
  another failure, it changes nothing either.

So the state a top-up ends in does not depend on the order its answers arrive in: it is
credited exactly when at least one success was reported.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Final

import attrs

from prepaid_wallet.clock import require_aware
from prepaid_wallet.errors import InvalidInputError, InvalidTimeError
from prepaid_wallet.money import Money
from prepaid_wallet.rules.topup.gateway import ChargeOutcome, ChargeStatus

__all__ = [
    "CustomerTopUp",
    "CustomerTopUpStatus",
    "RefundStatus",
    "TopUpRefund",
    "expire",
    "report",
]


class CustomerTopUpStatus(StrEnum):
    """``PENDING`` waiting for the provider; ``SUCCEEDED`` the money was taken and credited;
    ``REFUND_DUE`` the money was taken but crediting it would breach the wallet's top-up limits
    or maximum balance (checked again at credit): nothing was credited and the money is owed
    back to the customer (``WalletService.refund_top_up``); ``FAILED`` declined; ``CANCELED``
    the customer or the provider canceled it; ``EXPIRED`` no answer within its lifetime."""

    PENDING = "pending"
    SUCCEEDED = "succeeded"
    REFUND_DUE = "refund_due"
    FAILED = "failed"
    CANCELED = "canceled"
    EXPIRED = "expired"


#: The statuses a success may still replace.
_SUPERSEDABLE: Final = frozenset({CustomerTopUpStatus.PENDING, CustomerTopUpStatus.EXPIRED,
                                  CustomerTopUpStatus.FAILED, CustomerTopUpStatus.CANCELED})


class RefundStatus(StrEnum):
    """``PENDING`` sent to the gateway, no definite answer yet (the money is kept out of the
    wallet meanwhile); ``SUCCEEDED`` given back; ``FAILED`` the gateway refused it (the money
    was put back in the wallet)."""

    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


@attrs.frozen(kw_only=True)
class TopUpRefund:
    """One refund of a customer top-up to its payment method: ``key`` (the gateway's
    idempotency key, ``f"{top_up_id}:refund:{n}"``), ``amount``, ``reason``, ``requested_at``,
    its ``status``, the gateway's last ``outcome``, ``entry_id`` (the ``refund_out`` entry
    that took the money out of the wallet; None for a top-up that was never credited),
    ``reversal_id`` (the entry that put it back when the refund failed) and ``request_key``
    (the caller's idempotency key, if any)."""

    key: str
    amount: Money
    reason: str
    requested_at: datetime
    status: RefundStatus = RefundStatus.PENDING
    outcome: ChargeOutcome | None = None
    entry_id: str | None = None
    reversal_id: str | None = None
    request_key: str | None = None


@attrs.frozen(kw_only=True)
class CustomerTopUp:
    """One customer top-up: ``id`` (what the host passes to its provider; no ``:``),
    ``tenant_id``, ``wallet_id``, ``amount`` (positive, the wallet's currency), the payment
    ``method`` the customer chose, ``created_at`` and ``expires_at`` (UTC), its ``status``, the
    last ``outcome`` the provider reported (None: no answer yet), ``finished_at`` (when it left
    ``PENDING``), ``superseded`` (the status a late success replaced: ``EXPIRED``, ``FAILED`` or
    ``CANCELED``; None otherwise), ``entry_id`` (its credit entry, once credited), ``refunds``
    (:class:`TopUpRefund` s to the payment method, ``WalletService.refund_top_up``),
    ``charged_back`` (what the provider took back, ``WalletService.charge_back_top_up``) and
    ``chargeback_ids`` (their entries), and the ``actor`` and ``metadata`` of the call that
    started it (the credit entry carries them).
    """

    id: str
    tenant_id: str
    wallet_id: str
    amount: Money
    method: str
    created_at: datetime
    expires_at: datetime
    status: CustomerTopUpStatus = CustomerTopUpStatus.PENDING
    outcome: ChargeOutcome | None = None
    finished_at: datetime | None = None
    superseded: CustomerTopUpStatus | None = None
    entry_id: str | None = None
    refunds: tuple[TopUpRefund, ...] = ()
    charged_back: Money | None = None
    chargeback_ids: tuple[str, ...] = ()
    actor: str | None = None
    metadata: dict[str, str] = attrs.field(factory=dict)

    def __attrs_post_init__(self) -> None:
        if not isinstance(self.id, str) or not self.id.strip() or ":" in self.id:
            raise InvalidInputError("id", "must be non-blank text without ':'", self.id)
        require_aware(self.created_at, "created_at")
        require_aware(self.expires_at, "expires_at")
        if self.expires_at <= self.created_at:
            raise InvalidTimeError("expires_at", "must be after created_at", self.expires_at)

    @property
    def is_pending(self) -> bool:
        """True while no final answer came and it has not expired (as stored)."""
        return self.status is CustomerTopUpStatus.PENDING

    @property
    def credited(self) -> bool:
        """True once its credit entry was posted."""
        return self.entry_id is not None

    @property
    def refunded(self) -> Money:
        """What was given back to the payment method, or is being given back (refunds that
        did not fail)."""
        return Money.sum((r.amount for r in self.refunds if r.status is not RefundStatus.FAILED),
                         self.amount.currency)

    @property
    def refundable(self) -> Money:
        """What is left of it: the amount, less what was refunded (or is being refunded) and
        charged back so far; zero when its money was never taken. For a credited top-up the
        open balance bounds what may be refunded too (money already spent is not given back):
        see ``WalletService.refund_top_up``."""
        zero = Money.zero(self.amount.currency)
        if self.status not in (CustomerTopUpStatus.SUCCEEDED, CustomerTopUpStatus.REFUND_DUE):
            return zero
        left = self.amount - self.refunded - (self.charged_back or zero)
        return max(left, zero)


def expire(top_up: CustomerTopUp, now: datetime) -> CustomerTopUp:
    """``top_up`` expired at ``now`` if it is pending and ``now`` is at or after its
    ``expires_at``; otherwise ``top_up`` itself."""
    now = require_aware(now, "now")
    if top_up.status is CustomerTopUpStatus.PENDING and now >= top_up.expires_at:
        return attrs.evolve(top_up, status=CustomerTopUpStatus.EXPIRED, finished_at=now)
    return top_up


_ENDS: Final = {
    ChargeStatus.DECLINED_HARD: CustomerTopUpStatus.FAILED,
    ChargeStatus.DECLINED_SOFT: CustomerTopUpStatus.FAILED,
    ChargeStatus.CANCELED: CustomerTopUpStatus.CANCELED,
}


def report(top_up: CustomerTopUp, outcome: ChargeOutcome, now: datetime) -> CustomerTopUp:
    """``top_up`` after the provider's ``outcome`` heard at ``now`` (see the module docstring):
    a top-up whose time is up expires first. A ``SUCCEEDED`` result with no ``entry_id`` is
    the service's cue to credit it (or to mark it ``REFUND_DUE``). Returns ``top_up`` itself
    when the answer changes nothing. ``InvalidInputError`` naming ``outcome`` for something
    that is not a :class:`ChargeOutcome`."""
    if not isinstance(outcome, ChargeOutcome):
        raise InvalidInputError("outcome", "must be a ChargeOutcome", outcome)
    current = expire(top_up, now)
    status = outcome.status
    if status is ChargeStatus.SUCCEEDED:
        if current.status not in _SUPERSEDABLE:
            return current
        superseded = None if current.status is CustomerTopUpStatus.PENDING else current.status
        return attrs.evolve(current, status=CustomerTopUpStatus.SUCCEEDED, outcome=outcome,
                            finished_at=now, superseded=superseded)
    if current.status is not CustomerTopUpStatus.PENDING:
        return current
    if status is ChargeStatus.UNKNOWN:
        return current if current.outcome == outcome else attrs.evolve(current, outcome=outcome)
    return attrs.evolve(current, status=_ENDS[status], outcome=outcome, finished_at=now)
