"""Holds: the pure transitions that reserve part of a wallet for a later capture (``hold``),
capture some of it and release the rest (``capture``), or give it all back (``release``: a
void, or the expiry of a hold whose window has ended). Like every transition of
:mod:`prepaid_wallet.wallet`, each returns a :class:`~prepaid_wallet.wallet.Change` whose
balances :func:`~prepaid_wallet.wallet._apply` derives from the entry's postings."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

import attrs

from prepaid_wallet.ledger import EntryKind, Posting, held_account, revenue_account
from prepaid_wallet.money import Money
from prepaid_wallet.wallet import (
    AllocationPart,
    Change,
    Ends,
    EntryInfo,
    Hold,
    HoldStatus,
    Lot,
    Wallet,
    _apply,
    _fee_postings,
    _new_change,
    _new_charge,
    _return_parts,
    _source_account,
    split_parts,
)

__all__ = ["capture", "hold", "release"]


def hold(
    wallet: Wallet,
    *,
    hold_id: str,
    allocation: Sequence[AllocationPart],
    lots: Mapping[str, Lot],
    expires_at: datetime,
    info: EntryInfo,
    fee: Money | None = None,
) -> Change:
    """Move ``allocation`` (the purchase) into the wallet's held account under a new hold,
    with the spend ``fee`` its capture will pay, reserved from the open balance as a last part
    of the hold's allocation."""
    total = Money.sum((p.amount for p in allocation), wallet.currency)
    reserved = tuple(allocation)
    if fee is not None and fee.is_positive():
        reserved += (AllocationPart(None, fee),)
    postings = [Posting(_source_account(wallet.id, p), -p.amount) for p in reserved]
    postings.append(Posting(held_account(wallet.id),
                            Money.sum((p.amount for p in reserved), wallet.currency)))
    entry, wallets, new_lots = _apply(EntryKind.HOLD, info, postings, [wallet], lots)
    new_hold = Hold(
        id=hold_id,
        wallet_id=wallet.id,
        amount=total,
        allocation=reserved,
        created_at=info.at,
        expires_at=expires_at,
        entry_id=entry.id,
    )
    return _new_change(entry, wallets, tuple(new_lots.values()), holds=(new_hold,))


def capture(
    wallet: Wallet,
    held: Hold,
    amount: Money,
    lots: Mapping[str, Lot],
    info: EntryInfo,
    ends: Ends | None = None,
    fee: Money | None = None,
) -> Change:
    """Capture ``amount`` (at most the held amount) of an active hold and release the rest.

    The captured part is taken from the hold's allocation in order (the sources a spend would
    have used first); the rest, with the reserved fee, goes back to its sources, or to
    breakage for a lot that expired meanwhile. A ``fee`` (at most the hold's reserved fee) is
    taken from the open balance in the same entry, as a spend's. Records a refundable
    :class:`Charge` for the captured part (the fee is not refundable).
    """
    captured_parts, released_parts = split_parts(held.allocation, amount)
    postings = [
        Posting(held_account(wallet.id), -held.reserved),
        Posting(revenue_account(wallet.tenant_id), amount),
    ]
    returned, _ = _return_parts(wallet, released_parts, lots, info.at, ends)
    postings.extend(returned)
    postings.extend(_fee_postings(wallet, fee))
    entry, wallets, new_lots = _apply(EntryKind.CAPTURE, info, postings, [wallet], lots)
    resolved = attrs.evolve(
        held,
        status=HoldStatus.CAPTURED,
        captured=amount,
        resolved_entry_id=entry.id,
        resolved_at=info.at,
    )
    charge = _new_charge(entry.id, wallet.id, amount, captured_parts)
    return _new_change(entry, wallets, tuple(new_lots.values()), (resolved,), (charge,))


def release(
    wallet: Wallet,
    held: Hold,
    lots: Mapping[str, Lot],
    status: HoldStatus,
    info: EntryInfo,
    ends: Ends | None = None,
) -> Change:
    """Give an active hold's money (its reserved fee included) back to its sources: a void, or
    (``status`` EXPIRED) the release of a hold whose window has ended."""
    postings = [Posting(held_account(wallet.id), -held.reserved)]
    returned, _ = _return_parts(wallet, held.allocation, lots, info.at, ends)
    postings.extend(returned)
    kind = EntryKind.VOID if status is HoldStatus.VOIDED else EntryKind.HOLD_EXPIRY
    entry, wallets, new_lots = _apply(kind, info, postings, [wallet], lots)
    resolved = attrs.evolve(held, status=status, resolved_entry_id=entry.id, resolved_at=info.at)
    return _new_change(entry, wallets, tuple(new_lots.values()), (resolved,))
