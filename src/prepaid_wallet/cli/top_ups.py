"""The commands of customer top-ups paid through a payment provider: ``payment start`` (a
pending top-up, whose id goes to the provider), ``payment report`` (the provider's answer, also
for an automatic top-up's attempt), ``payment show``, ``payment pending`` and
``payment chargeback``."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from prepaid_wallet.cli.framework import _ONE, ExitCode, _Context, _Family, _key, _OnFirstUse
from prepaid_wallet.cli.output import _amount, _iso
from prepaid_wallet.errors import InvalidInputError

if TYPE_CHECKING:
    from prepaid_wallet import _codec
    from prepaid_wallet.rules.topup.customer import CustomerTopUp

if not TYPE_CHECKING:  # imported when first used
    _codec = _OnFirstUse("prepaid_wallet._codec")

#: The answers ``payment report`` takes, as the provider gives them.
_STATUSES = ("succeeded", "failed", "declined_soft", "canceled", "unknown")


def _rows(ctx: _Context, top_up: CustomerTopUp) -> list[tuple[str, str]]:
    rows = [
        ("top-up", top_up.id), ("wallet", top_up.wallet_id), ("amount", ctx.money(top_up.amount)),
        ("method", top_up.method), ("status", top_up.status.value),
        ("started", _iso(top_up.created_at)), ("expires", _iso(top_up.expires_at)),
    ]
    if top_up.entry_id is not None:
        rows.append(("credit entry", top_up.entry_id))
    if top_up.superseded is not None:
        rows.append(("reported after", top_up.superseded.value))
    if top_up.refunds:
        rows.append(("refunded", ctx.money(top_up.refunded)))
    if top_up.charged_back is not None:
        rows.append(("charged back", ctx.money(top_up.charged_back)))
    return rows


def _out(ctx: _Context, top_up: CustomerTopUp) -> None:
    if ctx.json:
        ctx.emit(_codec.to_data(top_up))
    else:
        ctx.table(_rows(ctx, top_up))


def _start(ctx: _Context) -> ExitCode:
    args = ctx.args
    wallet = ctx.service.get_wallet(args.wallet)
    top_up = ctx.service.start_top_up(wallet.id, _amount(args.amount, wallet.currency),
                                      method=args.method, idempotency_key=args.idempotency_key,
                                      actor=args.actor)
    _out(ctx, top_up)
    return ExitCode.OK


def _report(ctx: _Context) -> ExitCode:
    from prepaid_wallet.rules.topup import ChargeOutcome, ChargeStatus

    args = ctx.args
    status = "declined_hard" if args.status == "failed" else args.status
    outcome = ChargeOutcome(ChargeStatus(status), reference=args.reference,
                            message=args.message)
    report = ctx.service.report_charge(args.key, outcome)
    if ctx.json:
        ctx.emit(_codec.to_data(report))
    else:
        ctx.table([("credited", ", ".join(report.credited) or "-"),
                   ("ended", ", ".join(report.given_up) or "-"),
                   ("pending", ", ".join(report.pending) or "-")])
    return ExitCode.OK


def _show(ctx: _Context) -> ExitCode:
    top_up = ctx.service.customer_top_up(ctx.args.top_up)
    if top_up is None:
        raise InvalidInputError("top_up_id", "must be the id of a customer top-up",
                                ctx.args.top_up)
    _out(ctx, top_up)
    return ExitCode.OK


def _pending(ctx: _Context) -> ExitCode:
    args = ctx.args
    found = ctx.service.pending_top_ups(tenant_id=args.tenant, wallet_id=args.wallet,
                                        limit=args.limit)
    for top_up in found:
        if ctx.json:
            ctx.emit(_codec.to_data(top_up))
        else:
            ctx.line("  ".join((top_up.id, top_up.wallet_id, ctx.money(top_up.amount),
                                top_up.method, _iso(top_up.expires_at))))
    if not ctx.json and not found:
        ctx.line("no pending top-ups")
    return ExitCode.OK


def _chargeback(ctx: _Context) -> ExitCode:
    args = ctx.args
    amount = None
    if args.amount is not None:
        found = ctx.service.customer_top_up(args.top_up)
        if found is None:
            raise InvalidInputError("top_up_id", "must be the id of a customer top-up",
                                    args.top_up)
        amount = _amount(args.amount, found.amount.currency)
    top_up = ctx.service.charge_back_top_up(args.top_up, amount, reason=args.reason,
                                            idempotency_key=args.idempotency_key,
                                            actor=args.actor)
    _out(ctx, top_up)
    return ExitCode.OK


# -- arguments -------------------------------------------------------------------------------------


COMMANDS = _Family()


@COMMANDS.command("payment start", _start, _ONE,
                  help="start a customer top-up (pending; give its id to the payment provider)")
def _(p: argparse.ArgumentParser) -> None:
    p.add_argument("wallet", help="the wallet's id")
    p.add_argument("amount", help="a decimal in the wallet's currency, such as 25.00")
    p.add_argument("--method", required=True, help="the payment method chosen, e.g. card")
    p.add_argument("--actor", help="who starts it (recorded on the credit entry)")
    _key(p)


@COMMANDS.command("payment report", _report, _ONE,
                  help="the payment provider's answer about a top-up (credited once)")
def _(p: argparse.ArgumentParser) -> None:
    p.add_argument("key", metavar="ID",
                   help="the customer top-up's id, or an automatic top-up attempt's key")
    p.add_argument("status", choices=_STATUSES,
                   help="what the provider says: failed is a hard decline")
    p.add_argument("--reference", help="the provider's reference for the payment")
    p.add_argument("--message", help="the provider's message")


@COMMANDS.command("payment show", _show, help="one customer top-up")
def _(p: argparse.ArgumentParser) -> None:
    p.add_argument("top_up", metavar="ID", help="the customer top-up's id")


@COMMANDS.command("payment pending", _pending,
                  help="the pending customer top-ups of a tenant or a wallet")
def _(p: argparse.ArgumentParser) -> None:
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--tenant", help="the tenant's pending top-ups")
    which.add_argument("--wallet", help="the wallet's pending top-ups")
    p.add_argument("--limit", type=int, default=100, help="at most this many (default 100)")


@COMMANDS.command("payment chargeback", _chargeback, _ONE,
                  help="book the provider taking back a customer top-up (may leave a debt)")
def _(p: argparse.ArgumentParser) -> None:
    p.add_argument("top_up", metavar="ID", help="the customer top-up's id")
    p.add_argument("amount", nargs="?", help="how much (default: all that is left)")
    p.add_argument("--reason", required=True, help="why, e.g. dispute lost")
    p.add_argument("--actor", help="who books it")
    _key(p)
