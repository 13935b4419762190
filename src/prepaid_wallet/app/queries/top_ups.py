"""Reads of customer top-ups: one by its id, and the pending ones of a tenant or a wallet."""

from __future__ import annotations

from typing import TYPE_CHECKING

from prepaid_wallet.app.checks import check_limit
from prepaid_wallet.app.environment import Environment
from prepaid_wallet.errors import InvalidInputError
from prepaid_wallet.ids import check_name

if TYPE_CHECKING:
    from prepaid_wallet.rules.topup.customer import CustomerTopUp

__all__ = ["customer_top_up", "pending_customer_top_ups"]


def customer_top_up(env: Environment, top_up_id: str) -> CustomerTopUp | None:
    """The customer top-up, if any (none of another tenant, for a scoped service)."""
    from prepaid_wallet.app.customer_top_ups import customer_top_up as find

    check_name(top_up_id, "top_up_id")
    with env.store.unit_of_work(read_only=True) as uow:
        return find(env, uow, top_up_id)


def pending_customer_top_ups(
    env: Environment, *, tenant_id: str | None = None, wallet_id: str | None = None,
    limit: int = 100,
) -> list[CustomerTopUp]:
    """The pending customer top-ups of ``tenant_id`` or of ``wallet_id`` (exactly one of
    them), soonest to expire first, at most ``limit``."""
    from prepaid_wallet.app.customer_top_ups import pending_customer_top_ups as find

    if (tenant_id is None) == (wallet_id is None):
        raise InvalidInputError("tenant_id", "give exactly one of tenant_id and wallet_id",
                                tenant_id)
    check_limit(limit)
    with env.store.unit_of_work(read_only=True) as uow:
        if wallet_id is not None:
            check_name(wallet_id, "wallet_id")
            env.wallet(uow, wallet_id)
            return find(uow, wallet_id=wallet_id, limit=limit)
        assert tenant_id is not None
        check_name(tenant_id, "tenant_id")
        if not env.sees(tenant_id):
            return []
        return find(uow, tenant_id=tenant_id, limit=limit)
