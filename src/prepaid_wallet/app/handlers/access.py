"""Access policies: storing a tenant's policy as its next version (it moves no money: no
journal entry; the versions say who set what, when, under which key)."""

from __future__ import annotations

from prepaid_wallet.app.access import POLICY
from prepaid_wallet.app.commands.access import SetAccessPolicy
from prepaid_wallet.app.handlers.tenant_rules import store_version
from prepaid_wallet.app.pipeline import Context
from prepaid_wallet.app.versions import StoredVersion

__all__ = ["set_access_policy"]


def set_access_policy(ctx: Context, command: SetAccessPolicy) -> StoredVersion:
    """The tenant's next version with the command's policy
    (:func:`~prepaid_wallet.app.handlers.tenant_rules.store_version`)."""
    return store_version(ctx, POLICY, command.tenant_id, command.policy, command.reason)
