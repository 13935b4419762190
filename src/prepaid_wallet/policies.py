"""Spend policies: pure decisions that return values and never raise for a business refusal.

:func:`decide_spend` answers "may this wallet pay this request, and from what?" with a
:class:`Decision`; only the service turns a refusal into
:class:`~prepaid_wallet.errors.SpendDeniedError`.

Commerce pays before the open balance, and conditioned commerce (lots that may pay only for
some products, merchants or times; see :mod:`prepaid_wallet.conditions`) before unconditioned
commerce. Within each class the spend order says which lot pays first. :class:`SpendOrder` maps
each named order to a pure sort key; a host may instead pass any callable that reorders an
iterable of lots. The default (:attr:`SpendOrder.DEFAULT`): lower ``priority`` first, then the
soonest expiry (non-expiring lots last), then the oldest grant, then the lot id; the open balance
pays last, down to the wallet's floor. A lot is never spent at or after its expiry.

With line items, the allocation pays the most it can from commerce: a line that only one lot may
pay goes to that lot whenever that lets more be paid, and among the allocations that pay the
most, the first lot in order pays as much as it can, then the second, and so on. Each part of
the allocation names the lot (or the open balance) and the line it pays.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from enum import Enum, StrEnum
from typing import Any

import attrs

from prepaid_wallet.conditions import ConditionGroup, LineItem, SpendCondition
from prepaid_wallet.expiry import ExpiryPolicy
from prepaid_wallet.money import Money, _trusted, _valid
from prepaid_wallet.rules.limits import LimitBreach
from prepaid_wallet.wallet import AllocationPart, Lot, Wallet

__all__ = [
    "DEFAULT_ORDER",
    "Decision",
    "LotEligibility",
    "PaymentMode",
    "Reason",
    "SpendOrder",
    "SpendOrderFunction",
    "SpendRequest",
    "decide_spend",
    "default_lot_key",
    "is_conditioned",
    "lot_eligibility",
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
    LIMIT_EXCEEDED = "limit_exceeded"


def _lines(value: Any) -> Any:
    """Any iterable of line items, kept as a tuple (anything else is left for the service to
    refuse with a typed error)."""
    return tuple(value) if isinstance(value, (list, tuple)) else value


def _names(value: Any) -> Any:
    if isinstance(value, (set, frozenset, list, tuple)):
        return frozenset(value)
    return value


@attrs.frozen
class SpendRequest:
    """A purchase to pay from a wallet: a positive ``amount`` in the wallet's currency and a
    checkout ``mode`` (``None``, the default: the wallet's tenant's default,
    ``TenantRules.payment_mode``, itself ``CREDIT_ONLY`` unless the tenant set another; a pure
    :func:`decide_spend` takes ``None`` as ``CREDIT_ONLY``). ``description`` is free text kept
    in the entry's metadata.

    What the purchase is, for lots that may pay only for some of it (see
    :mod:`prepaid_wallet.conditions`):

    * ``lines`` -- the line items (product id, category, amount); when given they must add up to
      ``amount``. Without lines the purchase is one line of no known product: a lot limited to
      some products or categories cannot pay it.
    * ``merchant`` and ``merchant_groups`` -- where the purchase is made.
    * ``at`` -- when it is made (aware; not after the spend is booked), for time windows and
      validity; default: the instant the spend is decided. Expiry is always judged at that
      decision instant: an expired lot never pays, whatever ``at`` says.
    """

    amount: Money
    mode: PaymentMode | None = None
    description: str | None = None
    lines: tuple[LineItem, ...] = attrs.field(default=(), converter=_lines)
    merchant: str | None = None
    merchant_groups: frozenset[str] = attrs.field(default=frozenset(), converter=_names)
    at: datetime | None = None

    def in_mode(self, mode: PaymentMode) -> SpendRequest:
        """This request in ``mode``: ``attrs.evolve(self, mode=mode)`` without running the
        converters again on fields they already converted."""
        copy = object.__new__(type(self))
        for name, set_field in _REQUEST_SLOTS:
            set_field(copy, getattr(self, name))
        _set_mode(copy, mode)
        return copy


#: Each field of a request and the descriptor of its slot (setting a slot through it is half
#: the work of ``object.__setattr__``).
_REQUEST_SLOTS = tuple(
    (field.name, SpendRequest.__dict__[field.name].__set__)
    for field in attrs.fields(SpendRequest)
)
_set_mode = SpendRequest.__dict__["mode"].__set__


@attrs.frozen
class Decision:
    """The answer to a spend request; writes nothing.

    * ``allowed`` -- whether the spend may go ahead; ``reasons`` say why not.
    * ``allocation`` -- which lot (or the open balance, ``lot_id=None``) pays how much, in
      spend order; empty when refused.
    * ``covered`` -- what credit pays (for a refusal: the most credit could pay).
    * ``shortfall`` -- what credit lacks (zero when covered).
    * ``suggested_top_up`` -- for a refused ``CREDIT_ONLY`` request, a top-up that would let it
      through: the shortfall, grossed up for the top-up fee the tenant's rules would charge (the
      least top-up that leaves the shortfall after its fee); zero otherwise.
    * ``remainder_due`` -- for ``CREDIT_FIRST``, what another method must pay; never negative.
    * ``fee`` -- the fee the spend is charged (from the open balance, on top of ``covered``);
      None when no fee rule applies.
    * ``limits`` -- for a refusal with ``Reason.LIMIT_EXCEEDED``, each limit the spend would
      breach, with what is left of its allowance.
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
    fee: Money | None = None
    limits: tuple[LimitBreach, ...] = ()


#: :attr:`SpendOrder.DEFAULT`, term by term, each ``(name, term of a lot)`` ascending: the one
#: declaration of the order. :func:`default_lot_key` is these terms; the SQL stores order their
#: live lots by the same names, in this order (``storage._schema.live_order`` renders each as
#: its column; a term it does not know fails when the store is imported).
DEFAULT_ORDER: tuple[tuple[str, Callable[[Lot], Any]], ...] = (
    ("unconditioned", lambda lot: not is_conditioned(lot)),  # conditioned lots first
    ("priority", lambda lot: lot.priority),
    ("no_expiry", lambda lot: lot.expires_at is None),  # lots that expire first
    ("expiry_or_grant", lambda lot: lot.expires_at or lot.granted_at),  # soonest expiry
    ("granted_at", lambda lot: lot.granted_at),  # then the oldest grant
    ("id", lambda lot: lot.id),
)


def default_lot_key(lot: Lot) -> tuple[Any, ...]:
    """Sort key of :attr:`SpendOrder.DEFAULT`: conditioned lots first, then priority, soonest
    expiry (none last), oldest grant, lot id -- the terms of :data:`DEFAULT_ORDER`, written out
    (a test checks they are the same; this is on every spend's path)."""
    return (
        not is_conditioned(lot),
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


def is_conditioned(lot: Lot) -> bool:
    """True when ``lot`` may pay only for some purchases: it belongs to a condition group or
    carries a condition that restricts something. Conditioned lots pay before the others."""
    return lot.group_id is not None or (
        lot.condition is not None and not lot.condition.is_unrestricted
    )


class SpendOrder(Enum):
    """Named lot orders, each a pure sort key. Whatever the order, conditioned lots (see
    :func:`is_conditioned`) pay before unconditioned ones; the order ranks lots within each
    class.

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
    """Put ``lots`` (given in :attr:`SpendOrder.DEFAULT` order) into ``order``, conditioned
    lots first.

    The default order passes the iterable through untouched, so a spend reads only the lots it
    needs; any other order has to see every live lot first.
    """
    if order is _DEFAULT_ORDER:
        return lots
    if isinstance(order, SpendOrder):
        key = order.key
        return sorted(lots, key=lambda lot: (not is_conditioned(lot), key(lot)))
    ranked = list(order(lots))
    return [lot for lot in ranked if is_conditioned(lot)] + [
        lot for lot in ranked if not is_conditioned(lot)
    ]


_EXPIRY = ExpiryPolicy()
# Members read on every decision, kept at module level: reading an enum member from its class
# costs about as much as a function call.
_CREDIT_ONLY = PaymentMode.CREDIT_ONLY
_CREDIT_FIRST = PaymentMode.CREDIT_FIRST
_DEFAULT_ORDER = SpendOrder.DEFAULT
#: ``Decision(...)`` and ``AllocationPart(...)`` with every field given (see
#: :func:`~prepaid_wallet.money._trusted`): one decision and its parts on every spend.
_new_decision = _trusted(Decision)
_new_part = _trusted(AllocationPart)


@attrs.frozen
class LotEligibility:
    """Whether one lot may pay for a request, and for which of its lines.

    ``lines`` holds the indexes (into the request's lines; ``0`` for a request without lines) of
    the lines the lot may pay; empty when it may pay nothing (expired, outside its validity, a
    condition the purchase does not meet). ``conditioned`` says whether the lot has conditions
    at all (its own or a condition group's): conditioned lots pay before unconditioned ones.
    """

    lot: Lot
    conditioned: bool
    lines: tuple[int, ...]


def _purchase_lines(request: SpendRequest) -> tuple[LineItem | None, ...]:
    """The request's lines; ``(None,)`` for a request without lines (one line of no known
    product)."""
    return request.lines or (None,)


def _may_pay_line(condition: SpendCondition | None, line: LineItem | None) -> bool:
    if condition is None:
        return True
    if line is None:  # no known product: only a condition with no product restriction pays
        return not (condition.products or condition.categories)
    return condition.allows_line(line)


def lot_eligibility(
    lot: Lot,
    request: SpendRequest,
    at: datetime,
    group: ConditionGroup | None = None,
) -> LotEligibility:
    """Which of ``request``'s lines ``lot`` may pay, decided at instant ``at`` (the decision
    instant: expiry is judged there; time windows and validity at ``request.at`` or ``at``).

    ``group`` is the lot's condition group when it has one (its current validity applies; the
    lot's own ``condition`` is the version of the group's conditions it was granted under).
    """
    condition = lot.condition
    conditioned = is_conditioned(lot)
    lines = _purchase_lines(request)
    if not lot.is_live or (lot.group_id is not None and group is None):
        return LotEligibility(lot, conditioned, ())
    if _EXPIRY.is_expired(lot, at, group):
        return LotEligibility(lot, conditioned, ())
    purchase_at = request.at or at
    if group is not None and not group.is_valid_at(purchase_at):
        return LotEligibility(lot, conditioned, ())
    if condition is not None and not condition.allows_purchase(
        at=purchase_at,
        merchant=request.merchant,
        merchant_groups=request.merchant_groups,
        total=request.amount,
    ):
        return LotEligibility(lot, conditioned, ())
    return LotEligibility(
        lot,
        conditioned,
        tuple(i for i, line in enumerate(lines) if _may_pay_line(condition, line)),
    )


def _line_amounts(request: SpendRequest) -> list[int]:
    if request.lines:
        return [line.amount.minor_units for line in request.lines]
    return [request.amount.minor_units]


def _take_in_order(
    lots: Iterable[Lot], needs: list[int], at: datetime, currency: str, has_lines: bool
) -> list[AllocationPart]:
    """Lots that may pay any line (no conditions), in the order given, each paying lines in
    line order until the lines are paid; reads ``lots`` only as far as needed. Lowers
    ``needs`` in place."""
    parts: list[AllocationPart] = []
    line = 0
    count = len(needs)
    while line < count and not needs[line]:
        line += 1
    for lot in lots:
        if line == count:
            break
        if lot.is_expired(at) or not lot.is_live:
            continue
        left = lot.remaining.minor_units
        while left and line < count:
            take = min(left, needs[line])
            parts.append(_new_part(
                lot.id, _valid(take, currency), lot.expires_at, line if has_lines else None
            ))
            needs[line] -= take
            left -= take
            while line < count and not needs[line]:
                line += 1
    return parts


def _solve(
    eligible: Sequence[LotEligibility], needs: list[int], currency: str, has_lines: bool
) -> list[AllocationPart]:
    """The most the ``eligible`` lots (in paying order) can pay of the lines, each lot paying as
    much as it can before the next one is considered.

    Lots are taken one by one; each pays along augmenting paths that may move an earlier lot's
    money to another line that lot may pay, but never lower what the earlier lot pays (Kuhn's
    algorithm on the lots x lines transport graph). Taken in order this way, the lots pay the
    most in total, and among all allocations that do, the one that takes the most from the
    first lot, then from the second, and so on. So a line that only one lot may pay goes to
    that lot whenever that lets more be paid. Lowers ``needs`` in place.
    """
    flow: list[dict[int, int]] = [{} for _ in eligible]
    paying: dict[int, list[int]] = {}  # line -> the lots paying it, in paying order
    for index, item in enumerate(eligible):
        left = item.lot.remaining.minor_units
        while left:
            path = _augmenting_path(index, eligible, flow, paying, needs)
            if path is None:
                break
            amount = min(left, needs[path[-1][1]])
            for step, (_, line) in enumerate(path[:-1]):
                amount = min(amount, flow[path[step + 1][0]][line])
            # The first lot starts paying its line; each later lot on the path moves that much
            # from the line before it to its own next line.
            for step, (lot_index, line) in enumerate(path):
                if step:
                    previous_line = path[step - 1][1]
                    _add(flow, paying, lot_index, previous_line, -amount)
                _add(flow, paying, lot_index, line, amount)
            needs[path[-1][1]] -= amount
            left -= amount
    parts: list[AllocationPart] = []
    for index, item in enumerate(eligible):
        for line in sorted(flow[index]):
            parts.append(AllocationPart(
                item.lot.id,
                Money(flow[index][line], currency),
                item.lot.expires_at,
                line if has_lines else None,
            ))
    return parts


def _add(
    flow: list[dict[int, int]], paying: dict[int, list[int]], lot: int, line: int, amount: int
) -> None:
    total = flow[lot].get(line, 0) + amount
    payers = paying.setdefault(line, [])
    if total:
        flow[lot][line] = total
        if lot not in payers:
            payers.append(lot)
    else:
        flow[lot].pop(line, None)
        if lot in payers:
            payers.remove(lot)


def _augmenting_path(
    start: int,
    eligible: Sequence[LotEligibility],
    flow: list[dict[int, int]],
    paying: dict[int, list[int]],
    needs: list[int],
) -> list[tuple[int, int]] | None:
    """A shortest path from lot ``start`` to a line with something left to pay: the lot, a line
    it may pay, a lot already paying that line, another line that lot may pay, and so on.
    Returned as ``(lot, line it starts paying)`` steps; ``None`` when there is none. Breadth
    first, lines and lots in order, so the answer is deterministic."""
    reached: dict[int, tuple[int, int | None]] = {}  # line -> (lot, line that lot left)
    via: dict[int, int | None] = {start: None}  # lot -> the line it was reached through
    queue = [start]
    for lot in queue:
        for line in eligible[lot].lines:
            if line in reached:
                continue
            reached[line] = (lot, via[lot])
            if needs[line]:
                steps: list[tuple[int, int]] = []
                current: int | None = line
                while current is not None:
                    owner, previous = reached[current]
                    steps.append((owner, current))
                    current = previous
                steps.reverse()
                return steps
            for other in paying.get(line, ()):
                if other not in via:
                    via[other] = line
                    queue.append(other)
    return None


def _open_parts(
    wallet: Wallet, needs: list[int], currency: str, has_lines: bool, reserve: int = 0
) -> tuple[list[AllocationPart], int]:
    """The open balance pays what the lots left of each line, in line order, down to the
    wallet's floor, keeping ``reserve`` (minor units, a fee) aside. Returns the parts and what
    is still missing (minor units)."""
    headroom = max(wallet.open.minor_units - wallet.floor.minor_units - reserve, 0)
    parts: list[AllocationPart] = []
    missing = 0
    for line, need in enumerate(needs):
        take = min(need, headroom)
        if take:
            parts.append(_new_part(
                None, _valid(take, currency), None, line if has_lines else None
            ))
            headroom -= take
        missing += need - take
    return parts, missing


def _allocate(
    wallet: Wallet,
    request: SpendRequest,
    lots: Iterable[Lot],
    at: datetime,
    groups: Mapping[str, ConditionGroup],
    reserve: int = 0,
) -> tuple[list[AllocationPart], int]:
    """Commerce first (conditioned lots, then unconditioned ones, each class in the order
    given; ``lots`` come with the conditioned ones first), as much as the lots may pay; then
    the open balance down to the floor. Returns the parts and the minor units still missing."""
    currency = request.amount.currency
    has_lines = bool(request.lines)
    needs = _line_amounts(request)
    iterator = iter(lots)
    conditioned: list[Lot] = []
    first_free: list[Lot] = []
    for lot in iterator:
        if not is_conditioned(lot):
            first_free.append(lot)
            break
        conditioned.append(lot)
    parts: list[AllocationPart] = []
    if conditioned:
        eligible = (
            lot_eligibility(lot, request, at, groups.get(lot.group_id) if lot.group_id else None)
            for lot in conditioned
        )
        parts = _solve([e for e in eligible if e.lines], needs, currency, has_lines)
    # The rest have no conditions: any of them pays any line, so taking them in order pays the
    # most, and reads them only as far as needed. (No unconditioned lot: ``lots`` are all read
    # and nothing is left to take.)
    if first_free:
        parts += _take_in_order(
            itertools.chain(first_free, iterator), needs, at, currency, has_lines
        )
    opened, missing = _open_parts(wallet, needs, currency, has_lines, reserve)
    return parts + opened, missing


def decide_spend(
    wallet: Wallet,
    request: SpendRequest,
    lots: Iterable[Lot],
    at: datetime,
    order: SpendOrder | SpendOrderFunction = SpendOrder.DEFAULT,
    groups: Mapping[str, ConditionGroup] | None = None,
    fee: Money | None = None,
) -> Decision:
    """Decide ``request`` against ``wallet`` at instant ``at``.

    ``lots`` are the wallet's live lots in default order (the store's index order); they are
    put into ``order``. ``groups`` holds the condition group of every lot that refers to one
    (a lot whose group is missing pays nothing). Commerce pays first: conditioned lots, then
    unconditioned ones, each class in ``order``, as much as the lots may pay (see
    :func:`lot_eligibility`); then the open balance, down to the floor. With line items each
    part of the allocation names its line (``AllocationPart.line``). Amounts are exact: no
    rounding.

    ``fee`` (the fee of the whole request, if any) is set aside from the open balance first: the
    open balance pays only what is left above the floor after it, and the decision carries it.
    A fee the open balance cannot pay above the floor is missing like any other amount, even
    when lots pay the whole purchase: a ``CREDIT_ONLY`` request is refused with it in its
    shortfall, and a ``CREDIT_FIRST`` one leaves the whole purchase to another method (credit
    pays only together with its fee).
    """
    mode = _CREDIT_ONLY if request.mode is None else request.mode
    amount = request.amount
    zero = Money.zero(amount.currency)
    reserve = 0 if fee is None else fee.minor_units
    parts, missing_minor = _allocate(
        wallet, request, order_lots(order, lots), at, {} if groups is None else groups,
        reserve,
    )
    missing = _valid(missing_minor, amount.currency)  # part of the (valid) amount
    covered = amount - missing
    # The fee comes from the open balance, whoever pays the purchase: what of it the open
    # balance cannot give above the floor is missing too.
    fee_short = zero if not reserve else Money(
        max(reserve - (wallet.open - wallet.floor).minor_units, 0), amount.currency)
    if fee_short.is_positive() and mode is _CREDIT_FIRST:
        # Credit pays only with its fee: here it pays nothing, another method pays it all.
        return _new_decision(
            allowed=True,
            mode=mode,
            amount=amount,
            reasons=(),
            allocation=(),
            covered=zero,
            shortfall=zero,
            suggested_top_up=zero,
            remainder_due=amount,
            fee=None,
            limits=(),
        )
    if fee_short.is_positive():
        return _new_decision(
            allowed=False,
            mode=mode,
            amount=amount,
            reasons=(Reason.INSUFFICIENT_CREDIT,),
            allocation=(),
            covered=covered,
            shortfall=missing + fee_short,
            suggested_top_up=missing + fee_short,
            remainder_due=zero,
            fee=fee,
            limits=(),
        )
    if mode is _CREDIT_FIRST:
        return _new_decision(
            allowed=True,
            mode=mode,
            amount=amount,
            reasons=(),
            allocation=tuple(parts),
            covered=covered,
            shortfall=zero,
            suggested_top_up=zero,
            remainder_due=missing,
            fee=fee,
            limits=(),
        )
    if missing.is_zero():
        return _new_decision(
            allowed=True,
            mode=mode,
            amount=amount,
            reasons=(),
            allocation=tuple(parts),
            covered=covered,
            shortfall=zero,
            suggested_top_up=zero,
            remainder_due=zero,
            fee=fee,
            limits=(),
        )
    return _new_decision(
        allowed=False,
        mode=mode,
        amount=amount,
        reasons=(Reason.INSUFFICIENT_CREDIT,),
        allocation=(),
        covered=covered,
        shortfall=missing,
        suggested_top_up=missing,
        remainder_due=zero,
        fee=fee,
        limits=(),
    )
