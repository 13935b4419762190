"""Where a tenant's rules live in the store, and reading them.

Each :class:`~prepaid_wallet.rules.tenant.TenantRules` set for a tenant is one version
(1, 2, ...), kept for ever in :data:`VERSIONS` with the instant, actor, idempotency key and
metadata of the command that set it; the latest version's number and rules are also kept in
:data:`CURRENT` under the tenant's id (a small record, cheap to read), so that a unit of work
finds the rules that apply by one primary-key lookup. The rules themselves are stored as the
canonical JSON text of ``TenantRules.to_data()``.

Two units that set one tenant's rules at once both read version ``n`` and both write version
``n + 1``: each version record has a key of its own (it holds a fresh id) but the unique value
``"<tenant>:<version>"``, so the later commit clashes (``ConflictError``) instead of replacing
the other's version; on SQLite and in memory write units run one at a time, and never clash.

Decoding the text is cached per process by the text itself (a periodic fee parses its
recurrence rule), so a unit pays one lookup and no decoding for rules it has seen before.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import TYPE_CHECKING, Any

import attrs

from prepaid_wallet.app.access import CURRENT as POLICY
from prepaid_wallet.app.ports import RecordType, UnitOfWork

if TYPE_CHECKING:
    from prepaid_wallet.rules.tenant import TenantRules, TenantRulesVersion

__all__ = [
    "CURRENT",
    "VERSIONS",
    "WITH_LOCKS",
    "CurrentRules",
    "StoredRules",
    "all_current",
    "current",
    "current_version",
    "decode",
    "encode",
    "public",
    "version_key",
    "versions",
]


@attrs.frozen(kw_only=True)
class StoredRules:
    """One version of a tenant's rules as the store keeps it.

    ``id`` is the version's own fresh id (it makes the key of the version record), ``rules``
    the canonical JSON text of ``TenantRules.to_data()``, ``set_at`` the instant of the command
    that set it, with its ``actor``, ``idempotency_key``, ``metadata`` and ``reason``.
    """

    id: str
    tenant_id: str
    version: int
    rules: str
    set_at: datetime
    actor: str | None = None
    idempotency_key: str | None = None
    metadata: dict[str, str] = attrs.field(factory=dict)
    reason: str | None = None

    @property
    def pointer(self) -> CurrentRules:
        """The record that makes this version the tenant's current one."""
        return CurrentRules(tenant_id=self.tenant_id, version=self.version, id=self.id,
                            rules=self.rules)


@attrs.frozen(kw_only=True)
class CurrentRules:
    """The tenant's current version as every unit of work reads it: its number, its id (which
    names its :data:`VERSIONS` record) and its rules (canonical JSON text)."""

    tenant_id: str
    version: int
    id: str
    rules: str

    @property
    def version_key(self) -> str:
        """The key of the full version in :data:`VERSIONS`."""
        return version_key(self.tenant_id, self.version, self.id)


def version_key(tenant_id: str, version: int, version_id: str) -> str:
    """The key of a version record: tenant, version (fixed width) and the version's id."""
    return f"{tenant_id}:{version:010d}:{version_id}"


#: The rules that apply to each tenant now, under the tenant's id.
CURRENT: RecordType[CurrentRules] = RecordType(
    kind="tenant_rules",
    type=CurrentRules,
    key=lambda found: found.tenant_id,
    tenant=lambda found: found.tenant_id,
)

#: What a unit reads along with the wallets it locks (``lock_wallets(tenant_records=...)``):
#: their tenants' current rules, which nearly every command applies, and their current access
#: policy, which authorizes every command -- on PostgreSQL in the lock's own round trip.
WITH_LOCKS: tuple[RecordType[Any], ...] = (CURRENT, POLICY)

#: Every version of every tenant's rules, written once, by version.
VERSIONS: RecordType[StoredRules] = RecordType(
    kind="tenant_rules_version",
    type=StoredRules,
    key=lambda stored: version_key(stored.tenant_id, stored.version, stored.id),
    tenant=lambda stored: stored.tenant_id,
    unique=lambda stored: f"{stored.tenant_id}:{stored.version}",
    order=lambda stored: f"{stored.version:010d}",
)


def current(uow: UnitOfWork, tenant_id: str) -> CurrentRules | None:
    """The tenant's current version, if any (one primary-key lookup)."""
    return uow.get_record(CURRENT, tenant_id)


def current_version(uow: UnitOfWork, tenant_id: str) -> StoredRules | None:
    """The tenant's current version in full (who set it, when), if any."""
    found = current(uow, tenant_id)
    return None if found is None else uow.get_record(VERSIONS, found.version_key)


def all_current(uow: UnitOfWork, tenant_id: str | None = None) -> list[CurrentRules]:
    """The current version of every tenant that has rules (or of ``tenant_id`` only), by
    tenant id."""
    if tenant_id is not None:
        found = current(uow, tenant_id)
        return [] if found is None else [found]
    return uow.find_records(CURRENT)


def versions(uow: UnitOfWork, tenant_id: str) -> list[StoredRules]:
    """Every version of the tenant's rules, oldest first."""
    return uow.find_records(VERSIONS, tenant_id=tenant_id)


def encode(rules: TenantRules) -> str:
    """The canonical JSON text ``rules`` are stored as."""
    return json.dumps(rules.to_data(), sort_keys=True, separators=(",", ":"))


#: Decoded rules by their stored text (bounded: cleared when full).
_DECODED: dict[str, TenantRules] = {}
_DECODED_MAX = 256


def decode(text: str) -> TenantRules:
    """The rules stored as ``text`` (decoded once per process per text)."""
    found = _DECODED.get(text)
    if found is None:
        from prepaid_wallet.rules.tenant import TenantRules

        found = TenantRules.from_data(json.loads(text))
        if len(_DECODED) >= _DECODED_MAX:
            _DECODED.clear()
        _DECODED[text] = found
    return found


def public(stored: StoredRules) -> TenantRulesVersion:
    """The stored version as the service returns it."""
    from prepaid_wallet.rules.tenant import TenantRulesVersion

    return TenantRulesVersion(
        tenant_id=stored.tenant_id, version=stored.version, rules=decode(stored.rules),
        set_at=stored.set_at, actor=stored.actor, idempotency_key=stored.idempotency_key,
        metadata=dict(stored.metadata), reason=stored.reason,
    )
