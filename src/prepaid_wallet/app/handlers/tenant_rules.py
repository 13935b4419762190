"""Tenant rules: storing a tenant's rules as its next version (setting rules moves no money:
no journal entry; the versions say who set what, when, under which key)."""

from __future__ import annotations

from prepaid_wallet.app.commands import SetTenantRules
from prepaid_wallet.app.pipeline import Context
from prepaid_wallet.app.tenant_rules import CURRENT, VERSIONS, StoredRules, current, decode, encode

__all__ = ["set_tenant_rules"]


def set_tenant_rules(ctx: Context, command: SetTenantRules) -> StoredRules:
    """The tenant's next version with the command's rules, its instant, actor, key and
    metadata; the current version itself, and nothing written, when its rules are equal."""
    tenant_id = command.tenant_id
    found = current(ctx.uow, tenant_id)
    if found is not None and decode(found.rules) == command.rules:
        same = ctx.uow.get_record(VERSIONS, found.version_key)
        if same is not None:
            return same
    stored = StoredRules(
        id=ctx.env.ids.new("tr"),
        tenant_id=tenant_id,
        version=1 if found is None else found.version + 1,
        rules=encode(command.rules),
        set_at=ctx.at,
        actor=ctx.actor if ctx.actor is not None else ctx.env.actor,
        idempotency_key=ctx.key,
        metadata=dict(ctx.metadata),
        reason=command.reason,
    )
    ctx.uow.put_record(VERSIONS, stored)
    ctx.uow.put_record(CURRENT, stored.pointer)
    ctx.env.forget_rules(ctx.uow, tenant_id)  # the rest of this unit reads the new version
    return stored
