"""Reading a wallet's balances, its lots and one journal entry: lookups, never a replay of the
journal. The read a command-line ``balance`` makes, so this module imports little."""

from __future__ import annotations

from datetime import datetime

from prepaid_wallet.app.environment import Environment, Groups
from prepaid_wallet.clock import require_aware
from prepaid_wallet.ids import check_name
from prepaid_wallet.ledger import Entry, lot_account
from prepaid_wallet.money import Money
from prepaid_wallet.results import Balance
from prepaid_wallet.wallet import Lot

__all__ = ["balance", "entry", "lots"]


def balance(env: Environment, wallet_id: str, *, as_of: datetime | None = None) -> Balance:
    """The wallet's balances now, or at ``as_of`` (aware) from the statement index. Now: the
    lots due but not yet booked count as expired. At ``as_of``: the lots granted by then and
    expired at that instant count as expired, with what they held then; a wallet with no entry
    by then has zero balances."""
    check_name(wallet_id, "wallet_id")
    when = env.now() if as_of is None else require_aware(as_of, "as_of")
    with env.store.unit_of_work(read_only=True) as uow:
        wallet = env.wallet(uow, wallet_id)
        zero = Money.zero(wallet.currency)
        if as_of is None:
            expired = Money.sum(
                (lot.remaining for lot in uow.due_lots(when, 2**62, wallet.id)),
                wallet.currency,
            )
            return Balance(wallet.id, when, wallet.open, wallet.commerce - expired,
                           wallet.held, expired, wallet.floor)
        snapshot = uow.snapshot_at(wallet.id, when)
        if snapshot is None:
            return Balance(wallet.id, when, zero, zero, zero, zero, wallet.floor)
        expired = zero
        groups = Groups(uow)
        for lot in uow.wallet_lots(wallet.id):
            if lot.granted_at > when or not env.expiry.is_expired(
                lot, when, groups.get(lot.group_id) if lot.group_id else None
            ):
                continue
            remaining = uow.account_balance_at(lot_account(wallet.id, lot.id), when)
            if remaining is not None:
                expired += remaining
        return Balance(wallet.id, when, snapshot.open, snapshot.commerce - expired,
                       snapshot.held, expired, wallet.floor)


def lots(env: Environment, wallet_id: str, *, include_empty: bool = False) -> list[Lot]:
    """The wallet's lots by grant time: those with money left, or all with ``include_empty``."""
    check_name(wallet_id, "wallet_id")
    with env.store.unit_of_work(read_only=True) as uow:
        env.wallet(uow, wallet_id)
        return [lot for lot in uow.wallet_lots(wallet_id) if include_empty or lot.is_live]


def entry(env: Environment, entry_id: str) -> Entry:
    """One journal entry; ``EntryNotFoundError`` if unknown (or another tenant's, for a scoped
    service)."""
    check_name(entry_id, "entry_id")
    with env.store.unit_of_work(read_only=True) as uow:
        return env.entry(uow, entry_id)
