"""The commands of credit at checkout: ``order apply|place|abandon|show`` (a host's order and
the credit that pays it) and ``credit-owed`` (credit what a placed order was paid more than its
total)."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from prepaid_wallet.cli.framework import _ONE, ExitCode, _Context, _Family, _key, _OnFirstUse
from prepaid_wallet.cli.output import _amount, _duration, _iso

if TYPE_CHECKING:
    from prepaid_wallet import _codec
    from prepaid_wallet.rules.checkout import OrderPayment

if not TYPE_CHECKING:  # imported when first used
    _codec = _OnFirstUse("prepaid_wallet._codec")


def _order_rows(ctx: _Context, paid: OrderPayment) -> list[tuple[str, str]]:
    rows = [("order", paid.order_id), ("wallet", paid.wallet_id), ("status", paid.status.value),
            ("total", ctx.money(paid.total)), ("credit", ctx.money(paid.credit)),
            ("remainder due", ctx.money(paid.remainder_due)), ("mode", paid.mode.value),
            ("expires", _iso(paid.expires_at))]
    if paid.entry_id is not None:
        rows.append(("entry", paid.entry_id))
    if paid.credited is not None:
        rows.append(("credited", ctx.money(paid.credited)))
        rows.append(("credited by", f"{paid.credited_by} (entry {paid.credited_entry_id})"))
    return rows


def _show(ctx: _Context, paid: OrderPayment) -> ExitCode:
    if ctx.json:
        ctx.emit(_codec.to_data(paid))
    else:
        ctx.table(_order_rows(ctx, paid))
    return ExitCode.OK


def _order_apply(ctx: _Context) -> ExitCode:
    from prepaid_wallet.policies import PaymentMode

    args = ctx.args
    wallet = ctx.service.get_wallet(args.wallet)
    window = None if args.window is None else _duration(args.window, "--window")
    mode = None if args.mode is None else PaymentMode(args.mode.replace("-", "_"))
    return _show(ctx, ctx.service.apply_credit(
        wallet.id, order_id=args.order, total=_amount(args.total, wallet.currency, "total"),
        mode=mode, window=window, idempotency_key=args.idempotency_key))


def _order_place(ctx: _Context) -> ExitCode:
    args = ctx.args
    return _show(ctx, ctx.service.place_order(args.wallet, order_id=args.order,
                                              idempotency_key=args.idempotency_key))


def _order_abandon(ctx: _Context) -> ExitCode:
    args = ctx.args
    return _show(ctx, ctx.service.abandon_order(args.wallet, order_id=args.order,
                                                idempotency_key=args.idempotency_key))


def _order_show(ctx: _Context) -> ExitCode:
    return _show(ctx, ctx.service.order_payment(ctx.args.wallet, ctx.args.order))


def _credit_owed(ctx: _Context) -> ExitCode:
    args = ctx.args
    wallet = ctx.service.get_wallet(args.wallet)
    return _show(ctx, ctx.service.credit_owed(
        wallet.id, order_id=args.order, total=_amount(args.total, wallet.currency, "total"),
        paid_by_other_methods=_amount(args.paid_by_other_methods, wallet.currency,
                                      "paid_by_other_methods"),
        actor=args.actor, reason=args.reason, idempotency_key=args.idempotency_key))


# -- arguments -----------------------------------------------------------------------------------


COMMANDS = _Family()


def _order(p: argparse.ArgumentParser) -> None:
    p.add_argument("wallet", help="the member's wallet id")
    p.add_argument("order", help="the host's order id (unique per tenant)")


@COMMANDS.command("order apply", _order_apply, _ONE,
                  help="apply the member's credit to an order (again: re-size it)")
def _(p: argparse.ArgumentParser) -> None:
    _order(p)
    p.add_argument("total", help="the order's total, a decimal in the wallet's currency")
    p.add_argument("--mode", choices=("credit-first", "credit-only"),
                   help="the payment mode (default: the member's, else the hub's)")
    p.add_argument("--window", metavar="DURATION",
                   help="how long the credit stays reserved: 30m, 2h (default 2h)")
    _key(p)


@COMMANDS.command("order place", _order_place, _ONE, help="place the order: capture its credit")
def _(p: argparse.ArgumentParser) -> None:
    _order(p)
    _key(p)


@COMMANDS.command("order abandon", _order_abandon, _ONE,
                  help="abandon the order: release its credit")
def _(p: argparse.ArgumentParser) -> None:
    _order(p)
    _key(p)


@COMMANDS.command("order show", _order_show, help="the order's credit payment")
def _(p: argparse.ArgumentParser) -> None:
    _order(p)


@COMMANDS.command("credit-owed", _credit_owed, _ONE)
def _(p: argparse.ArgumentParser) -> None:
    _order(p)
    p.add_argument("total", help="the order's final total, a decimal in the wallet's currency")
    p.add_argument("--paid-by-other-methods", metavar="AMOUNT", default="0",
                   help="what other payment methods paid for the order (default 0)")
    p.add_argument("--actor", required=True, help="the staff member who credits it")
    p.add_argument("--reason", help="why, kept with the order")
    _key(p)
