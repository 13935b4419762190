"""Corrections: refunds of spends and captures (the money goes back to the lots and open
balance it came from), and reversals of top-ups, awards and transfers (a new entry that
negates the original, linked both ways, at most one per entry)."""

from __future__ import annotations

from prepaid_wallet import wallet as _w
from prepaid_wallet.app.checks import check_currency
from prepaid_wallet.app.commands import Refund, Reverse
from prepaid_wallet.app.environment import Groups
from prepaid_wallet.app.lots import ends, lots_of
from prepaid_wallet.app.pipeline import Context
from prepaid_wallet.errors import (
    AlreadyReversedError,
    InsufficientFundsError,
    RefundExceedsOriginalError,
)
from prepaid_wallet.ledger import AccountKind, EntryKind, parse_account
from prepaid_wallet.money import Money
from prepaid_wallet.results import Receipt, RefundResult
from prepaid_wallet.wallet import Lot

__all__ = ["refund", "reverse"]


def refund(ctx: Context, command: Refund) -> RefundResult:
    """Give back the command's amount (default: all that is left) of the charge, the source
    paid last first; a part whose lot has expired meanwhile is booked as breakage."""
    charge = ctx.uow.get_charge(command.entry_id)
    assert charge is not None  # the lock spec found it, and a charge is never removed
    wallet = ctx.wallet(charge.wallet_id)
    give = charge.refundable if command.amount is None else command.amount
    check_currency(wallet, give)
    if give > charge.refundable or give.is_zero():
        raise RefundExceedsOriginalError(charge.entry_id, give, charge.refundable)
    lots = lots_of(ctx.uow, tuple(_w.refundable_parts(charge)))
    change, refunded, breakage = _w.refund(
        wallet, charge, give, lots, ctx.info(reason=command.reason),
        ends(ctx.env, ctx.uow, lots),
    )
    ctx.record(change)
    return RefundResult(change.entry.id, charge.entry_id, give, refunded, breakage)


def reverse(ctx: Context, command: Reverse) -> Receipt:
    """Negate the entry, unless it is already reversed or the reversal would take an open
    balance below its floor, a lot below zero, or money from a lot that has expired."""
    original = ctx.uow.get_entry(command.entry_id)
    done = ctx.uow.reversal_of(original.id)
    if done is not None:
        raise AlreadyReversedError(original.id, done)
    lots: dict[str, Lot] = {}
    groups = Groups(ctx.uow)
    for posting in original.postings:
        ref = parse_account(posting.account)
        if not ref.is_wallet:
            continue
        wallet = ctx.wallet(ref.owner)
        if ref.kind is AccountKind.LOT and ref.name is not None:
            lot = ctx.uow.get_lot(ref.name)
            lots[lot.id] = lot
            # An expired remainder belongs to breakage (the sweep books it).
            end = ctx.env.lot_expiry(lot, groups)
            expired = end is not None and ctx.at >= end
            left = Money.zero(lot.remaining.currency) if expired else lot.remaining
            if left < posting.amount:
                raise InsufficientFundsError(wallet.id, posting.amount, left)
        elif ref.kind is AccountKind.OPEN and posting.amount.is_positive():
            headroom = wallet.open - wallet.floor
            if posting.amount > headroom:
                raise InsufficientFundsError(wallet.id, posting.amount,
                                             max(headroom, Money.zero(wallet.currency)))
    change = _w.reverse(original, list(ctx.wallets.values()), lots,
                        ctx.info(reason=command.reason))
    ctx.record(change)
    first = ctx.wallet(original.wallet_ids[0])
    moved = Money.sum(
        (p.amount for p in original.postings
         if parse_account(p.account).is_wallet and p.amount.is_positive()),
        first.currency,
    )
    return Receipt(change.entry.id, EntryKind.REVERSAL, first.id, moved, ctx.at)
