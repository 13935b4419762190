"""Lots as commands meet them: the terms a new lot is granted under (its own condition or a
condition group's), the lots an allocation touches, and when grouped lots stop paying."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from prepaid_wallet import wallet as _w
from prepaid_wallet.app.environment import Environment, Groups
from prepaid_wallet.app.ports import UnitOfWork
from prepaid_wallet.conditions import SpendCondition
from prepaid_wallet.errors import InvalidTimeError, TenantMismatchError
from prepaid_wallet.ledger import Entry
from prepaid_wallet.money import Money
from prepaid_wallet.wallet import EntryInfo, Lot, Wallet

__all__ = ["breakage_of", "ends", "group_lot", "lots_of", "terms"]


def terms(
    env: Environment, uow: UnitOfWork, wallet: Wallet, condition: SpendCondition | None,
    group_id: str | None, at: datetime, field: str = "group_id",
) -> tuple[SpendCondition | None, str | None, int | None]:
    """The condition, group and group version a new lot of ``wallet`` is granted under: its
    own ``condition``, or the current version of group ``group_id`` (of the wallet's tenant;
    ``ConditionGroupNotFoundError`` if unknown or, for a scoped service, another tenant's;
    ``TenantMismatchError`` naming ``field`` for an unscoped service pairing the wallet with
    another tenant's group; ``InvalidTimeError`` once the group has ended: its lot would never
    pay)."""
    if group_id is None:
        return condition, None, None
    group = env.condition_group(uow, group_id)
    if group.tenant_id != wallet.tenant_id:
        raise TenantMismatchError(field, wallet.tenant_id, group.tenant_id)
    if group.valid_until is not None and at >= group.valid_until:
        raise InvalidTimeError(field, "must name a condition group that has not ended",
                               group_id)
    return group.condition, group.id, group.version


def group_lot(
    env: Environment, uow: UnitOfWork, wallet: Wallet, amount: Money, group_id: str | None,
    info: EntryInfo, reason: str,
) -> Lot | None:
    """The new lot money sent to ``wallet`` under condition group ``group_id`` arrives in; None
    without a group (the money goes to the open balance)."""
    if group_id is None:
        return None
    condition, group, version = terms(env, uow, wallet, None, group_id, info.at)
    return _w.new_lot(
        wallet, lot_id=env.ids.new("lot"), amount=amount, info=info, reason=reason,
        condition=condition, group_id=group, group_version=version,
    )


def lots_of(uow: UnitOfWork, parts: tuple[_w.AllocationPart, ...]) -> dict[str, Lot]:
    """The lots an allocation took money from, by id."""
    return {p.lot_id: uow.get_lot(p.lot_id) for p in parts if p.lot_id is not None}


def ends(env: Environment, uow: UnitOfWork, lots: Mapping[str, Lot]
         ) -> dict[str, datetime | None]:
    """When each lot of a condition group stops paying (money given back to it after that goes
    to breakage); lots without a group keep their own expiry."""
    groups = Groups(uow)
    return {lot_id: env.lot_expiry(lot, groups) for lot_id, lot in lots.items()
            if lot.group_id is not None}


def breakage_of(entry: Entry, tenant_id: str) -> Money:
    """What ``entry`` booked to the tenant's breakage account (zero when nothing)."""
    account = f"tenant:{tenant_id}:breakage"
    amounts = [p.amount for p in entry.postings if p.account == account]
    return amounts[0] if amounts else Money.zero(entry.postings[0].amount.currency)
