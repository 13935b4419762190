"""Reading a tenant's stored rules: the ones that apply now, the current version with who set
it, and every version."""

from __future__ import annotations

from typing import TYPE_CHECKING

from prepaid_wallet.app.environment import Environment
from prepaid_wallet.app.tenant_rules import current_version, public, versions

if TYPE_CHECKING:
    from prepaid_wallet.rules.tenant import TenantRules, TenantRulesVersion

__all__ = ["tenant_rules", "tenant_rules_history", "tenant_rules_version"]


def tenant_rules(env: Environment, tenant_id: str) -> TenantRules:
    """The rules that apply to the tenant now (none stored: empty rules)."""
    env.check_tenant(tenant_id)
    with env.store.unit_of_work(read_only=True) as uow:
        return env.tenant_rules(uow, tenant_id)


def tenant_rules_version(env: Environment, tenant_id: str) -> TenantRulesVersion | None:
    """The tenant's current version, if its rules were ever set."""
    env.check_tenant(tenant_id)
    with env.store.unit_of_work(read_only=True) as uow:
        stored = current_version(uow, tenant_id)
    return None if stored is None else public(stored)


def tenant_rules_history(env: Environment, tenant_id: str) -> list[TenantRulesVersion]:
    """Every version of the tenant's rules, oldest first."""
    env.check_tenant(tenant_id)
    with env.store.unit_of_work(read_only=True) as uow:
        stored = versions(uow, tenant_id)
    return [public(version) for version in stored]
