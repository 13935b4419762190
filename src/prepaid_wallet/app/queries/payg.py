"""Reading pay-as-you-go contracts: the contract, its payments, its on-time history, its
upgrades, its conversion transactions and its performance."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import TypeVar

from prepaid_wallet.app.environment import Environment
from prepaid_wallet.app.payg import CONVERSIONS, ON_TIME, PAYMENTS, UPGRADES, contract_of
from prepaid_wallet.app.ports import RecordType
from prepaid_wallet.clock import require_aware
from prepaid_wallet.ids import check_name
from prepaid_wallet.rules.payg import Contract, Conversion, OnTime, PaygPayment, Upgrade
from prepaid_wallet.rules.payg import performance as score

T = TypeVar("T")

__all__ = [
    "contract",
    "contract_performance",
    "conversions",
    "on_time",
    "payg_payments",
    "upgrades",
]


def contract(env: Environment, wallet_id: str) -> Contract:
    """The wallet's contract as it is stored (``ContractNotFoundError`` without one)."""
    check_name(wallet_id, "wallet_id")
    with env.store.unit_of_work(read_only=True) as uow:
        env.wallet(uow, wallet_id)
        return contract_of(uow, wallet_id)


def contract_performance(env: Environment, wallet_id: str, at: datetime | None = None
                         ) -> Decimal:
    """The contract's performance at ``at`` (None: now), by
    :func:`prepaid_wallet.rules.payg.performance`."""
    check_name(wallet_id, "wallet_id")
    when = (env.now() if at is None else require_aware(at, "at")).astimezone(UTC)
    with env.store.unit_of_work(read_only=True) as uow:
        env.wallet(uow, wallet_id)
        return score(contract_of(uow, wallet_id), when)


def _of_wallet(env: Environment, wallet_id: str, rtype: RecordType[T]) -> list[T]:
    """The wallet's records of ``rtype``, in the kind's order."""
    check_name(wallet_id, "wallet_id")
    with env.store.unit_of_work(read_only=True) as uow:
        env.wallet(uow, wallet_id)
        return uow.find_records(rtype, wallet_id=wallet_id)


def payg_payments(env: Environment, wallet_id: str) -> list[PaygPayment]:
    """The wallet's pay-as-you-go payments, in the order they were paid."""
    return _of_wallet(env, wallet_id, PAYMENTS)


def on_time(env: Environment, wallet_id: str) -> list[OnTime]:
    """The wallet's on-time history, oldest first."""
    return _of_wallet(env, wallet_id, ON_TIME)


def upgrades(env: Environment, wallet_id: str) -> list[Upgrade]:
    """The wallet's upgrades, by deadline."""
    return _of_wallet(env, wallet_id, UPGRADES)


def conversions(env: Environment, wallet_id: str) -> list[Conversion]:
    """The wallet's conversion transactions, oldest first."""
    return _of_wallet(env, wallet_id, CONVERSIONS)
