"""Tenant rules: storing a tenant's rules as its next version (setting rules moves no money:
no journal entry; the versions say who set what, when, under which key) -- and
:func:`store_version`, how any versioned tenant configuration stores a command's value."""

from __future__ import annotations

from typing import Any

from prepaid_wallet.app.commands.versions import SetTenantRules
from prepaid_wallet.app.pipeline import Context
from prepaid_wallet.app.tenant_rules import RULES
from prepaid_wallet.app.versions import StoredVersion, Versioned

__all__ = ["set_tenant_rules", "store_version"]


def store_version(ctx: Context, versioned: Versioned[Any], tenant_id: str, value: Any,
                  reason: str | None) -> StoredVersion:
    """The tenant's next version of ``versioned`` with ``value`` and the command's instant,
    actor (the call's, else the service's), key, metadata and ``reason``; the current version
    itself, and nothing written, when its value is equal."""
    return versioned.store(
        ctx.uow, tenant_id, value, version_id=lambda: ctx.env.ids.new(versioned.prefix),
        set_at=ctx.at, actor=ctx.actor if ctx.actor is not None else ctx.env.actor,
        idempotency_key=ctx.key, metadata=ctx.metadata, reason=reason)


def set_tenant_rules(ctx: Context, command: SetTenantRules) -> StoredVersion:
    """The tenant's next version with the command's rules (:func:`store_version`)."""
    stored = store_version(ctx, RULES, command.tenant_id, command.rules, command.reason)
    ctx.env.forget_rules(ctx.uow, command.tenant_id)  # the rest of this unit reads the new one
    return stored
