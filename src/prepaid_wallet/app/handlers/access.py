"""Access policies: storing a tenant's policy as its next version (it moves no money: no
journal entry; the versions say who set what, when, under which key)."""

from __future__ import annotations

from prepaid_wallet.app.access import CURRENT, VERSIONS, StoredPolicy, current, decode, encode
from prepaid_wallet.app.commands.access import SetAccessPolicy
from prepaid_wallet.app.pipeline import Context

__all__ = ["set_access_policy"]


def set_access_policy(ctx: Context, command: SetAccessPolicy) -> StoredPolicy:
    """The tenant's next version with the command's policy, its instant, actor, key, metadata
    and reason; the current version itself, and nothing written, when its policy is equal."""
    tenant_id = command.tenant_id
    found = current(ctx.uow, tenant_id)
    if found is not None and decode(found.policy) == command.policy:
        same = ctx.uow.get_record(VERSIONS, found.version_key)
        if same is not None:
            return same
    stored = StoredPolicy(
        id=ctx.env.ids.new("ap"),
        tenant_id=tenant_id,
        version=1 if found is None else found.version + 1,
        policy=encode(command.policy),
        set_at=ctx.at,
        actor=ctx.actor if ctx.actor is not None else ctx.env.actor,
        idempotency_key=ctx.key,
        metadata=dict(ctx.metadata),
        reason=command.reason,
    )
    ctx.uow.put_record(VERSIONS, stored)
    ctx.uow.put_record(CURRENT, stored.pointer)
    return stored
