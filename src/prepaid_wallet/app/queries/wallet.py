"""Reading wallets and what hangs off them: the wallets themselves, their owners' groups, their
limits and automatic top-up rules, their holds, and the tenants' condition groups."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from prepaid_wallet.app import settings
from prepaid_wallet.app.environment import Environment
from prepaid_wallet.conditions import ConditionGroup
from prepaid_wallet.ids import check_name
from prepaid_wallet.money import currency_exponent
from prepaid_wallet.wallet import Hold, Wallet

if TYPE_CHECKING:
    from prepaid_wallet.rules.limits import Limits
    from prepaid_wallet.rules.topup import TopUpIntent, TopUpRule

__all__ = [
    "condition_group",
    "condition_groups",
    "find_wallet",
    "get_hold",
    "get_wallet",
    "holds",
    "iter_wallets",
    "limits",
    "owner_groups",
    "top_up_intent",
    "top_up_rule",
    "wallets",
]


def get_wallet(env: Environment, wallet_id: str) -> Wallet:
    """The wallet's current state; ``WalletNotFoundError`` if unknown."""
    check_name(wallet_id, "wallet_id")
    with env.store.unit_of_work(read_only=True) as uow:
        return env.scoped(uow.get_wallet(wallet_id))


def find_wallet(env: Environment, *, tenant_id: str, owner_id: str, currency: str
                ) -> Wallet | None:
    """The owner's wallet at the tenant in the currency, or None."""
    check_name(tenant_id, "tenant_id")
    check_name(owner_id, "owner_id")
    currency_exponent(currency)
    env.check_tenant(tenant_id)
    with env.store.unit_of_work(read_only=True) as uow:
        return uow.find_wallet(tenant_id, owner_id, currency)


def wallets(env: Environment, tenant_id: str | None = None) -> list[Wallet]:
    """Every wallet (of one tenant), by id."""
    return list(iter_wallets(env, tenant_id))


def iter_wallets(env: Environment, tenant_id: str | None = None) -> Iterator[Wallet]:
    """:func:`wallets` read lazily from one snapshot. The arguments are checked at the call (not
    at the first ``next``); the snapshot's unit of work stays open while iterating."""
    if tenant_id is not None:
        env.check_tenant(tenant_id)
    return _iter_wallets(env, tenant_id if tenant_id is not None else env.tenant_id)


def _iter_wallets(env: Environment, scope: str | None) -> Iterator[Wallet]:
    with env.store.unit_of_work(read_only=True) as uow:
        yield from uow.iter_wallets(scope)


def owner_groups(env: Environment, wallet_id: str) -> frozenset[str]:
    """The groups the owner of the wallet belongs to."""
    check_name(wallet_id, "wallet_id")
    with env.store.unit_of_work(read_only=True) as uow:
        env.scoped(uow.get_wallet(wallet_id))
        return settings.stored_groups(uow, wallet_id)


def limits(env: Environment, wallet_id: str) -> Limits:
    """The wallet's effective limits: the tenant's, with the wallet's overrides."""
    from prepaid_wallet.app.charges import effective_limits  # the limit rules, on first use

    check_name(wallet_id, "wallet_id")
    with env.store.unit_of_work(read_only=True) as uow:
        wallet = env.scoped(uow.get_wallet(wallet_id))
        return effective_limits(env, uow, wallet)


def top_up_rule(env: Environment, wallet_id: str) -> TopUpRule | None:
    """The wallet's automatic top-up rule, if any (none when its tenant has no automatic
    top-ups)."""
    check_name(wallet_id, "wallet_id")
    with env.store.unit_of_work(read_only=True) as uow:
        wallet = env.scoped(uow.get_wallet(wallet_id))
        return settings.top_up_rule(env, uow, wallet)


def top_up_intent(env: Environment, intent_id: str) -> TopUpIntent | None:
    """An automatic top-up intent and its attempts, if any."""
    from prepaid_wallet.app.intents import get_top_up_intent

    check_name(intent_id, "intent_id")
    with env.store.unit_of_work(read_only=True) as uow:
        return get_top_up_intent(uow, intent_id)


def get_hold(env: Environment, hold_id: str) -> Hold:
    """The hold's current state; ``HoldNotFoundError`` if unknown, ``TenantMismatchError``
    naming ``hold_id`` if its wallet is another tenant's."""
    check_name(hold_id, "hold_id")
    with env.store.unit_of_work(read_only=True) as uow:
        held = uow.get_hold(hold_id)
        env.scoped(uow.get_wallet(held.wallet_id), "hold_id")
        return held


def holds(env: Environment, wallet_id: str) -> list[Hold]:
    """Every hold of the wallet, oldest first."""
    check_name(wallet_id, "wallet_id")
    with env.store.unit_of_work(read_only=True) as uow:
        env.scoped(uow.get_wallet(wallet_id))
        return list(uow.wallet_holds(wallet_id))


def condition_group(env: Environment, group_id: str) -> ConditionGroup:
    """The condition group; ``ConditionGroupNotFoundError`` if unknown, ``TenantMismatchError``
    naming ``group_id`` if it is another tenant's."""
    check_name(group_id, "group_id")
    with env.store.unit_of_work(read_only=True) as uow:
        group = uow.get_condition_group(group_id)
    env.check_tenant(group.tenant_id, "group_id")
    return group


def condition_groups(env: Environment, tenant_id: str) -> list[ConditionGroup]:
    """The tenant's condition groups, by name then id."""
    env.check_tenant(tenant_id)
    with env.store.unit_of_work(read_only=True) as uow:
        return uow.condition_groups(tenant_id)
