"""Reading a tenant's access policy: its current version and every version. A scoped service
reads another tenant's as those of a tenant that never set one."""

from __future__ import annotations

from typing import TYPE_CHECKING

from prepaid_wallet.app.access import current_version, public, versions
from prepaid_wallet.app.environment import Environment
from prepaid_wallet.ids import check_name

if TYPE_CHECKING:
    from prepaid_wallet.rules.access import AccessPolicyVersion

__all__ = ["access_policy", "access_policy_history"]


def access_policy(env: Environment, tenant_id: str) -> AccessPolicyVersion | None:
    """The tenant's current policy version; None when it never set one (every actor may run
    every operation)."""
    check_name(tenant_id, "tenant_id")
    if not env.sees(tenant_id):
        return None
    with env.store.unit_of_work(read_only=True) as uow:
        stored = current_version(uow, tenant_id)
    return None if stored is None else public(stored)


def access_policy_history(env: Environment, tenant_id: str) -> list[AccessPolicyVersion]:
    """Every version of the tenant's policy, oldest first."""
    check_name(tenant_id, "tenant_id")
    if not env.sees(tenant_id):
        return []
    with env.store.unit_of_work(read_only=True) as uow:
        stored = versions(uow, tenant_id)
    return [public(version) for version in stored]
