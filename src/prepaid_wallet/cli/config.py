"""The commands that show and set what a tenant configures: its rules (``rules show|set|history``),
its access policy (``access show|set|history``) and its condition groups (``group
list|show|create|update``). Rules, policies and conditions go in and come out as JSON:
``TenantRules.to_data()``, ``AccessPolicy.to_data()`` and ``SpendCondition.to_data()``."""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING, Any

from prepaid_wallet.cli.framework import _ONE, ExitCode, _Context, _Family, _key, _OnFirstUse
from prepaid_wallet.cli.output import _instant, _iso
from prepaid_wallet.errors import InvalidInputError

if TYPE_CHECKING:
    from collections.abc import Sequence

    from prepaid_wallet import _codec
    from prepaid_wallet.conditions import ConditionGroup, SpendCondition
    from prepaid_wallet.rules.access import AccessPolicyVersion
    from prepaid_wallet.rules.tenant import TenantRulesVersion

if not TYPE_CHECKING:  # imported when first used
    _codec = _OnFirstUse("prepaid_wallet._codec")

#: What ``--valid-from``/``--valid-until`` of ``group update`` take to remove the bound.
_NONE = "none"


def _read_json(source: str, field: str) -> Any:
    """The JSON document in the file ``source`` (``-``: standard input); ``InvalidInputError``
    naming ``field`` for a file that cannot be read or text that is not JSON."""
    try:
        if source == "-":
            text = sys.stdin.read()
        else:
            with open(source, encoding="utf-8") as file:
                text = file.read()
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInputError(field, f"must be a readable UTF-8 file or - ({exc})",
                                source) from None
    try:
        return json.loads(text)
    except ValueError as exc:
        raise InvalidInputError(field, f"must be a JSON document ({exc})", source) from None


def _document(ctx: _Context, data: Any) -> None:
    """One JSON document: one line with ``--json``, indented for people otherwise."""
    if ctx.json:
        ctx.emit(data)
    else:
        ctx.line(json.dumps(data, indent=2, ensure_ascii=False))


# -- rules -----------------------------------------------------------------------------------------


def _rules_data(ctx: _Context, tenant_id: str) -> dict[str, Any]:
    """The tenant's current version as data; a tenant that never set rules: version null and
    the empty rules that apply to it."""
    found = ctx.service.tenant_rules_version(tenant_id)
    if found is not None:
        return found.to_data()
    return _unset(tenant_id, "rules", ctx.service.tenant_rules(tenant_id).to_data())


def _rules_show(ctx: _Context) -> ExitCode:
    _document(ctx, _rules_data(ctx, ctx.args.tenant))
    return ExitCode.OK


def _rules_set(ctx: _Context) -> ExitCode:
    from prepaid_wallet.rules.tenant import TenantRules

    args = ctx.args
    rules = TenantRules.from_data(_edited(args.file, "rules"))
    stored = ctx.service.set_tenant_rules(args.tenant, rules,
                                          idempotency_key=args.idempotency_key, actor=args.actor,
                                          reason=args.reason)
    _document(ctx, stored.to_data())
    return ExitCode.OK


def _history(ctx: _Context, versions: Sequence[TenantRulesVersion | AccessPolicyVersion],
             none: str) -> ExitCode:
    """Versions of a tenant's configuration: a JSON line each, or a line each (``none`` when
    there is none)."""
    if ctx.json:
        for version in versions:
            ctx.emit(version.to_data())
        return ExitCode.OK
    if not versions:
        ctx.line(none)
    for version in versions:
        ctx.line("  ".join((str(version.version), _iso(version.set_at), version.actor or "-",
                            version.idempotency_key or "-", version.reason or "-")))
    return ExitCode.OK


def _unset(tenant_id: str, field: str, value: Any) -> dict[str, Any]:
    """What ``show`` prints for a tenant that never set a version: version null, ``value``."""
    return {"tenant_id": tenant_id, "version": None, "set_at": None, "actor": None,
            "idempotency_key": None, "metadata": {}, "reason": None, field: value}


def _edited(file: str, field: str) -> Any:
    """The JSON document in ``file``: the value itself, or what ``show`` printed (edited)."""
    data = _read_json(file, field)
    if isinstance(data, dict) and field in data and "version" in data:
        data = data[field]
    return data


def _rules_history(ctx: _Context) -> ExitCode:
    return _history(ctx, ctx.service.tenant_rules_history(ctx.args.tenant), "no rules set")


# -- access policy ---------------------------------------------------------------------------------


def _access_show(ctx: _Context) -> ExitCode:
    tenant_id = ctx.args.tenant
    found = ctx.service.access_policy(tenant_id)
    _document(ctx, found.to_data() if found is not None else _unset(tenant_id, "policy", None))
    return ExitCode.OK


def _access_set(ctx: _Context) -> ExitCode:
    from prepaid_wallet.rules.access import AccessPolicy

    args = ctx.args
    policy = AccessPolicy.from_data(_edited(args.file, "policy"))
    stored = ctx.service.set_access_policy(args.tenant, policy,
                                           idempotency_key=args.idempotency_key, actor=ctx.actor,
                                           reason=args.reason)
    _document(ctx, stored.to_data())
    return ExitCode.OK


def _access_history(ctx: _Context) -> ExitCode:
    return _history(ctx, ctx.service.access_policy_history(ctx.args.tenant),
                    "no access policy set")


# -- condition groups ------------------------------------------------------------------------------


def _group_data(group: ConditionGroup) -> dict[str, Any]:
    data: dict[str, Any] = _codec.to_data(group)
    return data


def _group_rows(ctx: _Context, group: ConditionGroup) -> list[tuple[str, str]]:
    return [
        ("group", group.id), ("tenant", group.tenant_id), ("name", group.name),
        ("version", str(group.version)), ("valid from", _iso(group.valid_from)),
        ("valid until", _iso(group.valid_until)),
        ("conditions", "; ".join(group.describe(ctx.args.locale))),
    ]


def _group_out(ctx: _Context, group: ConditionGroup) -> None:
    if ctx.json:
        ctx.emit(_group_data(group))
    else:
        ctx.table(_group_rows(ctx, group))


def _condition(source: str) -> SpendCondition:
    """The condition in the JSON document ``source`` (a file, or ``-``)."""
    from prepaid_wallet.conditions import SpendCondition

    return SpendCondition.from_data(_read_json(source, "conditions"))


def _group_list(ctx: _Context) -> ExitCode:
    groups = ctx.service.condition_groups(ctx.args.tenant)
    for group in groups:
        if ctx.json:
            ctx.emit(_group_data(group))
        else:
            ctx.line("  ".join((group.id, group.name, f"v{group.version}",
                                _iso(group.valid_from), _iso(group.valid_until))))
    if not ctx.json and not groups:
        ctx.line("no condition groups")
    return ExitCode.OK


def _group_show(ctx: _Context) -> ExitCode:
    _group_out(ctx, ctx.service.condition_group(ctx.args.group))
    return ExitCode.OK


def _group_create(ctx: _Context) -> ExitCode:
    args = ctx.args
    group = ctx.service.define_condition_group(
        tenant_id=args.tenant, name=args.name, condition=_condition(args.conditions),
        valid_from=_instant(args.valid_from, "--valid-from"),
        valid_until=_instant(args.valid_until, "--valid-until"), group_id=args.id)
    _group_out(ctx, group)
    return ExitCode.OK


def _bound(text: str | None, field: str) -> Any:
    from prepaid_wallet.app.checks import KEEP

    if text is None:
        return KEEP
    return None if text == _NONE else _instant(text, field)


def _group_update(ctx: _Context) -> ExitCode:
    args = ctx.args
    group = ctx.service.change_condition_group(
        args.group, name=args.name,
        condition=None if args.conditions is None else _condition(args.conditions),
        valid_from=_bound(args.valid_from, "--valid-from"),
        valid_until=_bound(args.valid_until, "--valid-until"))
    _group_out(ctx, group)
    return ExitCode.OK


# -- arguments -------------------------------------------------------------------------------------


COMMANDS = _Family()


def _tenant(p: argparse.ArgumentParser) -> None:
    p.add_argument("--tenant", required=True, help="the hub, merchant or business")


@COMMANDS.command("rules show", _rules_show,
                  help="the tenant's current rules and who set them, as JSON")
def _(p: argparse.ArgumentParser) -> None:
    _tenant(p)


@COMMANDS.command("rules set", _rules_set, _ONE,
                  help="store the tenant's rules (JSON) as its next version")
def _(p: argparse.ArgumentParser) -> None:
    _tenant(p)
    p.add_argument("file", metavar="FILE",
                   help="the rules as JSON (TenantRules.to_data, or what 'rules show' prints),"
                        " or - for standard input")
    p.add_argument("--actor", help="who sets them (recorded with the version)")
    p.add_argument("--reason", help="why they are set (recorded with the version)")
    _key(p)


@COMMANDS.command("rules history", _rules_history,
                  help="every version of the tenant's rules, oldest first")
def _(p: argparse.ArgumentParser) -> None:
    _tenant(p)


@COMMANDS.command("access show", _access_show,
                  help="the tenant's current access policy and who set it, as JSON")
def _(p: argparse.ArgumentParser) -> None:
    _tenant(p)


@COMMANDS.command("access set", _access_set, _ONE,
                  help="store the tenant's access policy (JSON) as its next version")
def _(p: argparse.ArgumentParser) -> None:
    _tenant(p)
    p.add_argument("file", metavar="FILE",
                   help='the policy as JSON ({"roles": {"ROLE": ["OPERATION", ...]}}, or what'
                        " 'access show' prints), or - for standard input")
    p.add_argument("--actor", help="who sets it (recorded with the version)")
    p.add_argument("--role", action="append", metavar="ROLE",
                   help="a role the actor holds (repeat for several); once the tenant has a"
                        " policy, one of them must permit set_access_policy")
    p.add_argument("--reason", help="why it is set (recorded with the version)")
    _key(p)


@COMMANDS.command("access history", _access_history,
                  help="every version of the tenant's access policy, oldest first")
def _(p: argparse.ArgumentParser) -> None:
    _tenant(p)


@COMMANDS.command("group list", _group_list, help="the tenant's condition groups")
def _(p: argparse.ArgumentParser) -> None:
    _tenant(p)


@COMMANDS.command("group show", _group_show, help="one condition group")
def _(p: argparse.ArgumentParser) -> None:
    p.add_argument("group", help="the condition group's id")


@COMMANDS.command("group create", _group_create, _ONE, help="define a condition group")
def _(p: argparse.ArgumentParser) -> None:
    _tenant(p)
    p.add_argument("--name", required=True, help="the group's name")
    p.add_argument("conditions", metavar="FILE",
                   help="its conditions as JSON (SpendCondition.to_data), or - for standard"
                        " input")
    p.add_argument("--id", help="the group's id (default: a new one)")
    p.add_argument("--valid-from", metavar="ISO", help="when it starts (default: always)")
    p.add_argument("--valid-until", metavar="ISO", help="when it ends (default: never)")


@COMMANDS.command("group update", _group_update, _ONE,
                  help="rename a condition group, change its conditions or its validity")
def _(p: argparse.ArgumentParser) -> None:
    p.add_argument("group", help="the condition group's id")
    p.add_argument("--name", help="its new name")
    p.add_argument("--conditions", metavar="FILE",
                   help="its new conditions as JSON, or - for standard input (a new version:"
                        " lots granted before keep theirs)")
    p.add_argument("--valid-from", metavar="ISO",
                   help=f"its new start ('{_NONE}': always)")
    p.add_argument("--valid-until", metavar="ISO", help=f"its new end ('{_NONE}': never)")
