"""The commands that manage a tenant's API keys, what requests to the HTTP API authenticate
with: ``key create`` (prints the new key's secret, this once), ``key list``, ``key rotate``
(prints the new secret; the old one keeps working for ``--grace``) and ``key revoke``. See
docs/http.md."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from prepaid_wallet.cli.framework import _ONE, ExitCode, _Context, _Family
from prepaid_wallet.cli.output import _duration, _iso, _listing

if TYPE_CHECKING:
    from prepaid_wallet.app.api_keys import ApiKey

#: Printed after a secret: it is never shown again.
_ONCE = "keep the secret now: it is shown this once and cannot be read back"


def _data(key: ApiKey) -> dict[str, Any]:
    """The key as JSON data (never a secret or digest: ``ApiKey`` holds neither)."""
    return {"id": key.id, "tenant_id": key.tenant_id, "name": key.name,
            "roles": sorted(key.roles), "created_at": _iso(key.created_at),
            "rotated_at": None if key.rotated_at is None else _iso(key.rotated_at),
            "previous_until": None if key.previous_until is None else _iso(key.previous_until),
            "revoked_at": None if key.revoked_at is None else _iso(key.revoked_at)}


def _rows(key: ApiKey) -> list[tuple[str, str]]:
    return [("key", key.id), ("tenant", key.tenant_id), ("name", key.name or "-"),
            ("roles", ", ".join(sorted(key.roles))), ("created", _iso(key.created_at)),
            ("rotated", _iso(key.rotated_at)), ("previous until", _iso(key.previous_until)),
            ("revoked", _iso(key.revoked_at))]


def _create(ctx: _Context) -> ExitCode:
    args = ctx.args
    key, secret = ctx.service.create_api_key(args.tenant, tuple(args.role), args.name)
    if ctx.json:
        ctx.emit({**_data(key), "secret": secret})
    else:
        ctx.table([*_rows(key), ("secret", secret)])
        ctx.line(_ONCE)
    return ExitCode.OK


def _list(ctx: _Context) -> ExitCode:
    keys = ctx.service.api_keys(ctx.args.tenant)
    if ctx.json:
        for key in keys:
            ctx.emit(_data(key))
        return ExitCode.OK
    return _listing(ctx, keys, "no API keys", ("id", "name", "roles", "created", "revoked"),
                    lambda k: (k.id, k.name or "-", ",".join(sorted(k.roles)),
                               _iso(k.created_at), _iso(k.revoked_at)))


def _rotate(ctx: _Context) -> ExitCode:
    from datetime import timedelta

    args = ctx.args
    grace = timedelta(0) if args.grace is None else _duration(args.grace, "--grace")
    secret = ctx.service.rotate_api_key(args.key, grace)
    if ctx.json:
        ctx.emit({"id": args.key, "secret": secret})
    else:
        ctx.table([("key", args.key), ("secret", secret)])
        ctx.line(_ONCE)
    return ExitCode.OK


def _revoke(ctx: _Context) -> ExitCode:
    key = ctx.service.revoke_api_key(ctx.args.key)
    if ctx.json:
        ctx.emit(_data(key))
    else:
        ctx.table(_rows(key))
    return ExitCode.OK


# -- arguments -------------------------------------------------------------------------------------


COMMANDS = _Family()


@COMMANDS.command("key create", _create, _ONE,
                  help="create an API key of a tenant and print its secret, once")
def _(p: argparse.ArgumentParser) -> None:
    p.add_argument("--tenant", required=True, help="the tenant the key belongs to")
    p.add_argument("--role", action="append", required=True, metavar="ROLE",
                   help="a role the key holds (repeat for several; at least one)")
    p.add_argument("--name", help="a label for the key (e.g. where it is used)")


@COMMANDS.command("key list", _list, help="a tenant's API keys (never their secrets)")
def _(p: argparse.ArgumentParser) -> None:
    p.add_argument("--tenant", required=True, help="the tenant")


@COMMANDS.command("key rotate", _rotate, _ONE,
                  help="give an API key a new secret and print it, once")
def _(p: argparse.ArgumentParser) -> None:
    p.add_argument("key", help="the key's id (key_...)")
    p.add_argument("--grace", metavar="DURATION",
                   help="how long the old secret keeps working: 90s, 30m, 4h, 2d (default:"
                        " it stops at once)")


@COMMANDS.command("key revoke", _revoke, _ONE,
                  help="revoke an API key: none of its secrets works again")
def _(p: argparse.ArgumentParser) -> None:
    p.add_argument("key", help="the key's id (key_...)")
