"""Money in: top-ups (paid with a method, less the tenant's top-up fee) and awards (commerce
lots that may expire and may pay only for some things)."""

from __future__ import annotations

from prepaid_wallet import wallet as _w
from prepaid_wallet.app.charges import (
    check_headroom,
    check_top_up,
)
from prepaid_wallet.app.checks import check_currency, check_horizon
from prepaid_wallet.app.commands import Award, TopUp
from prepaid_wallet.app.lots import group_lot, terms
from prepaid_wallet.app.pipeline import Context
from prepaid_wallet.errors import InvalidTimeError
from prepaid_wallet.ledger import EntryKind
from prepaid_wallet.results import Receipt
from prepaid_wallet.wallet import Lot

__all__ = ["award", "top_up"]


def top_up(ctx: Context, command: TopUp) -> Receipt:
    """Credit the open balance (or a new lot of the command's condition group), less the
    tenant's top-up fee, within the wallet's top-up limits and maximum balance."""
    wallet = ctx.wallet(command.wallet_id)
    amount = command.amount
    check_currency(wallet, amount)
    charged = check_top_up(ctx.env, ctx.uow, wallet, amount, ctx.at)
    info = ctx.info()
    lot = group_lot(ctx.env, ctx.uow, wallet, amount, command.group_id, info, "top-up")
    if lot is not None and charged is not None:
        check_headroom(wallet, charged)
    change = _w.top_up(wallet, amount, command.method, info, lot=lot, fee=charged)
    ctx.record(change)
    return Receipt(change.entry.id, EntryKind.TOP_UP, wallet.id, amount, ctx.at,
                   lot_id=None if lot is None else lot.id, fee=charged)


def award(ctx: Context, command: Award) -> Lot:
    """A new commerce lot under the command's own condition or its condition group's."""
    wallet = ctx.wallet(command.wallet_id)
    check_currency(wallet, command.amount)
    expiry = command.expiry
    if expiry is not None and expiry <= ctx.at:
        raise InvalidTimeError("expires_at", "must be in the future", command.expires_at)
    check_horizon(expiry, ctx.at, ctx.env.tenant_rules(ctx.uow, wallet.tenant_id)
                  .award_horizon_days, "expires_at", command.expires_at, "award_horizon_days")
    own, group, version = terms(ctx.env, ctx.uow, wallet, command.condition, command.group_id,
                                ctx.at)
    change = _w.award(
        wallet, lot_id=ctx.env.ids.new("lot"), amount=command.amount, expires_at=expiry,
        priority=command.priority, reason=command.reason, info=ctx.info(reason=command.reason),
        condition=own, group_id=group, group_version=version,
    )
    ctx.record(change)
    return change.lots[0]
