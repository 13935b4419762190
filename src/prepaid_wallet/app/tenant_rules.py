"""Where a tenant's rules live in the store, and reading them.

Each :class:`~prepaid_wallet.rules.tenant.TenantRules` set for a tenant is one version of the
versioned configuration :data:`RULES` (:mod:`prepaid_wallet.app.versions`: every version kept
for ever with who set it, when and why; the current one under the tenant's id, found by one
primary-key lookup; two concurrent sets clash instead of both becoming version ``n``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from prepaid_wallet.app.access import POLICY
from prepaid_wallet.app.ports import RecordType
from prepaid_wallet.app.versions import StoredVersion, Versioned

if TYPE_CHECKING:
    from prepaid_wallet.rules.tenant import TenantRules, TenantRulesVersion

__all__ = ["RULES", "WITH_LOCKS", "public"]


def _load(data: Any) -> TenantRules:
    from prepaid_wallet.rules.tenant import TenantRules

    return TenantRules.from_data(data)


#: Tenants' rules, in versions (kinds ``tenant_rules`` and ``tenant_rules_version``).
RULES: Versioned[TenantRules] = Versioned("tenant_rules", "tr", _load)

#: What a unit reads along with the wallets it locks (``lock_wallets(tenant_records=...)``):
#: their tenants' current rules, which nearly every command applies, and their current access
#: policy, which authorizes every command -- on PostgreSQL in the lock's own round trip.
WITH_LOCKS: tuple[RecordType[Any], ...] = (RULES.current_type, POLICY.current_type)


def public(stored: StoredVersion) -> TenantRulesVersion:
    """The stored version as the service returns it."""
    from prepaid_wallet.rules.tenant import TenantRulesVersion

    return TenantRulesVersion(rules=RULES.decode(stored.data), **stored.described())
