"""Where a tenant's access policy lives in the store, and the decision whether an actor may
run an operation.

Each :class:`~prepaid_wallet.rules.access.AccessPolicy` set for a tenant is one version
(1, 2, ...), kept for ever in :data:`VERSIONS` with the instant, actor, idempotency key,
metadata and reason of the command that set it; the latest version's number and policy are
also kept in :data:`CURRENT` under the tenant's id (one primary-key lookup), which
:data:`~prepaid_wallet.app.tenant_rules.WITH_LOCKS` names, so a unit that locks wallets reads
it with them (on PostgreSQL in the lock's own round trip). As for tenant rules, two units that
set one tenant's policy at once clash on the versions' unique value (``ConflictError``)
instead of both becoming version ``n``.

:func:`authorize` is the decision the pipeline takes for every command once it knows the
tenant: the roles a command requires, then the tenant's current policy (none: every actor
may run everything).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING

import attrs

from prepaid_wallet.actors import Actor
from prepaid_wallet.app.ports import RecordType, UnitOfWork
from prepaid_wallet.errors import PermissionDeniedError

if TYPE_CHECKING:
    from prepaid_wallet.rules.access import AccessPolicy, AccessPolicyVersion

__all__ = [
    "CURRENT",
    "OUTSIDE_PIPELINE",
    "VERSIONS",
    "CurrentPolicy",
    "StoredPolicy",
    "authorize",
    "current",
    "current_version",
    "decode",
    "encode",
    "policy_of",
    "public",
    "versions",
]

#: Operations that write but do not run through the pipeline (they authorize themselves in
#: their first unit of work): a policy may name them like any command's operation.
OUTSIDE_PIPELINE: frozenset[str] = frozenset({"refund_top_up"})


@attrs.frozen(kw_only=True)
class StoredPolicy:
    """One version of a tenant's access policy as the store keeps it: ``id`` its own fresh
    id, ``policy`` the canonical JSON text of ``AccessPolicy.to_data()``, ``set_at`` the
    instant of the command that set it, with its ``actor`` (id), ``idempotency_key``,
    ``metadata`` and ``reason``."""

    id: str
    tenant_id: str
    version: int
    policy: str
    set_at: datetime
    actor: str | None = None
    idempotency_key: str | None = None
    metadata: dict[str, str] = attrs.field(factory=dict)
    reason: str | None = None

    @property
    def pointer(self) -> CurrentPolicy:
        """The record that makes this version the tenant's current one."""
        return CurrentPolicy(tenant_id=self.tenant_id, version=self.version, id=self.id,
                             policy=self.policy)


@attrs.frozen(kw_only=True)
class CurrentPolicy:
    """The tenant's current version as every unit of work reads it: its number, its id and
    its policy (canonical JSON text)."""

    tenant_id: str
    version: int
    id: str
    policy: str

    @property
    def version_key(self) -> str:
        """The key of the full version in :data:`VERSIONS`."""
        return _version_key(self.tenant_id, self.version, self.id)


def _version_key(tenant_id: str, version: int, version_id: str) -> str:
    return f"{tenant_id}:{version:010d}:{version_id}"


#: The policy that applies to each tenant now, under the tenant's id.
CURRENT: RecordType[CurrentPolicy] = RecordType(
    kind="access_policy",
    type=CurrentPolicy,
    key=lambda found: found.tenant_id,
    tenant=lambda found: found.tenant_id,
)

#: Every version of every tenant's policy, written once, by version.
VERSIONS: RecordType[StoredPolicy] = RecordType(
    kind="access_policy_version",
    type=StoredPolicy,
    key=lambda stored: _version_key(stored.tenant_id, stored.version, stored.id),
    tenant=lambda stored: stored.tenant_id,
    unique=lambda stored: f"{stored.tenant_id}:{stored.version}",
    order=lambda stored: f"{stored.version:010d}",
)


def current(uow: UnitOfWork, tenant_id: str) -> CurrentPolicy | None:
    """The tenant's current version, if any (one primary-key lookup; read with the wallets a
    unit locked)."""
    return uow.get_record(CURRENT, tenant_id)


def current_version(uow: UnitOfWork, tenant_id: str) -> StoredPolicy | None:
    """The tenant's current version in full (who set it, when), if any."""
    found = current(uow, tenant_id)
    return None if found is None else uow.get_record(VERSIONS, found.version_key)


def versions(uow: UnitOfWork, tenant_id: str) -> list[StoredPolicy]:
    """Every version of the tenant's policy, oldest first."""
    return uow.find_records(VERSIONS, tenant_id=tenant_id)


def encode(policy: AccessPolicy) -> str:
    """The canonical JSON text ``policy`` is stored as."""
    return json.dumps(policy.to_data(), sort_keys=True, separators=(",", ":"))


#: Decoded policies by their stored text (bounded: cleared when full).
_DECODED: dict[str, AccessPolicy] = {}
_DECODED_MAX = 256


def decode(text: str) -> AccessPolicy:
    """The policy stored as ``text`` (decoded once per process per text)."""
    found = _DECODED.get(text)
    if found is None:
        from prepaid_wallet.rules.access import AccessPolicy

        found = AccessPolicy.from_data(json.loads(text))
        if len(_DECODED) >= _DECODED_MAX:
            _DECODED.clear()
        _DECODED[text] = found
    return found


def policy_of(uow: UnitOfWork, tenant_id: str) -> AccessPolicy | None:
    """The tenant's current policy as ``uow`` sees it (None: the tenant has none)."""
    found = current(uow, tenant_id)
    return None if found is None else decode(found.policy)


def public(stored: StoredPolicy) -> AccessPolicyVersion:
    """The stored version as the service returns it."""
    from prepaid_wallet.rules.access import AccessPolicyVersion

    return AccessPolicyVersion(
        tenant_id=stored.tenant_id, version=stored.version, policy=decode(stored.policy),
        set_at=stored.set_at, actor=stored.actor, idempotency_key=stored.idempotency_key,
        metadata=dict(stored.metadata), reason=stored.reason,
    )


def authorize(uow: UnitOfWork, actor: Actor | None, operation: str, tenant_id: str,
              required_roles: Iterable[str] = (), *, default: Actor | None = None) -> None:
    """Whether ``actor`` (None: ``default``, the service's actor) may run ``operation`` for
    ``tenant_id``, as ``uow`` sees the tenant's policy; ``PermissionDeniedError`` if not.

    ``required_roles`` (when any) must meet one of the actor's roles whatever the policy
    says; then, when the tenant has a policy, one of the actor's roles must permit the
    operation (deny by default). A tenant without a policy lets every actor run it."""
    who = actor if actor is not None else default
    roles: frozenset[str] = frozenset() if who is None else who.roles
    if required_roles and roles.isdisjoint(required_roles):
        raise PermissionDeniedError(None if who is None else who.id, roles, operation,
                                    tenant_id, required_roles)
    policy = policy_of(uow, tenant_id)
    if policy is not None and not policy.permits(roles, operation):
        raise PermissionDeniedError(None if who is None else who.id, roles, operation,
                                    tenant_id)
