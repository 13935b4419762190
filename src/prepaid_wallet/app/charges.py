"""The tenant's rules applied to one operation on one wallet: the fees it pays, the limits it
must stay within, the headroom above the floor, and the top-up that covers a shortfall after
its own fee."""

from __future__ import annotations

import bisect
import json
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from prepaid_wallet.app.environment import Environment
from prepaid_wallet.app.ports import UnitOfWork
from prepaid_wallet.app.settings import LIMITS, get_setting, stored_groups
from prepaid_wallet.errors import (
    InsufficientFundsError,
    InvalidAmountError,
    LimitExceededError,
)
from prepaid_wallet.ledger import AccountKind, Entry, EntryKind, parse_account
from prepaid_wallet.money import MAX_MINOR_UNITS, Money
from prepaid_wallet.rules.limits import (
    Activity,
    LimitBreach,
    LimitRule,
    Limits,
    check,
    check_balance,
)
from prepaid_wallet.rules.operations import Operation
from prepaid_wallet.wallet import Hold, HoldStatus, Wallet

if TYPE_CHECKING:
    from prepaid_wallet.rules.fees import FeeCharge
    from prepaid_wallet.rules.tenant import TenantRules

__all__ = [
    "breaches",
    "check_headroom",
    "check_limits",
    "check_max_balance",
    "effective_limits",
    "fee",
    "fees",
    "gross_top_up",
    "top_up_allowed",
]

_MICRO = timedelta(microseconds=1)
#: Steps of the fixed-point iteration that grosses a suggested top-up up for its fee before it
#: falls back to bisection.
_GROSS_UP_STEPS = 16
#: The entries that count as an operation for limits, and the tenant account whose posting
#: says how much they moved (transfers are read from the other wallet's postings).
_COUNTED: dict[Operation, tuple[frozenset[EntryKind], AccountKind]] = {
    Operation.SPEND: (frozenset({EntryKind.SPEND, EntryKind.CAPTURE}), AccountKind.REVENUE),
    Operation.TOP_UP: (frozenset({EntryKind.TOP_UP}), AccountKind.FUNDING),
    Operation.PAYOUT: (frozenset({EntryKind.PAYOUT}), AccountKind.PAYOUT),
}


def fees(
    env: Environment, uow: UnitOfWork, wallet: Wallet, operation: Operation, amount: Money
) -> tuple[FeeCharge, ...]:
    """The fees the tenant's rules charge ``wallet`` on ``operation`` of ``amount`` (rules in
    another currency are skipped; owner groups are read only when a rule names some)."""
    rules = [
        rule for rule in env.tenant_rules(uow, wallet.tenant_id).fees
        if operation in rule.operations and rule.currency in (None, wallet.currency)
    ]
    if not rules:
        return ()
    from prepaid_wallet.rules.fees import fees_for

    groups = stored_groups(uow, wallet.id) if any(
        rule.owner_groups for rule in rules) else frozenset()
    return fees_for(rules, operation, amount, groups)


def fee(
    env: Environment, uow: UnitOfWork, wallet: Wallet, operation: Operation, amount: Money
) -> Money | None:
    """The total fee ``wallet`` pays on ``operation`` of ``amount``; None when there is none."""
    charges = fees(env, uow, wallet, operation, amount)
    if not charges:
        return None
    from prepaid_wallet.rules.fees import total_fee

    return total_fee(charges, wallet.currency)


def effective_limits(env: Environment, uow: UnitOfWork, wallet: Wallet,
                     rules: TenantRules | None = None) -> Limits:
    """The tenant's limits with the wallet's (stricter) overrides. A tenant without limits has
    no overrides either, so its wallets' operations read nothing. ``rules``: the tenant's
    rules, when the caller has read them already (else they are read here)."""
    if rules is None:
        rules = env.tenant_rules(uow, wallet.tenant_id)
    base = rules.limits
    if not base.rules and base.max_balance is None:
        return base
    text = get_setting(uow, wallet.id, LIMITS)
    return base if text is None else base.merged(Limits.from_data(json.loads(text)))


def _operation_amount(entry: Entry, wallet_id: str, operation: Operation) -> int | None:
    """What ``entry`` did of ``operation`` for the wallet (minor units), or None when it is not
    that kind of operation. Read from the counterpart postings, so a fee charged in the same
    entry does not count."""
    if operation is Operation.TRANSFER_OUT:
        if entry.kind is not EntryKind.TRANSFER:
            return None
        sent = 0
        for posting in entry.postings:
            ref = parse_account(posting.account)
            if ref.is_wallet and ref.owner == wallet_id and ref.kind is AccountKind.OPEN:
                if posting.amount.minor_units >= 0:
                    return None  # the wallet received this transfer
            elif ref.is_wallet:
                sent += posting.amount.minor_units
        return sent
    counted = _COUNTED.get(operation)
    if counted is None or entry.kind not in counted[0]:
        return None
    return abs(sum(p.amount.minor_units for p in entry.postings
                   if parse_account(p.account).kind is counted[1]))


def _activity(uow: UnitOfWork, wallet: Wallet, rule: LimitRule, at: datetime) -> Activity:
    """What the wallet did of the rule's operation in the rule's window ending at ``at``: its
    entries recorded in ``[start, at]``, read through the wallet's history index; for spends,
    also the holds placed in the window that may still be captured (:func:`_pending`)."""
    count = total = 0
    placed: set[str] = set()
    for entry, _ in uow.wallet_history(wallet.id, rule.window.start(at), at + _MICRO):
        done = _operation_amount(entry, wallet.id, rule.operation)
        if done is not None:
            count += 1
            total += done
        elif entry.kind is EntryKind.HOLD and rule.operation is Operation.SPEND:
            placed.add(entry.id)
    for held in _pending(uow, wallet, placed, at):
        count += 1
        total += held.amount.minor_units
    return Activity(count, Money(total, wallet.currency))


def _pending(uow: UnitOfWork, wallet: Wallet, placed: set[str], at: datetime) -> list[Hold]:
    """The holds placed by the entries ``placed`` that may still be captured at ``at``.

    A hold is a spend authorised ahead of its capture, so it counts as one spend of its amount
    (at the instant it was placed) for as long as it may be captured; then its capture counts
    instead (a capture entry is a spend), and a hold voided or ended counts for nothing. So a
    purchase counts once, and hold + capture passes no more limits than one spend."""
    if not placed or not wallet.held.is_positive():
        return []
    return [held for held in uow.wallet_holds(wallet.id)
            if held.entry_id in placed and held.status is HoldStatus.ACTIVE
            and at < held.expires_at]


def breaches(
    env: Environment, uow: UnitOfWork, wallet: Wallet, operation: Operation, amount: Money,
    at: datetime, *, rules: TenantRules | None = None,
) -> tuple[LimitBreach, ...]:
    """The wallet's limits one more ``operation`` of ``amount`` at ``at`` would breach
    (``rules``: the tenant's rules, if the caller has read them)."""
    limits = effective_limits(env, uow, wallet, rules)
    if not limits.rules_for(operation):
        return ()
    return check(limits, operation, amount, lambda rule: _activity(uow, wallet, rule, at))


def check_limits(
    env: Environment, uow: UnitOfWork, wallet: Wallet, operation: Operation, amount: Money,
    at: datetime,
) -> None:
    """``LimitExceededError`` when one more ``operation`` of ``amount`` breaches a limit."""
    found = breaches(env, uow, wallet, operation, amount, at)
    if found:
        raise LimitExceededError(wallet.id, operation.value, [b.describe() for b in found])


def check_max_balance(
    env: Environment, uow: UnitOfWork, wallet: Wallet, operation: Operation, after: Money
) -> None:
    """``LimitExceededError`` when an operation that raises the wallet's balance (open +
    commerce + held) would take it above its maximum."""
    limits = effective_limits(env, uow, wallet)
    if limits.max_balance is None:
        return
    breach = check_balance(limits, balance_before=wallet.total, balance_after=after)
    if breach is not None:
        raise LimitExceededError(wallet.id, operation.value, [breach.describe()])


def check_top_up(
    env: Environment, uow: UnitOfWork, wallet: Wallet, amount: Money, at: datetime
) -> Money | None:
    """What every top-up of ``amount`` must pass, and its fee: more than the tenant's top-up
    fee (``InvalidAmountError`` naming ``amount``), within the wallet's top-up limits and its
    maximum balance (``LimitExceededError``)."""
    charged = fee(env, uow, wallet, Operation.TOP_UP, amount)
    if charged is not None and charged >= amount:
        raise InvalidAmountError("amount", f"must be more than its top-up fee ({charged})",
                                 amount)
    check_limits(env, uow, wallet, Operation.TOP_UP, amount, at)
    after = wallet.total + amount
    check_max_balance(env, uow, wallet, Operation.TOP_UP,
                      after if charged is None else after - charged)
    return charged


def check_headroom(wallet: Wallet, needed: Money) -> None:
    """``InsufficientFundsError`` unless the open balance can give ``needed`` above the
    floor."""
    headroom = wallet.open - wallet.floor
    if needed > headroom:
        raise InsufficientFundsError(wallet.id, needed,
                                     max(headroom, Money.zero(wallet.currency)))


def gross_top_up(env: Environment, uow: UnitOfWork, wallet: Wallet, net: Money) -> Money:
    """The least top-up that still leaves ``net`` on the open balance after the tenant's
    top-up fees (``net`` itself when no top-up could, e.g. a fee of 100 %)."""
    currency = wallet.currency

    def fee_of(minor: int) -> int:
        charged = fee(env, uow, wallet, Operation.TOP_UP,
                      Money.from_minor_units(minor, currency))
        return 0 if charged is None else charged.minor_units

    want = net.minor_units
    # The least fixed point of g = net + fee(g), reached from below: a fee never falls as the
    # amount grows, so every step stays at or under it. Fixed fees settle in two steps, a
    # percentage closes the gap by that percentage per step.
    gross = want
    for _ in range(_GROSS_UP_STEPS):
        needed = want + fee_of(gross)
        if needed <= gross:
            return Money.from_minor_units(gross, currency)
        if needed > MAX_MINOR_UNITS:
            return net
        gross = needed
    # A percentage near 100 % converges slowly: bisect between the last step (at or under the
    # answer) and an amount that covers (the least such, as what is left after the fee never
    # falls as the amount grows by a minor unit).
    high = gross
    while high - fee_of(high) < want:
        if high > MAX_MINOR_UNITS // 2:
            return net
        high *= 2
    least = gross + bisect.bisect_left(range(gross, high + 1), True,
                                       key=lambda g: g - fee_of(g) >= want)
    return Money.from_minor_units(least, currency)


def top_up_allowed(
    env: Environment, uow: UnitOfWork, wallet: Wallet, amount: Money, at: datetime
) -> bool:
    """Whether a top-up of ``amount`` (less its fee) now stays within the wallet's top-up
    limits and its maximum balance: what an automatic top-up checks before it starts and
    before every charge, as a top-up by hand would."""
    if breaches(env, uow, wallet, Operation.TOP_UP, amount, at):
        return False
    limits = effective_limits(env, uow, wallet)
    if limits.max_balance is None:
        return True
    charged = fee(env, uow, wallet, Operation.TOP_UP, amount)
    after = wallet.total + amount - (charged if charged is not None else Money.zero(
        wallet.currency))
    return check_balance(limits, balance_before=wallet.total, balance_after=after) is None
