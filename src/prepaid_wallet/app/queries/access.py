"""Reading a tenant's access policy: its current version and every version. A scoped service
reads another tenant's as those of a tenant that never set one."""

from __future__ import annotations

from typing import TYPE_CHECKING

from prepaid_wallet.app.access import POLICY, public
from prepaid_wallet.app.environment import Environment
from prepaid_wallet.app.queries.tenant_rules import stored_version, stored_versions

if TYPE_CHECKING:
    from prepaid_wallet.rules.access import AccessPolicyVersion

__all__ = ["access_policy", "access_policy_history"]


def access_policy(env: Environment, tenant_id: str) -> AccessPolicyVersion | None:
    """The tenant's current policy version; None when it never set one (every actor may run
    every operation)."""
    stored = stored_version(env, POLICY, tenant_id)
    return None if stored is None else public(stored)


def access_policy_history(env: Environment, tenant_id: str) -> list[AccessPolicyVersion]:
    """Every version of the tenant's policy, oldest first."""
    return [public(version) for version in stored_versions(env, POLICY, tenant_id)]
