"""Transfers between wallets of one tenant, and money out of or into a wallet against a tenant
account: payouts to the owner, and an operator's manual credits and debits."""

from __future__ import annotations

from prepaid_wallet import wallet as _w
from prepaid_wallet.app.charges import check_headroom, check_limits, check_max_balance, fee
from prepaid_wallet.app.checks import check_currency, less
from prepaid_wallet.app.commands import Credit, Debit, Payout, Transfer
from prepaid_wallet.app.lots import group_lot
from prepaid_wallet.app.pipeline import Context
from prepaid_wallet.errors import InvalidAmountError, TenantMismatchError
from prepaid_wallet.ledger import EntryKind
from prepaid_wallet.money import Money
from prepaid_wallet.results import Receipt
from prepaid_wallet.rules.operations import Operation

__all__ = ["credit", "debit", "payout", "transfer"]


def transfer(ctx: Context, command: Transfer) -> Receipt:
    """Move open balance to the other wallet (or into a new lot of the command's condition
    group there); the sender pays the transfer fee, within its floor and transfer limits and
    the target's maximum balance."""
    source = ctx.wallet(command.from_wallet_id)
    target = ctx.wallet(command.to_wallet_id)
    amount = command.amount
    if target.tenant_id != source.tenant_id:  # only an unscoped service sees both
        raise TenantMismatchError("to_wallet_id", source.tenant_id, target.tenant_id)
    check_currency(source, amount)
    check_currency(target, amount, "to_wallet_id")
    charged = fee(ctx.env, ctx.uow, source, Operation.TRANSFER_OUT, amount)
    check_headroom(source, amount if charged is None else amount + charged)
    check_limits(ctx.env, ctx.uow, source, Operation.TRANSFER_OUT, amount, ctx.at)
    check_max_balance(ctx.env, ctx.uow, target, Operation.TRANSFER_IN, target.total + amount)
    info = ctx.info()
    lot = group_lot(ctx.env, ctx.uow, target, amount, command.group_id, info, "transfer")
    change = _w.transfer(source, target, amount, info, lot=lot, fee=charged)
    ctx.record(change)
    return Receipt(change.entry.id, EntryKind.TRANSFER, source.id, amount, ctx.at, target.id,
                   lot_id=None if lot is None else lot.id, fee=charged)


def payout(ctx: Context, command: Payout) -> Receipt:
    """Pay open balance out with the command's method, within the floor (fee included) and
    the wallet's payout limits."""
    return _move_out(ctx, command.wallet_id, command.amount, Operation.PAYOUT,
                     method=command.method)


def credit(ctx: Context, command: Credit) -> Receipt:
    """Credit the open balance against the tenant's adjustment account, less the credit fee
    (which the amount must exceed), within the wallet's maximum balance."""
    return _move_out(ctx, command.wallet_id, command.amount, Operation.CREDIT,
                     reason=command.reason)


def debit(ctx: Context, command: Debit) -> Receipt:
    """Debit the open balance against the tenant's adjustment account, within the floor (fee
    included)."""
    return _move_out(ctx, command.wallet_id, command.amount, Operation.DEBIT,
                     reason=command.reason)


def _move_out(ctx: Context, wallet_id: str, amount: Money, operation: Operation, *,
              method: str | None = None, reason: str | None = None) -> Receipt:
    """A payout, credit or debit: one posting against a tenant account, fees, limits."""
    wallet = ctx.wallet(wallet_id)
    check_currency(wallet, amount)
    charged = fee(ctx.env, ctx.uow, wallet, operation, amount)
    info = ctx.info() if reason is None else ctx.info(reason=reason)
    if operation is Operation.CREDIT:
        if charged is not None and charged >= amount:
            raise InvalidAmountError("amount", f"must be more than its fee ({charged})", amount)
        check_max_balance(ctx.env, ctx.uow, wallet, operation, less(wallet.total + amount, charged))
        change = _w.adjust(wallet, amount, info, fee=charged)
    else:
        check_headroom(wallet, amount if charged is None else amount + charged)
        if method is not None:  # a payout
            check_limits(ctx.env, ctx.uow, wallet, operation, amount, ctx.at)
            change = _w.payout(wallet, amount, method, info, fee=charged)
        else:
            change = _w.adjust(wallet, -amount, info, fee=charged)
    ctx.record(change)
    return Receipt(change.entry.id, change.entry.kind, wallet.id, amount, ctx.at, fee=charged)
