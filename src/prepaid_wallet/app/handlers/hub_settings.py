"""Hub settings of one member's wallet: its own payment mode and its floor. A change moves no
money (no journal entry); each is kept in the wallet's term history
(:data:`~prepaid_wallet.app.wallet_terms.TERM_CHANGES`)."""

from __future__ import annotations

import attrs

from prepaid_wallet.app.commands.checkout import SetFloor, SetPaymentMode
from prepaid_wallet.app.pipeline import Context
from prepaid_wallet.app.settings import PAYMENT_MODE, get_setting, put_setting
from prepaid_wallet.app.wallet_terms import TERM_CHANGES
from prepaid_wallet.errors import (
    CurrencyMismatchError,
    FloorAboveBalanceError,
    InvalidInputError,
)
from prepaid_wallet.rules.hub import WalletTerm, WalletTermChange
from prepaid_wallet.wallet import Wallet

__all__ = ["set_floor", "set_payment_mode"]


def _changed(ctx: Context, wallet: Wallet, term: WalletTerm, before: str | None,
             after: str | None, reason: str | None) -> WalletTermChange:
    change = WalletTermChange(
        id=ctx.env.ids.new("wtc"), wallet_id=wallet.id, tenant_id=wallet.tenant_id, term=term,
        before=before, after=after, at=ctx.at,
        actor=ctx.actor if ctx.actor is not None else ctx.env.actor, reason=reason)
    ctx.uow.put_record(TERM_CHANGES, change)
    return change


def set_payment_mode(ctx: Context, command: SetPaymentMode) -> WalletTermChange:
    """Store the member's own mode (the tenant must allow member modes), or remove it; the
    change is recorded."""
    wallet = ctx.wallet(command.wallet_id)
    mode = command.mode
    tenant = ctx.env.tenant_rules(ctx.uow, wallet.tenant_id)
    if mode is not None and not tenant.member_payment_modes:
        raise InvalidInputError("mode", "needs a tenant that allows member payment modes "
                                "(TenantRules.member_payment_modes)", mode)
    before = get_setting(ctx.uow, wallet.id, PAYMENT_MODE)
    after = None if mode is None else mode.value
    put_setting(ctx.uow, wallet, PAYMENT_MODE, after)
    return _changed(ctx, wallet, WalletTerm.PAYMENT_MODE, before, after, command.reason)


def set_floor(ctx: Context, command: SetFloor) -> WalletTermChange:
    """Change the wallet's floor (in its currency; not above its open balance, which would
    leave it below its floor); the change is recorded."""
    wallet = ctx.wallet(command.wallet_id)
    floor = command.floor
    if floor.currency != wallet.currency:
        raise CurrencyMismatchError(wallet.currency, floor.currency, "floor")
    if floor > wallet.open:
        raise FloorAboveBalanceError(wallet.id, floor, wallet.open)
    before = wallet.floor
    if floor != before:
        ctx.uow.change_terms(attrs.evolve(wallet, floor=floor))
    return _changed(ctx, wallet, WalletTerm.FLOOR, str(before.amount), str(floor.amount),
                    command.reason)
