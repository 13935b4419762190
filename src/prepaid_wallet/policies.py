"""Spend policies: pure decisions that return values and never raise for a business refusal.

:func:`decide_spend` answers "may this wallet pay this request, and from what?" with a
:class:`Decision`; only the service turns a refusal into
:class:`~prepaid_wallet.errors.SpendDeniedError`.

The spend order says which commerce lot pays first. :class:`SpendOrder` maps each named order to
a pure sort key; a host may instead pass any callable that reorders an iterable of lots.
The default (:attr:`SpendOrder.DEFAULT`): lower ``priority`` first, then the soonest expiry
(non-expiring lots last), then the oldest grant, then the lot id; the open balance pays last,
down to the wallet's floor. A lot is never spent at or after its expiry.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from enum import Enum, StrEnum
from typing import Any

import attrs

from prepaid_wallet.money import Money
from prepaid_wallet.wallet import AllocationPart, Lot, Wallet

__all__ = [
    "Decision",
    "PaymentMode",
    "Reason",
    "SpendOrder",
    "SpendOrderFunction",
    "SpendRequest",
    "decide_spend",
    "default_lot_key",
    "order_lots",
]


class PaymentMode(StrEnum):
    """How a checkout combines credit with other payment methods.

    ``CREDIT_ONLY``: credit must cover the whole amount, or the spend is refused with the
    shortfall and a suggested top-up. ``CREDIT_FIRST``: credit pays what it can without passing
    the floor, and ``remainder_due`` is left for another method.
    """

    CREDIT_ONLY = "credit_only"
    CREDIT_FIRST = "credit_first"


class Reason(StrEnum):
    """Why a decision refuses."""

    INSUFFICIENT_CREDIT = "insufficient_credit"


@attrs.frozen
class SpendRequest:
    """A purchase to pay from a wallet: a positive ``amount`` in the wallet's currency and a
    checkout ``mode``. ``description`` is free text kept in the entry's metadata."""

    amount: Money
    mode: PaymentMode = PaymentMode.CREDIT_ONLY
    description: str | None = None


@attrs.frozen
class Decision:
    """The answer to a spend request; writes nothing.

    * ``allowed`` -- whether the spend may go ahead; ``reasons`` say why not.
    * ``allocation`` -- which lot (or the open balance, ``lot_id=None``) pays how much, in
      spend order; empty when refused.
    * ``covered`` -- what credit pays (for a refusal: the most credit could pay).
    * ``shortfall`` -- what credit lacks (zero when covered).
    * ``suggested_top_up`` -- for a refused ``CREDIT_ONLY`` request, a top-up that would let it
      through (at least the shortfall); zero otherwise.
    * ``remainder_due`` -- for ``CREDIT_FIRST``, what another method must pay; never negative.
    """

    allowed: bool
    mode: PaymentMode
    amount: Money
    reasons: tuple[Reason, ...]
    allocation: tuple[AllocationPart, ...]
    covered: Money
    shortfall: Money
    suggested_top_up: Money
    remainder_due: Money


def default_lot_key(lot: Lot) -> tuple[Any, ...]:
    """Sort key of :attr:`SpendOrder.DEFAULT`: priority, soonest expiry (none last), oldest
    grant, lot id."""
    return (
        lot.priority,
        lot.expires_at is None,
        lot.expires_at or lot.granted_at,
        lot.granted_at,
        lot.id,
    )


def _expiring_first_key(lot: Lot) -> tuple[Any, ...]:
    return (lot.expires_at is None, lot.expires_at or lot.granted_at, lot.granted_at, lot.id)


def _oldest_first_key(lot: Lot) -> tuple[Any, ...]:
    return (lot.granted_at, lot.id)


class SpendOrder(Enum):
    """Named lot orders, each a pure sort key.

    ``DEFAULT``: priority, soonest expiry (non-expiring last), oldest grant, id.
    ``EXPIRING_FIRST``: soonest expiry first whatever the priority, then oldest grant, id.
    ``OLDEST_FIRST``: first granted, first spent (FIFO), then id.
    """

    DEFAULT = "default"
    EXPIRING_FIRST = "expiring_first"
    OLDEST_FIRST = "oldest_first"

    @property
    def key(self) -> Callable[[Lot], tuple[Any, ...]]:
        """The sort key this order uses."""
        return _ORDER_KEYS[self]


_ORDER_KEYS: dict[SpendOrder, Callable[[Lot], tuple[Any, ...]]] = {
    SpendOrder.DEFAULT: default_lot_key,
    SpendOrder.EXPIRING_FIRST: _expiring_first_key,
    SpendOrder.OLDEST_FIRST: _oldest_first_key,
}

#: A custom spend order: receives the wallet's live lots in default order, returns them in the
#: order they should pay.
SpendOrderFunction = Callable[[Iterable[Lot]], Iterable[Lot]]


def order_lots(order: SpendOrder | SpendOrderFunction, lots: Iterable[Lot]) -> Iterable[Lot]:
    """Put ``lots`` (given in :attr:`SpendOrder.DEFAULT` order) into ``order``.

    The default order passes the iterable through untouched, so a spend reads only the lots it
    needs; any other order has to see every live lot first.
    """
    if order is SpendOrder.DEFAULT:
        return lots
    if isinstance(order, SpendOrder):
        return sorted(lots, key=order.key)
    return order(lots)


def _allocate(
    wallet: Wallet, amount: Money, lots: Iterable[Lot], at: datetime
) -> tuple[list[AllocationPart], int]:
    """Take up to ``amount`` from unexpired lots in the order given, then the open balance down
    to the floor. Returns the parts and the minor units still missing."""
    needed = amount.minor_units
    parts: list[AllocationPart] = []
    iterator: Iterator[Lot] = iter(lots)
    for lot in iterator:
        if needed == 0:
            break
        if lot.is_expired(at) or not lot.is_live:
            continue
        take = min(needed, lot.remaining.minor_units)
        parts.append(AllocationPart(lot.id, Money(take, amount.currency), lot.expires_at))
        needed -= take
    if needed:
        headroom = wallet.open.minor_units - wallet.floor.minor_units
        take = min(needed, max(headroom, 0))
        if take:
            parts.append(AllocationPart(None, Money(take, amount.currency)))
            needed -= take
    return parts, needed


def decide_spend(
    wallet: Wallet,
    request: SpendRequest,
    lots: Iterable[Lot],
    at: datetime,
    order: SpendOrder | SpendOrderFunction = SpendOrder.DEFAULT,
) -> Decision:
    """Decide ``request`` against ``wallet`` at instant ``at``.

    ``lots`` are the wallet's live lots in default order (the store's index order); they are
    reordered by ``order`` and read only as far as needed. Amounts are exact: no rounding.
    """
    amount = request.amount
    zero = Money.zero(amount.currency)
    parts, missing_minor = _allocate(wallet, amount, order_lots(order, lots), at)
    missing = Money(missing_minor, amount.currency)
    covered = amount - missing
    if request.mode is PaymentMode.CREDIT_FIRST:
        return Decision(
            allowed=True,
            mode=request.mode,
            amount=amount,
            reasons=(),
            allocation=tuple(parts),
            covered=covered,
            shortfall=zero,
            suggested_top_up=zero,
            remainder_due=missing,
        )
    if missing.is_zero():
        return Decision(
            allowed=True,
            mode=request.mode,
            amount=amount,
            reasons=(),
            allocation=tuple(parts),
            covered=covered,
            shortfall=zero,
            suggested_top_up=zero,
            remainder_due=zero,
        )
    return Decision(
        allowed=False,
        mode=request.mode,
        amount=amount,
        reasons=(Reason.INSUFFICIENT_CREDIT,),
        allocation=(),
        covered=covered,
        shortfall=missing,
        suggested_top_up=missing,
        remainder_due=zero,
    )
