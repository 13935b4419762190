"""The commands of holds: ``hold`` (reserve money for a later capture), ``capture``, ``void``
and ``holds`` (a wallet's holds)."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from prepaid_wallet.cli.framework import _ONE, ExitCode, _Context, _Family, _key, _OnFirstUse
from prepaid_wallet.cli.output import _allocation, _amount, _duration, _instant, _iso, _listing

if TYPE_CHECKING:
    from prepaid_wallet import _codec
    from prepaid_wallet.wallet import Hold

if not TYPE_CHECKING:  # imported when first used
    _codec = _OnFirstUse("prepaid_wallet._codec")


def _hold_rows(ctx: _Context, held: Hold) -> list[tuple[str, str]]:
    rows = [("hold", held.id), ("wallet", held.wallet_id), ("status", held.status.value),
            ("amount", ctx.money(held.amount)), ("expires", _iso(held.expires_at)),
            ("held from", _allocation(ctx, held.allocation)), ("entry", held.entry_id)]
    if held.captured is not None:
        rows.append(("captured", ctx.money(held.captured)))
    if held.resolved_entry_id is not None:
        rows.append(("resolved by", held.resolved_entry_id))
    return rows


def _hold(ctx: _Context) -> ExitCode:
    args = ctx.args
    window = None if args.window is None else _duration(args.window, "--window")
    expires = _instant(args.expires, "--expires")
    wallet = ctx.service.get_wallet(args.wallet)
    held = ctx.service.hold(wallet.id, _amount(args.amount, wallet.currency),
                            expires_at=expires, window=window,
                            idempotency_key=args.idempotency_key)
    if ctx.json:
        ctx.emit(_codec.to_data(held))
    else:
        ctx.table(_hold_rows(ctx, held))
    return ExitCode.OK


def _capture(ctx: _Context) -> ExitCode:
    args = ctx.args
    amount = None
    if args.amount is not None:
        held = ctx.service.get_hold(args.hold)
        wallet = ctx.service.get_wallet(held.wallet_id)
        amount = _amount(args.amount, wallet.currency)
    result = ctx.service.capture(args.hold, amount, idempotency_key=args.idempotency_key)
    if ctx.json:
        ctx.emit(_codec.to_data(result))
    else:
        rows = [("entry", result.entry_id), ("hold", result.hold_id),
                ("captured", ctx.money(result.captured)),
                ("released", ctx.money(result.released)),
                ("paid from", _allocation(ctx, result.allocation))]
        if result.fee is not None:
            rows.append(("fee", ctx.money(result.fee)))
        if result.breakage.is_positive():
            rows.append(("breakage", ctx.money(result.breakage)))
        ctx.table(rows)
    return ExitCode.OK


def _void(ctx: _Context) -> ExitCode:
    held = ctx.service.void(ctx.args.hold, idempotency_key=ctx.args.idempotency_key)
    if ctx.json:
        ctx.emit(_codec.to_data(held))
    else:
        ctx.table(_hold_rows(ctx, held))
    return ExitCode.OK


def _holds(ctx: _Context) -> ExitCode:
    from prepaid_wallet.wallet import HoldStatus

    return _listing(
        ctx, [h for h in ctx.service.holds(ctx.args.wallet)
              if ctx.args.all or h.status is HoldStatus.ACTIVE], "no holds",
        ("id", "status", "amount", "expires"),
        lambda h: (h.id, h.status.value, ctx.money(h.amount), _iso(h.expires_at)),
    )


# -- arguments -----------------------------------------------------------------------------------


COMMANDS = _Family()


@COMMANDS.command("hold", _hold, _ONE)
def _(p: argparse.ArgumentParser) -> None:
    p.add_argument("wallet", help="the wallet's id")
    p.add_argument("amount", help="a decimal in the wallet's currency")
    ends = p.add_mutually_exclusive_group(required=True)
    ends.add_argument("--window", metavar="DURATION",
                      help="how long the hold lasts: 90s, 30m, 4h, 2d")
    ends.add_argument("--expires", metavar="ISO", help="when the hold ends")
    _key(p)


@COMMANDS.command("capture", _capture, _ONE)
def _(p: argparse.ArgumentParser) -> None:
    p.add_argument("hold", help="the hold's id")
    p.add_argument("amount", nargs="?",
                   help="at most the held amount (default: all); the rest is released")
    _key(p)


@COMMANDS.command("void", _void, _ONE)
def _(p: argparse.ArgumentParser) -> None:
    p.add_argument("hold", help="the hold's id")
    _key(p)


@COMMANDS.command("holds", _holds)
def _(p: argparse.ArgumentParser) -> None:
    p.add_argument("wallet", help="the wallet's id")
    p.add_argument("--all", action="store_true",
                   help="every hold, also the captured, voided and expired")
