"""Condition groups: named, reusable conditions of a tenant, defined once and changed in
versions; the lots granted under a group follow its validity."""

from __future__ import annotations

from typing import Any

import attrs

from prepaid_wallet.app.checks import Keep
from prepaid_wallet.app.commands import ChangeConditionGroup, DefineConditionGroup
from prepaid_wallet.app.pipeline import Context
from prepaid_wallet.conditions import ConditionGroup
from prepaid_wallet.errors import ConditionGroupNotFoundError, ConflictError

__all__ = ["change_condition_group", "define_condition_group"]


def define_condition_group(ctx: Context, command: DefineConditionGroup) -> ConditionGroup:
    """A new group at version 1 (``ConflictError`` when its id is already used)."""
    group = ConditionGroup(
        id=command.group_id if command.group_id is not None else ctx.env.ids.new("cg"),
        tenant_id=command.tenant_id, name=command.name, condition=command.condition,
        version=1, valid_from=command.valid_from, valid_until=command.valid_until,
    )
    try:
        ctx.uow.lock_condition_group(group.id)
    except ConditionGroupNotFoundError:
        pass
    else:
        raise ConflictError(f"condition group {group.id!r} already exists")
    ctx.uow.put_condition_group(group)
    return group


def change_condition_group(ctx: Context, command: ChangeConditionGroup) -> ConditionGroup:
    """The locked group with the command's changes: a new condition makes the next version;
    nothing is written when nothing changes."""
    group = ctx.uow.get_condition_group(command.group_id)
    changed = group if command.condition is None else group.with_condition(command.condition)
    updates: dict[str, Any] = {}
    if command.name is not None:
        updates["name"] = command.name
    if not isinstance(command.valid_from, Keep):
        updates["valid_from"] = command.valid_from
    if not isinstance(command.valid_until, Keep):
        updates["valid_until"] = command.valid_until
    changed = attrs.evolve(changed, **updates)
    if changed != group:
        ctx.uow.put_condition_group(changed)
    return changed
