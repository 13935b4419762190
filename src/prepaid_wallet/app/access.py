"""Where a tenant's access policy lives in the store, and the decision whether an actor may
run an operation.

Each :class:`~prepaid_wallet.rules.access.AccessPolicy` set for a tenant is one version of
the versioned configuration :data:`POLICY` (:mod:`prepaid_wallet.app.versions`, as tenant
rules are); :data:`~prepaid_wallet.app.tenant_rules.WITH_LOCKS` names its current record, so
a unit that locks wallets reads it with them (on PostgreSQL in the lock's own round trip).

:func:`authorize` is the decision the pipeline takes for every command once it knows the
tenant: the roles a command requires, then the tenant's current policy (none: every actor
may run everything).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from prepaid_wallet.actors import Actor
from prepaid_wallet.app.ports import UnitOfWork
from prepaid_wallet.app.versions import StoredVersion, Versioned
from prepaid_wallet.errors import PermissionDeniedError

if TYPE_CHECKING:
    from prepaid_wallet.rules.access import AccessPolicy, AccessPolicyVersion

__all__ = ["OUTSIDE_PIPELINE", "POLICY", "authorize", "public"]

#: Operations that write but do not run through the pipeline (they authorize themselves in
#: their first unit of work that writes): a policy may name them like any command's operation.
OUTSIDE_PIPELINE: frozenset[str] = frozenset({
    "refund_top_up", "report_charge", "ack_events", "add_webhook_endpoint",
    "remove_webhook_endpoint", "rotate_webhook_secret", "replay_webhooks",
})


def _load(data: Any) -> AccessPolicy:
    from prepaid_wallet.rules.access import AccessPolicy

    return AccessPolicy.from_data(data)


#: Tenants' access policies, in versions (kinds ``access_policy`` and
#: ``access_policy_version``).
POLICY: Versioned[AccessPolicy] = Versioned("access_policy", "ap", _load)


def public(stored: StoredVersion) -> AccessPolicyVersion:
    """The stored version as the service returns it."""
    from prepaid_wallet.rules.access import AccessPolicyVersion

    return AccessPolicyVersion(policy=POLICY.decode(stored.data), **stored.described())


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
    policy = POLICY.value(uow, tenant_id)
    if policy is not None and not policy.permits(roles, operation):
        raise PermissionDeniedError(None if who is None else who.id, roles, operation,
                                    tenant_id)
