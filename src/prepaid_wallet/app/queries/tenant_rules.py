"""Reading a tenant's stored rules: the ones that apply now, the current version with who set
it, and every version. A scoped service reads another tenant's as those of a tenant that never
set any."""

from __future__ import annotations

from typing import TYPE_CHECKING

from prepaid_wallet.app.environment import Environment
from prepaid_wallet.app.tenant_rules import current_version, public, versions
from prepaid_wallet.ids import check_name

if TYPE_CHECKING:
    from prepaid_wallet.rules.tenant import TenantRules, TenantRulesVersion

__all__ = ["tenant_rules", "tenant_rules_history", "tenant_rules_version"]


def tenant_rules(env: Environment, tenant_id: str) -> TenantRules:
    """The rules that apply to the tenant now (none stored: empty rules)."""
    check_name(tenant_id, "tenant_id")
    if not env.sees(tenant_id):
        return env.no_rules()
    with env.store.unit_of_work(read_only=True) as uow:
        return env.tenant_rules(uow, tenant_id)


def tenant_rules_version(env: Environment, tenant_id: str) -> TenantRulesVersion | None:
    """The tenant's current version, if its rules were ever set."""
    check_name(tenant_id, "tenant_id")
    if not env.sees(tenant_id):
        return None
    with env.store.unit_of_work(read_only=True) as uow:
        stored = current_version(uow, tenant_id)
    return None if stored is None else public(stored)


def tenant_rules_history(env: Environment, tenant_id: str) -> list[TenantRulesVersion]:
    """Every version of the tenant's rules, oldest first."""
    check_name(tenant_id, "tenant_id")
    if not env.sees(tenant_id):
        return []
    with env.store.unit_of_work(read_only=True) as uow:
        stored = versions(uow, tenant_id)
    return [public(version) for version in stored]
