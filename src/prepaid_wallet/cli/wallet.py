"""The commands that open wallets and put money in them: ``wallet open|show|list``, a wallet's
hub settings ``wallet set-floor|set-mode``, ``top-up``, ``award``, ``award-many`` and
``transfer``."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from prepaid_wallet.cli.framework import (
    _ONE,
    _STREAM,
    ExitCode,
    _Context,
    _Family,
    _key,
    _OnFirstUse,
)
from prepaid_wallet.cli.output import _amount, _instant, _iso, _Progress

if TYPE_CHECKING:
    from collections.abc import Iterator

    from prepaid_wallet import _codec
    from prepaid_wallet.app.commands.bulk import BulkAward
    from prepaid_wallet.rules.hub import WalletTermChange
    from prepaid_wallet.wallet import Wallet

if not TYPE_CHECKING:  # imported when first used
    _codec = _OnFirstUse("prepaid_wallet._codec")


def _wallet_rows(ctx: _Context, wallet: Wallet) -> list[tuple[str, str]]:
    return [
        ("wallet", wallet.id), ("tenant", wallet.tenant_id), ("owner", wallet.owner_id),
        ("currency", wallet.currency), ("status", wallet.status.value),
        ("floor", ctx.money(wallet.floor)), ("open", ctx.money(wallet.open)),
        ("commerce", ctx.money(wallet.commerce)), ("held", ctx.money(wallet.held)),
        ("total", ctx.money(wallet.total)), ("created", _iso(wallet.created_at)),
    ]


def _wallet_open(ctx: _Context) -> ExitCode:
    args = ctx.args
    floor = None if args.floor is None else _amount(args.floor, args.currency, "floor")
    wallet = ctx.service.open_wallet(owner_id=args.owner, tenant_id=args.tenant,
                                     currency=args.currency, floor=floor,
                                     idempotency_key=args.idempotency_key)
    if ctx.json:
        ctx.emit(_codec.to_data(wallet))
    else:
        ctx.line(f"opened wallet {wallet.id}")
        ctx.table(_wallet_rows(ctx, wallet)[1:])
    return ExitCode.OK


def _wallet_show(ctx: _Context) -> ExitCode:
    wallet = ctx.service.get_wallet(ctx.args.wallet)
    if ctx.json:
        ctx.emit(_codec.to_data(wallet))
    else:
        ctx.table(_wallet_rows(ctx, wallet))
    return ExitCode.OK


def _wallet_list(ctx: _Context) -> ExitCode:
    listed = 0
    with _Progress("wallet list") as progress:
        for wallet in progress.each(ctx.service.iter_wallets(ctx.args.tenant), "wallets"):
            listed += 1
            if ctx.json:
                ctx.emit(_codec.to_data(wallet))
            else:
                ctx.line("  ".join((wallet.id, wallet.tenant_id, wallet.owner_id,
                                    ctx.money(wallet.total))))
    if not ctx.json and not listed:
        ctx.line("no wallets")
    return ExitCode.OK


def _term_change(ctx: _Context, change: WalletTermChange) -> ExitCode:
    if ctx.json:
        ctx.emit(_codec.to_data(change))
    else:
        ctx.table([("wallet", change.wallet_id), (change.term.value, f"{change.before} ->"
                    f" {change.after}"), ("by", str(change.actor)), ("reason", str(change.reason)),
                   ("at", _iso(change.at))])
    return ExitCode.OK


def _wallet_set_floor(ctx: _Context) -> ExitCode:
    args = ctx.args
    wallet = ctx.service.get_wallet(args.wallet)
    return _term_change(ctx, ctx.service.set_floor(
        wallet.id, _amount(args.floor, wallet.currency, "floor"), actor=args.actor,
        reason=args.reason, idempotency_key=args.idempotency_key))


def _wallet_set_mode(ctx: _Context) -> ExitCode:
    from prepaid_wallet.policies import PaymentMode

    args = ctx.args
    mode = None if args.mode == "hub" else PaymentMode(args.mode.replace("-", "_"))
    return _term_change(ctx, ctx.service.set_payment_mode(
        args.wallet, mode, actor=args.actor, reason=args.reason,
        idempotency_key=args.idempotency_key))


def _top_up(ctx: _Context) -> ExitCode:
    args = ctx.args
    wallet = ctx.service.get_wallet(args.wallet)
    receipt = ctx.service.top_up(wallet.id, _amount(args.amount, wallet.currency),
                                 method=args.method, idempotency_key=args.idempotency_key)
    if ctx.json:
        ctx.emit(_codec.to_data(receipt))
    else:
        ctx.line(f"topped up {ctx.money(receipt.amount)} to {wallet.id}"
                 f" (entry {receipt.entry_id})")
        if receipt.fee is not None:
            ctx.line(f"fee {ctx.money(receipt.fee)}")
    return ExitCode.OK


def _award(ctx: _Context) -> ExitCode:
    from prepaid_wallet.conditions import SpendCondition

    args = ctx.args
    expires = _instant(args.expires, "--expires")
    condition = SpendCondition(products=args.products, categories=args.categories,
                               merchants=args.merchants)
    wallet = ctx.service.get_wallet(args.wallet)
    lot = ctx.service.award(wallet.id, _amount(args.amount, wallet.currency),
                            reason=args.reason, expires_at=expires,
                            condition=None if condition.is_unrestricted else condition,
                            group_id=args.group, idempotency_key=args.idempotency_key)
    if ctx.json:
        ctx.emit(_codec.to_data(lot))
    else:
        ctx.line(f"awarded {ctx.money(lot.amount)} to {wallet.id} as lot {lot.id}"
                 f" (expires {_iso(lot.expires_at) if lot.expires_at else 'never'},"
                 f" entry {lot.entry_id})")
    return ExitCode.OK


#: The columns of an ``award-many`` file (a header line names them; the first two are needed).
_AWARD_COLUMNS = ("wallet_id", "amount", "currency", "reason", "expires_at")


def _award_rows(ctx: _Context, failed: list[tuple[int, str, Exception]]) -> Iterator[BulkAward]:
    """The awards of the CSV file, read a row at a time; a row that does not parse is noted in
    ``failed`` (its number, counting from 1 after the header, its wallet and the error) and
    left out. Stops at Ctrl-C."""
    import csv

    from prepaid_wallet.app.commands.bulk import BulkAward
    from prepaid_wallet.errors import InvalidInputError, PrepaidWalletError

    args = ctx.args
    try:
        handle = open(args.file, newline="", encoding="utf-8")  # noqa: SIM115 (closed below)
    except OSError as exc:
        raise InvalidInputError("--file", f"must be a readable file ({exc.strerror})",
                                args.file) from None
    with handle:
        reader = csv.DictReader(handle)
        names = reader.fieldnames or []
        if "wallet_id" not in names or "amount" not in names:
            raise InvalidInputError("--file", "must be CSV with a header naming at least"
                                    " wallet_id and amount", args.file)
        for number, row in enumerate(reader, start=1):
            if ctx.interrupts.pending:
                return
            try:
                currency = row.get("currency") or args.currency
                if not currency:
                    raise InvalidInputError("currency", "give a currency column or --currency")
                yield BulkAward(
                    wallet_id=row["wallet_id"] or "",
                    amount=_amount(row["amount"] or "", currency),
                    reason=row.get("reason") or args.reason,
                    expires_at=_instant(row.get("expires_at") or args.expires, "expires_at"))
            except PrepaidWalletError as exc:
                failed.append((number, row.get("wallet_id") or "", exc))


def _row_number(position: int, unparsed: list[int]) -> int:
    """The file's row number (from 1) of the award at ``position`` (from 0) among the rows that
    parsed, the rows that did not being ``unparsed`` (sorted)."""
    number = position + 1
    for skipped in unparsed:
        if skipped <= number:
            number += 1
    return number


def _award_many(ctx: _Context) -> ExitCode:
    args = ctx.args
    unparsed: list[tuple[int, str, Exception]] = []
    report = ctx.service.award_many(_award_rows(ctx, unparsed), batch_key=args.batch_key,
                                    batch_size=args.batch_size)
    skipped = [number for number, _, _ in unparsed]
    failures: list[tuple[int, str, Exception]] = [*unparsed, *(
        (_row_number(row.position or 0, skipped), row.row_id, row.error)
        for row in report.failed)]
    failures.sort(key=lambda failure: failure[0])
    for number, wallet_id, error in failures:
        if ctx.json:
            ctx.emit({"record": "failed", "row": number, "wallet_id": wallet_id,
                      "error": type(error).__name__, "field": getattr(error, "field", None),
                      "message": str(error)})
        else:
            ctx.line(f"row {number} ({wallet_id}): {type(error).__name__}: {error}")
    if ctx.json:
        ctx.emit({"record": "summary", "awarded": report.awarded,
                  "already_done": report.already_done, "failed": len(failures)})
    else:
        ctx.line(f"awarded {report.awarded}, already done {report.already_done},"
                 f" failed {len(failures)}")
    return ExitCode.OK if not failures else ExitCode.USAGE


def _transfer(ctx: _Context) -> ExitCode:
    args = ctx.args
    source = ctx.service.get_wallet(args.source)
    receipt = ctx.service.transfer(source.id, args.target,
                                   _amount(args.amount, source.currency),
                                   idempotency_key=args.idempotency_key)
    if ctx.json:
        ctx.emit(_codec.to_data(receipt))
    else:
        ctx.line(f"transferred {ctx.money(receipt.amount)} from {source.id} to"
                 f" {receipt.counterparty_id} (entry {receipt.entry_id})")
        if receipt.fee is not None:
            ctx.line(f"fee {ctx.money(receipt.fee)}")
    return ExitCode.OK


# -- arguments -----------------------------------------------------------------------------------


COMMANDS = _Family()


@COMMANDS.command("wallet open", _wallet_open, _ONE, help="open a wallet")
def _(p: argparse.ArgumentParser) -> None:
    p.add_argument("--tenant", required=True,
                   help="the hub, merchant or business the wallet belongs to")
    p.add_argument("--owner", required=True, help="the customer's id in the host")
    p.add_argument("--currency", required=True, help="ISO 4217 code, e.g. EUR")
    p.add_argument("--floor", metavar="AMOUNT",
                   help="lowest the open balance may go (zero or negative; default 0)")
    _key(p)


@COMMANDS.command("wallet show", _wallet_show, help="one wallet and its balances")
def _(p: argparse.ArgumentParser) -> None:
    p.add_argument("wallet", help="the wallet's id")


@COMMANDS.command("wallet list", _wallet_list, help="every wallet, by id")
def _(p: argparse.ArgumentParser) -> None:
    p.add_argument("--tenant", help="only this tenant's wallets")


@COMMANDS.command("wallet set-floor", _wallet_set_floor, _ONE,
                  help="change a wallet's floor, recording who and why")
def _(p: argparse.ArgumentParser) -> None:
    p.add_argument("wallet", help="the wallet's id")
    p.add_argument("floor", help="the new floor: zero or negative, in the wallet's currency")
    p.add_argument("--actor", required=True, help="who changes it")
    p.add_argument("--reason", help="why, kept with the change")
    _key(p)


@COMMANDS.command("wallet set-mode", _wallet_set_mode, _ONE,
                  help="give a member its own payment mode (hub: the hub's again)")
def _(p: argparse.ArgumentParser) -> None:
    p.add_argument("wallet", help="the wallet's id")
    p.add_argument("mode", choices=("credit-first", "credit-only", "hub"),
                   help="the member's mode; hub removes it")
    p.add_argument("--actor", help="who changes it")
    p.add_argument("--reason", help="why, kept with the change")
    _key(p)


@COMMANDS.command("top-up", _top_up, _ONE)
def _(p: argparse.ArgumentParser) -> None:
    p.add_argument("wallet", help="the wallet's id")
    p.add_argument("amount", help="a decimal in the wallet's currency, such as 20.00")
    p.add_argument("--method", required=True, help="how it was paid, e.g. card")
    _key(p)


@COMMANDS.command("award", _award, _ONE)
def _(p: argparse.ArgumentParser) -> None:
    p.add_argument("wallet", help="the wallet's id")
    p.add_argument("amount", help="a decimal in the wallet's currency, such as 5.00")
    p.add_argument("--reason", required=True, help="why it is granted, kept on the lot")
    p.add_argument("--expires", metavar="ISO", help="expiry instant (default: never)")
    p.add_argument("--product", dest="products", action="append", default=[],
                   metavar="ID", help="only these products may be paid (repeatable)")
    p.add_argument("--category", dest="categories", action="append", default=[],
                   metavar="NAME", help="only these categories may be paid (repeatable)")
    p.add_argument("--merchant", dest="merchants", action="append", default=[],
                   metavar="ID", help="only at these merchants (repeatable)")
    p.add_argument("--group", metavar="GROUP_ID",
                   help="a condition group whose conditions and end the lot follows")
    _key(p)


@COMMANDS.command("award-many", _award_many, _STREAM)
def _(p: argparse.ArgumentParser) -> None:
    p.add_argument("--file", required=True, metavar="CSV",
                   help="one award a line, under a header naming the columns: wallet_id,"
                        " amount, and optionally currency, reason and expires_at")
    p.add_argument("--batch-key", required=True, metavar="KEY",
                   help="names this set of awards: running it again under the same key"
                        " grants only what is not granted yet (each wallet once)")
    p.add_argument("--currency", help="the amounts' currency when the file has no column")
    p.add_argument("--reason", default="award",
                   help="kept on each lot when the file has no reason (default: award)")
    p.add_argument("--expires", metavar="ISO",
                   help="expiry of each lot when the file gives none (default: never)")
    p.add_argument("--batch-size", type=int, default=500, metavar="N",
                   help="awards per unit of work (default 500)")


@COMMANDS.command("transfer", _transfer, _ONE)
def _(p: argparse.ArgumentParser) -> None:
    p.add_argument("source", metavar="FROM", help="the paying wallet's id")
    p.add_argument("target", metavar="TO",
                   help="the receiving wallet's id (same tenant and currency)")
    p.add_argument("amount", help="a decimal in the wallets' currency")
    _key(p)
