"""Reading a tenant's stored rules: the ones that apply now, the current version with who set
it, and every version -- and how any versioned tenant configuration is read
(:func:`stored_version`, :func:`stored_versions`). A scoped service reads another tenant's as
those of a tenant that never set any."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from prepaid_wallet.app.environment import Environment
from prepaid_wallet.app.tenant_rules import RULES, public
from prepaid_wallet.ids import check_name

if TYPE_CHECKING:
    from prepaid_wallet.app.versions import StoredVersion, Versioned
    from prepaid_wallet.rules.tenant import TenantRules, TenantRulesVersion

__all__ = ["stored_version", "stored_versions", "tenant_rules", "tenant_rules_history",
           "tenant_rules_version"]


def tenant_rules(env: Environment, tenant_id: str) -> TenantRules:
    """The rules that apply to the tenant now (none stored: empty rules)."""
    check_name(tenant_id, "tenant_id")
    if not env.sees(tenant_id):
        return env.no_rules()
    with env.store.unit_of_work(read_only=True) as uow:
        return env.tenant_rules(uow, tenant_id)


def stored_version(env: Environment, versioned: Versioned[Any], tenant_id: str
                   ) -> StoredVersion | None:
    """The tenant's current version of ``versioned``, if it ever set one."""
    check_name(tenant_id, "tenant_id")
    if not env.sees(tenant_id):
        return None
    with env.store.unit_of_work(read_only=True) as uow:
        return versioned.current_version(uow, tenant_id)


def stored_versions(env: Environment, versioned: Versioned[Any], tenant_id: str
                    ) -> list[StoredVersion]:
    """Every version of the tenant's ``versioned``, oldest first."""
    check_name(tenant_id, "tenant_id")
    if not env.sees(tenant_id):
        return []
    with env.store.unit_of_work(read_only=True) as uow:
        return versioned.versions(uow, tenant_id)


def tenant_rules_version(env: Environment, tenant_id: str) -> TenantRulesVersion | None:
    """The tenant's current version, if its rules were ever set."""
    stored = stored_version(env, RULES, tenant_id)
    return None if stored is None else public(stored)


def tenant_rules_history(env: Environment, tenant_id: str) -> list[TenantRulesVersion]:
    """Every version of the tenant's rules, oldest first."""
    return [public(version) for version in stored_versions(env, RULES, tenant_id)]
