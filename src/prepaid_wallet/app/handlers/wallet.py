"""Opening wallets (with the tenant's welcome award), and the wallet's own settings: its
owner's groups and its limits."""

from __future__ import annotations

import json
from datetime import datetime

from prepaid_wallet import wallet as _w
from prepaid_wallet.app.charges import effective_limits
from prepaid_wallet.app.commands import OpenWallet, SetLimits, SetOwnerGroups
from prepaid_wallet.app.environment import WelcomeAward
from prepaid_wallet.app.lots import terms
from prepaid_wallet.app.pipeline import Context
from prepaid_wallet.app.settings import LIMITS, OWNER_GROUPS, put_setting
from prepaid_wallet.errors import CurrencyMismatchError, InvalidInputError, InvalidTimeError
from prepaid_wallet.expiry import resolve_expiry
from prepaid_wallet.rules.limits import Limits, check_override
from prepaid_wallet.wallet import Wallet

__all__ = ["open_wallet", "set_limits", "set_owner_groups"]


def open_wallet(ctx: Context, command: OpenWallet) -> Wallet:
    """A new wallet (without a floor of its own: its tenant's default floor for the currency),
    with its owner's groups and, when the tenant has one in the wallet's currency, its welcome
    award granted in the same unit of work."""
    wallet = _w.new_wallet(
        wallet_id=ctx.env.ids.new("w"), tenant_id=command.tenant_id, owner_id=command.owner_id,
        currency=command.currency, floor=command.floor if command.floor is not None else (
            ctx.env.tenant_rules(ctx.uow, command.tenant_id).default_floor(command.currency)),
        at=ctx.at,
        metadata=ctx.metadata,
    )
    ctx.uow.add_wallet(wallet)
    groups = command.groups
    if groups:
        put_setting(ctx.uow, wallet, OWNER_GROUPS, json.dumps(sorted(groups)))
    welcome = ctx.env.welcome_awards.get(command.tenant_id)
    if welcome is not None and welcome.amount.currency == command.currency:
        wallet = _welcome(ctx, wallet, welcome, ctx.at)
    return wallet


def _welcome(ctx: Context, wallet: Wallet, welcome: WelcomeAward, at: datetime) -> Wallet:
    """Grant ``welcome`` to the new ``wallet`` in the opening's unit of work (nothing when its
    fixed expiry has already passed or its condition group has ended)."""
    if welcome.expires_after is not None:
        expiry: datetime | None = at + welcome.expires_after
    else:
        expiry = resolve_expiry(welcome.expires_at)
    if expiry is not None and expiry <= at:
        return wallet
    try:
        condition, group_id, version = terms(
            ctx.env, ctx.uow, wallet, welcome.condition, welcome.group_id, at,
            "welcome_award.group_id")
    except InvalidTimeError:  # the group has ended: nothing left to welcome with
        return wallet
    change = _w.award(
        wallet, lot_id=ctx.env.ids.new("lot"), amount=welcome.amount, expires_at=expiry,
        priority=welcome.priority, reason=welcome.reason,
        info=ctx.env.info(at, ctx.key, None, {"reason": welcome.reason}),
        condition=condition, group_id=group_id, group_version=version,
    )
    ctx.record(change)
    return change.wallet(wallet.id)


def set_owner_groups(ctx: Context, command: SetOwnerGroups) -> frozenset[str]:
    """Store the owner's groups (none: the setting is removed)."""
    groups = command.groups
    put_setting(ctx.uow, ctx.wallet(command.wallet_id), OWNER_GROUPS,
                json.dumps(sorted(groups)) if groups else None)
    return groups


def set_limits(ctx: Context, command: SetLimits) -> Limits:
    """Store the wallet's overrides of its tenant's limits (only ever stricter; only for a
    tenant with limits of its own), or remove them; the wallet's effective limits."""
    wallet = ctx.wallet(command.wallet_id)
    limits = command.limits
    base = ctx.env.tenant_rules(ctx.uow, wallet.tenant_id).limits
    if limits is not None and not base.rules and base.max_balance is None:
        raise InvalidInputError(
            "limits", "must override the tenant's limits: the tenant has none "
            "(give it lenient ones in TenantRules.limits)", limits)
    if limits is not None:
        if limits.currency not in (None, wallet.currency):
            raise CurrencyMismatchError(wallet.currency, limits.currency or "", "limits")
        check_override(base, limits)
    put_setting(ctx.uow, wallet, LIMITS,
                        None if limits is None else json.dumps(limits.to_data(),
                                                               sort_keys=True))
    return effective_limits(ctx.env, ctx.uow, wallet)
