"""Periodic fees: the job that charges every occurrence of the tenants' periodic fees due on
each wallet, exactly once per wallet and occurrence, never below the wallet's floor."""

from __future__ import annotations

import json
from datetime import datetime
from typing import TYPE_CHECKING

from prepaid_wallet import wallet as _w
from prepaid_wallet.app.effects import record
from prepaid_wallet.app.environment import Environment
from prepaid_wallet.app.ports import IdempotencyRecord
from prepaid_wallet.app.settings import (
    get_setting,
    periodic_fee_setting,
    put_setting,
    stored_groups,
)
from prepaid_wallet.app.tenant_rules import RULES, WITH_LOCKS
from prepaid_wallet.idempotency import canonical_request
from prepaid_wallet.money import Money
from prepaid_wallet.results import FeeReport

if TYPE_CHECKING:
    from prepaid_wallet.rules.fees import PeriodicFee

__all__ = ["charge_periodic_fees"]


def charge_periodic_fees(env: Environment) -> FeeReport:
    """Charge every occurrence due of every periodic fee of the tenants the service may act
    for, wallet by wallet, each charge in a unit of work of its own. Each tenant's periodic
    fees are its stored rules as the run reads them, with the list of its wallets."""
    at = env.now()
    entry_ids: list[str] = []
    waived = 0
    with env.store.unit_of_work(read_only=True) as uow:
        tenants = [(stored.tenant_id, RULES.decode(stored.data).periodic_fees)
                   for stored in RULES.all_current(uow, env.tenant_id)]
    for tenant_id, fees in tenants:
        if not fees:
            continue
        with env.store.unit_of_work(read_only=True) as uow:
            wallet_ids = [w.id for w in uow.iter_wallets(tenant_id)]
        for wallet_id in wallet_ids:
            for fee in fees:
                charged, short = _charge_periodic(env, wallet_id, fee, at)
                entry_ids.extend(charged)
                waived += short
    return FeeReport(tuple(entry_ids), waived)


def _charge_periodic(env: Environment, wallet_id: str, fee: PeriodicFee, at: datetime
                     ) -> tuple[list[str], int]:
    """Charge ``fee``'s occurrences due on one wallet, one unit of work each: the entries
    posted and how many occurrences were waived (in part or in full)."""
    setting = periodic_fee_setting(fee.name)
    with env.store.unit_of_work(read_only=True) as uow:
        wallet = uow.get_wallet(wallet_id)
        last = get_setting(uow, wallet_id, setting)
        groups = stored_groups(uow, wallet_id) if fee.owner_groups else frozenset()
    if wallet.currency != fee.amount.currency or not fee.applies(groups):
        return [], 0
    since = wallet.created_at if last is None else max(
        wallet.created_at, datetime.fromisoformat(last))
    entry_ids: list[str] = []
    waived = 0
    for occurrence in fee.occurrences(since, at):
        key = f"periodic-fee:{wallet_id}:{fee.occurrence_key(occurrence)}"
        request = canonical_request("periodic_fee", wallet_id=wallet_id, fee=fee.name,
                                    occurrence=occurrence)
        with env.store.unit_of_work() as uow:
            wallet = uow.lock_wallets([wallet_id], tenant_records=WITH_LOCKS)[wallet_id]
            if uow.get_idempotency(wallet.tenant_id, key) is not None:
                continue  # charged by another run
            headroom = max(wallet.open - wallet.floor, Money.zero(wallet.currency))
            amount = min(fee.amount, headroom)
            payload: str | None = None
            if amount.is_positive():
                change = _w.charge_fee(wallet, amount, env.info(
                    max(at, wallet.not_before), key, None,
                    {"fee": fee.name, "occurrence": occurrence.isoformat()}))
                record(env, uow, change)
                entry_ids.append(change.entry.id)
                payload = change.entry.id
            if amount < fee.amount:
                waived += 1
            uow.put_idempotency(IdempotencyRecord(
                wallet.tenant_id, key, "periodic_fee", request, "ok",
                json.dumps(payload), at))
            put_setting(uow, wallet, setting, occurrence.isoformat())
            uow.commit()
    return entry_ids, waived
